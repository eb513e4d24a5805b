package mapping

import (
	"encoding/json"
	"slices"
	"time"

	"github.com/clerksync/clerksync/internal/clerkevent"
)

// Sources of a user column: fields of Clerk's user object, and clerksync's
// own values.
const (
	SourceClerkID   = "id"         // the Clerk user ID, user_...
	SourceEmail     = "email"      // the primary email address
	SourceFirstName = "first_name" //
	SourceLastName  = "last_name"  //
	SourceUsername  = "username"   //
	SourceImageURL  = "image_url"  //
	SourceCreatedAt = "created_at" // Clerk's created_at
	SourceUpdatedAt = "updated_at" // Clerk's updated_at: the version written
	SourceNow       = "now"        // the time of the write

	SourceEmailVerified   = "email_verified"   // whether the primary email is verified
	SourceEmailAddresses  = "email_addresses"  // every address, the primary first (a JSON array)
	SourcePhone           = "phone"            // the primary phone number
	SourceExternalID      = "external_id"      //
	SourcePublicMetadata  = "public_metadata"  // whole, or one key by path: public_metadata.role
	SourcePrivateMetadata = "private_metadata" //
	SourceUnsafeMetadata  = "unsafe_metadata"  //
	SourceLastSignInAt    = "last_sign_in_at"  //
	SourceBanned          = "banned"           //
	SourceLocked          = "locked"           //
	SourceLastActiveAt    = "last_active_at"   //
	SourceDeprovisioned   = "deprovisioned"    // deactivated by directory sync (SCIM), still in Clerk
	SourceObject          = "object"           // the whole user object as JSON, as Clerk sent it
	SourceFullName        = "full_name"        // first and last name, as Clerk's fullName joins them

	// An organization's (with id, image_url, created_at, updated_at, now).
	SourceName = "name"
	SourceSlug = "slug"
	// A membership's (with created_at, updated_at, public_metadata, now).
	SourceRole        = "role"        // org:admin, org:member, ...
	SourcePermissions = "permissions" // the role's permissions, a JSON array
)

// Source is one column of an entity's source relation: the row a write
// statement reads one user, organization or membership from. Each is
// declared once, in UserSources, OrganizationSources or
// MembershipSources; the kinds the mapping checks, what Trim keeps, the
// relation the compiler builds, its parameters and which sources a NOT
// NULL column may take without a missing value are all read from there.
type Source[T any] struct {
	// Name is the source as a mapping's YAML names it; "" for a relation
	// column no mapping may name (the content hash, a membership's
	// organization and user).
	Name string
	// Column is the relation's column; "" for a source computed in SQL
	// (now, full_name), which has none.
	Column string
	// Kind is what its values are.
	Kind Kind
	// SQLType is the column's type in the relation.
	SQLType string
	// NotNull says it always has a value (a version, a flag).
	NotNull bool
	// Value is an entity's value, as the statement's parameter: text,
	// JSON as text, a time, a flag, or a pointer to one (nil for none).
	Value func(T) any
	// Drop clears the field Trim leaves out when no column reads it; nil
	// for a field always sent (clerksync's own).
	Drop func(*T)
	// JSON is the field of a JSON source Trim projects onto the paths its
	// columns read (instead of Drop).
	JSON func(*T) *json.RawMessage
	// Link is the Users.Link that keeps the field though no column
	// reads it.
	Link string
}

// kinds is the kind of each source a mapping may name.
func kinds[T any](sources []Source[T]) map[string]Kind {
	k := make(map[string]Kind, len(sources))
	for _, s := range sources {
		if s.Name != "" {
			k[s.Name] = s.Kind
		}
	}
	return k
}

// text is an optional text's parameter: nil for none.
func text(s *string) any { return s }

// jsonText is raw JSON as a text parameter (cast to jsonb in the SQL), nil
// for none.
func jsonText(raw []byte) any {
	if len(raw) == 0 {
		return nil
	}
	s := string(raw)
	return &s
}

// jsonArray is a list as a JSON text parameter, nil when empty.
func jsonArray(list []string) any {
	if len(list) == 0 {
		return nil
	}
	b, _ := json.Marshal(list) // a []string always marshals
	return jsonText(b)
}

// optionalTime is a time parameter, nil for the zero time (Clerk sent
// none).
func optionalTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return &t
}

// UserSources are a user column's sources, in the order of the source
// relation's columns.
var UserSources = []Source[clerkevent.User]{
	{Name: SourceClerkID, Column: "clerk_id", Kind: Text, SQLType: "text", NotNull: true, Value: func(u clerkevent.User) any { return u.ClerkID }},
	{Name: SourceEmail, Kind: Text, SQLType: "text", Value: func(u clerkevent.User) any { return text(u.Email) }},
	{Name: SourceFirstName, Kind: Text, SQLType: "text", Value: func(u clerkevent.User) any { return text(u.FirstName) }},
	{Name: SourceLastName, Kind: Text, SQLType: "text", Value: func(u clerkevent.User) any { return text(u.LastName) }},
	{Name: SourceUsername, Kind: Text, SQLType: "text", Value: func(u clerkevent.User) any { return text(u.Username) }},
	{Name: SourceImageURL, Kind: Text, SQLType: "text", Value: func(u clerkevent.User) any { return text(u.ImageURL) }},
	{Name: SourceCreatedAt, Kind: Time, SQLType: "timestamptz", Value: func(u clerkevent.User) any { return optionalTime(u.ClerkCreatedAt) }},
	{Name: SourceUpdatedAt, Kind: Time, SQLType: "timestamptz", NotNull: true, Value: func(u clerkevent.User) any { return u.ClerkUpdatedAt }},
	// The tie-break of equal versions, which the state table records.
	{Column: "content_hash", Kind: Text, SQLType: `text collate "C"`, NotNull: true, Value: func(u clerkevent.User) any { return u.ContentHash() }},
	{Name: SourceEmailVerified, Kind: Bool, SQLType: "boolean", Link: LinkEmail,
		Value: func(u clerkevent.User) any { return u.EmailVerified }, Drop: func(u *clerkevent.User) { u.EmailVerified = nil }},
	{Name: SourceEmailAddresses, Kind: JSON, SQLType: "jsonb",
		Value: func(u clerkevent.User) any { return jsonArray(u.EmailAddresses) }, Drop: func(u *clerkevent.User) { u.EmailAddresses = nil }},
	{Name: SourcePhone, Kind: Text, SQLType: "text",
		Value: func(u clerkevent.User) any { return text(u.Phone) }, Drop: func(u *clerkevent.User) { u.Phone = nil }},
	{Name: SourceExternalID, Kind: Text, SQLType: "text", Link: LinkExternalID,
		Value: func(u clerkevent.User) any { return text(u.ExternalID) }, Drop: func(u *clerkevent.User) { u.ExternalID = nil }},
	{Name: SourcePublicMetadata, Kind: JSON, SQLType: "jsonb",
		Value: func(u clerkevent.User) any { return jsonText(u.PublicMetadata) }, JSON: func(u *clerkevent.User) *json.RawMessage { return &u.PublicMetadata }},
	{Name: SourcePrivateMetadata, Kind: JSON, SQLType: "jsonb",
		Value: func(u clerkevent.User) any { return jsonText(u.PrivateMetadata) }, JSON: func(u *clerkevent.User) *json.RawMessage { return &u.PrivateMetadata }},
	{Name: SourceUnsafeMetadata, Kind: JSON, SQLType: "jsonb",
		Value: func(u clerkevent.User) any { return jsonText(u.UnsafeMetadata) }, JSON: func(u *clerkevent.User) *json.RawMessage { return &u.UnsafeMetadata }},
	{Name: SourceLastSignInAt, Kind: Time, SQLType: "timestamptz",
		Value: func(u clerkevent.User) any { return optionalTime(u.LastSignInAt) }, Drop: func(u *clerkevent.User) { u.LastSignInAt = time.Time{} }},
	{Name: SourceBanned, Kind: Bool, SQLType: "boolean", NotNull: true,
		Value: func(u clerkevent.User) any { return u.Banned }, Drop: func(u *clerkevent.User) { u.Banned = false }},
	{Name: SourceLocked, Kind: Bool, SQLType: "boolean", NotNull: true,
		Value: func(u clerkevent.User) any { return u.Locked }, Drop: func(u *clerkevent.User) { u.Locked = false }},
	{Name: SourceObject, Kind: JSON, SQLType: "jsonb",
		Value: func(u clerkevent.User) any { return jsonText(u.Object) }, JSON: func(u *clerkevent.User) *json.RawMessage { return &u.Object }},
	{Name: SourceLastActiveAt, Kind: Time, SQLType: "timestamptz",
		Value: func(u clerkevent.User) any { return optionalTime(u.LastActiveAt) }, Drop: func(u *clerkevent.User) { u.LastActiveAt = time.Time{} }},
	{Name: SourceDeprovisioned, Kind: Bool, SQLType: "boolean", NotNull: true,
		Value: func(u clerkevent.User) any { return u.Deprovisioned }, Drop: func(u *clerkevent.User) { u.Deprovisioned = false }},
	// Computed in SQL: the time of the write, and Clerk's fullName.
	{Name: SourceNow, Kind: Time, NotNull: true},
	{Name: SourceFullName, Kind: Text},
}

// OrganizationSources are an organization column's sources, in the order
// of the source relation's columns.
var OrganizationSources = []Source[clerkevent.Organization]{
	{Column: "clerk_id", Kind: Text, SQLType: "text", NotNull: true, Value: func(o clerkevent.Organization) any { return o.ClerkID }},
	{Name: SourceName, Kind: Text, SQLType: "text", Value: func(o clerkevent.Organization) any { return text(o.Name) }},
	{Name: SourceSlug, Kind: Text, SQLType: "text", Value: func(o clerkevent.Organization) any { return text(o.Slug) }},
	{Name: SourceImageURL, Kind: Text, SQLType: "text", Value: func(o clerkevent.Organization) any { return text(o.ImageURL) }},
	{Name: SourceCreatedAt, Kind: Time, SQLType: "timestamptz", Value: func(o clerkevent.Organization) any { return optionalTime(o.ClerkCreatedAt) }},
	{Name: SourceUpdatedAt, Kind: Time, SQLType: "timestamptz", NotNull: true, Value: func(o clerkevent.Organization) any { return o.ClerkUpdatedAt }},
	{Column: "content_hash", Kind: Text, SQLType: `text collate "C"`, NotNull: true, Value: func(o clerkevent.Organization) any { return o.ContentHash() }},
	{Name: SourcePublicMetadata, Kind: JSON, SQLType: "jsonb",
		Value: func(o clerkevent.Organization) any { return jsonText(o.PublicMetadata) }, JSON: func(o *clerkevent.Organization) *json.RawMessage { return &o.PublicMetadata }},
	{Name: SourcePrivateMetadata, Kind: JSON, SQLType: "jsonb",
		Value: func(o clerkevent.Organization) any { return jsonText(o.PrivateMetadata) }, JSON: func(o *clerkevent.Organization) *json.RawMessage { return &o.PrivateMetadata }},
	{Name: SourceNow, Kind: Time, NotNull: true},
}

// MembershipSources are a membership column's sources, in the order of
// the source relation's columns.
var MembershipSources = []Source[clerkevent.Membership]{
	{Column: "clerk_id", Kind: Text, SQLType: "text", NotNull: true, Value: func(m clerkevent.Membership) any { return m.ClerkID }},
	// The organization and user it joins: the mapping's organization and
	// user columns, not sources.
	{Column: "organization_id", Kind: Text, SQLType: "text", NotNull: true, Value: func(m clerkevent.Membership) any { return m.Organization.ClerkID }},
	{Column: "user_id", Kind: Text, SQLType: "text", NotNull: true, Value: func(m clerkevent.Membership) any { return m.UserID }},
	// Collated "C": role breaks ties between equal versions, byte by byte.
	{Name: SourceRole, Kind: Text, SQLType: `text collate "C"`, NotNull: true, Value: func(m clerkevent.Membership) any { return m.Role }},
	{Name: SourceCreatedAt, Kind: Time, SQLType: "timestamptz", Value: func(m clerkevent.Membership) any { return optionalTime(m.ClerkCreatedAt) }},
	{Name: SourceUpdatedAt, Kind: Time, SQLType: "timestamptz", NotNull: true, Value: func(m clerkevent.Membership) any { return m.ClerkUpdatedAt }},
	{Name: SourcePermissions, Kind: JSON, SQLType: "jsonb",
		Value: func(m clerkevent.Membership) any { return jsonArray(m.Permissions) }, Drop: func(m *clerkevent.Membership) { m.Permissions = nil }},
	{Name: SourcePublicMetadata, Kind: JSON, SQLType: "jsonb",
		Value: func(m clerkevent.Membership) any { return jsonText(m.PublicMetadata) }, JSON: func(m *clerkevent.Membership) *json.RawMessage { return &m.PublicMetadata }},
	{Name: SourceNow, Kind: Time, NotNull: true},
}

// SourceNotNull reports whether the source named name always has a value,
// whatever the entity (a name is one source for each).
func SourceNotNull(name string) bool {
	return notNull(UserSources, name) || notNull(OrganizationSources, name) || notNull(MembershipSources, name)
}

func notNull[T any](sources []Source[T], name string) bool {
	return slices.ContainsFunc(sources, func(s Source[T]) bool { return s.Name == name && s.NotNull })
}

// RelationColumn is the source relation's column of s: its Column, or its
// Name where they agree.
func (s Source[T]) RelationColumn() string {
	if s.Column != "" {
		return s.Column
	}
	if s.Value == nil {
		return ""
	}
	return s.Name
}

// Args are e's values keyed by the relation's columns: the named
// arguments of a statement that reads one entity.
func Args[T any](sources []Source[T], e T) map[string]any {
	args := make(map[string]any, len(sources))
	for _, s := range sources {
		if col := s.RelationColumn(); col != "" {
			args[col] = s.Value(e)
		}
	}
	return args
}

// trim clears or projects each of e's fields that no column of cols reads
// and no link in use keeps.
func trim[T any](sources []Source[T], e *T, cols []Column, links func(string) bool) {
	for _, s := range sources {
		switch {
		case s.JSON != nil:
			raw := s.JSON(e)
			*raw = kept(*raw, cols, s.Name)
		case s.Drop != nil && !usesSource(cols, s.Name) && !(s.Link != "" && links != nil && links(s.Link)):
			s.Drop(e)
		}
	}
}
