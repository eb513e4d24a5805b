// Package clerkevent turns a Clerk webhook body into the normalized event that
// clerksync's workflows carry. It is the one place that knows Clerk's JSON.
//
// Clerk's own examples disagree on the envelope (`instance_id` in one,
// `event_attributes` in another), so every envelope field except `type` and
// `data` is optional. User payloads decode into clerk-sdk-go's clerk.User, so a
// field Clerk adds is picked up by upgrading the SDK, not by editing a copy.
package clerkevent

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/clerk/clerk-sdk-go/v2"

	"github.com/clerksync/clerksync/ensure/contract"
)

// Type is a Clerk webhook event type such as "user.created".
type Type string

// The event types clerksync applies. Any other type is acknowledged and
// ignored, so Svix stops retrying it.
const (
	UserCreated Type = "user.created"
	UserUpdated Type = "user.updated"
	UserDeleted Type = "user.deleted"
)

// maxClerkIDLen bounds a Clerk user ID. Real IDs are ~32 characters; the bound
// keeps hostile input from producing oversized workflow IDs and index keys.
const maxClerkIDLen = 128

// ErrMalformed marks a body that is not a Clerk event clerksync can apply:
// broken JSON, a missing `type`, or a user event without `data.id`. The
// webhook answers it with 400.
var ErrMalformed = errors.New("malformed clerk event")

// ErrUnhandledType marks a well-formed event of a type clerksync does not
// apply (session.created, email.created, ...).
var ErrUnhandledType = errors.New("unhandled clerk event type")

// Event is one Clerk webhook, normalized: what a UserWorkflow or an
// OrganizationWorkflow needs and nothing else, so histories stay small.
type Event struct {
	// ID is the Svix message ID (`svix-id`). Svix keeps it across retries of
	// the same message, so it identifies duplicates.
	ID string `json:"id,omitempty"`
	// Type is the Clerk event type.
	Type Type `json:"type"`
	// ClerkID is the Clerk user ID the event is about: the user's, or a
	// membership's member; empty for an organization event.
	ClerkID string `json:"clerk_id,omitempty"`
	// User is the user's state after the event; nil for user.deleted.
	User *User `json:"user,omitempty"`
	// OrganizationID is the Clerk organization ID of an organization or
	// membership event.
	OrganizationID string `json:"organization_id,omitempty"`
	// Organization is the organization's state after organization.created
	// or .updated.
	Organization *Organization `json:"organization,omitempty"`
	// Membership is the membership of an organizationMembership event, the
	// deleted one included.
	Membership *Membership `json:"membership,omitempty"`
	// OccurredAt is the envelope's `timestamp`; zero when Clerk left it out.
	OccurredAt time.Time `json:"occurred_at,omitzero"`
	// InstanceID is the envelope's `instance_id`, the Clerk instance that
	// sent the event; "" when it is left out (payloads before 2024). The
	// starter checks it and does not hand it on.
	InstanceID string `json:"-"`
}

// Target is the entity whose workflow applies e, and its Clerk ID: the
// organization of an organization or membership event, else the user.
func (e Event) Target() (contract.Entity, string) {
	if e.OrganizationID != "" {
		return contract.Organization, e.OrganizationID
	}
	return contract.User, e.ClerkID
}

// User is the slice of a Clerk user that clerksync stores. Optional text is
// nil when Clerk has no value: a user without a primary email has Email nil,
// never "".
type User struct {
	ClerkID   string  `json:"clerk_id"`
	Email     *string `json:"email,omitempty"`
	FirstName *string `json:"first_name,omitempty"`
	LastName  *string `json:"last_name,omitempty"`
	Username  *string `json:"username,omitempty"`
	ImageURL  *string `json:"image_url,omitempty"`
	// ClerkCreatedAt is Clerk's `created_at`.
	ClerkCreatedAt time.Time `json:"clerk_created_at"`
	// ClerkUpdatedAt is Clerk's `updated_at`: the version that orders events
	// for one user, since Svix delivers them in no guaranteed order.
	ClerkUpdatedAt time.Time `json:"clerk_updated_at"`

	// The rest of Clerk's user object, for a mapping that writes it
	// (mapping.Mapping.Trim keeps what the mapping reads and drops the rest,
	// so what a product does not store does not travel through Temporal).

	// EmailVerified is whether the primary email is verified; nil without
	// one.
	EmailVerified *bool `json:"email_verified,omitempty"`
	// EmailAddresses are every address, the primary first.
	EmailAddresses []string `json:"email_addresses,omitempty"`
	// Phone is the primary phone number.
	Phone      *string `json:"phone,omitempty"`
	ExternalID *string `json:"external_id,omitempty"`
	// The metadata objects, compacted JSON.
	PublicMetadata  json.RawMessage `json:"public_metadata,omitempty"`
	PrivateMetadata json.RawMessage `json:"private_metadata,omitempty"`
	UnsafeMetadata  json.RawMessage `json:"unsafe_metadata,omitempty"`
	LastSignInAt    time.Time       `json:"last_sign_in_at,omitzero"`
	Banned          bool            `json:"banned,omitempty"`
	Locked          bool            `json:"locked,omitempty"`
	// Object is the whole user object as Clerk sent it, compacted.
	Object json.RawMessage `json:"object,omitempty"`
	// LastActiveAt is Clerk's last_active_at; Deprovisioned is Clerk's
	// deprovisioned (directory sync, SCIM: a deactivated user arrives as
	// user.updated, not user.deleted).
	LastActiveAt  time.Time `json:"last_active_at,omitzero"`
	Deprovisioned bool      `json:"deprovisioned,omitempty"`
}

// MinimalVersion is the version (ClerkUpdatedAt) of a minimal user: the
// Clerk ID alone, written by ensure or for a membership's member before
// clerksync has the user's data. It is older than any version Clerk
// sends, so the user's own data wins over it whenever it arrives.
var MinimalVersion = time.UnixMilli(0).UTC()

// ClerkUser is Clerk's user object as clerksync reads it: clerk-sdk-go's
// User, the fields of Clerk's that it does not model, and the object as
// Clerk sent it.
type ClerkUser struct {
	clerk.User
	Deprovisioned bool `json:"deprovisioned"`
	// Raw is the object's JSON as Clerk sent it; nil when the caller did
	// not keep it (the object is then re-encoded from the fields above,
	// losing what they do not model).
	Raw json.RawMessage `json:"-"`
}

// DecodeClerkUser decodes a user object as Clerk sends it, keeping raw.
func DecodeClerkUser(raw json.RawMessage) (*ClerkUser, error) {
	cu := &ClerkUser{}
	if err := unmarshalData(raw, cu); err != nil {
		return nil, err
	}
	cu.Raw = raw
	return cu, nil
}

// FromSDK is a ClerkUser for a clerk-sdk-go User, from the JSON of the
// answer it was read from when the SDK kept it (user.Client.Get does), so
// that what the SDK does not model is not lost.
func FromSDK(u *clerk.User) (*ClerkUser, error) {
	if u.Response != nil && len(u.Response.RawJSON) > 0 {
		return DecodeClerkUser(u.Response.RawJSON)
	}
	return &ClerkUser{User: *u}, nil
}

// envelope is the part of Clerk's event wrapper clerksync reads.
type envelope struct {
	Type       Type            `json:"type"`
	Data       json.RawMessage `json:"data"`
	Timestamp  int64           `json:"timestamp"`
	InstanceID string          `json:"instance_id"`
}

// occurredAt reads the envelope's timestamp, which Clerk's webhook document
// gives no unit: its examples are in seconds, Clerk's docs and its payloads
// in milliseconds. No time in milliseconds since 2001 is below 10^12, and
// none in seconds before the year 33658 reaches it.
func occurredAt(ts int64) time.Time {
	switch {
	case ts <= 0:
		return time.Time{}
	case ts < 1e12:
		return time.Unix(ts, 0).UTC()
	}
	return time.UnixMilli(ts).UTC()
}

// deletedUser is the whole of a user.deleted payload.
type deletedUser struct {
	ID      string `json:"id"`
	Deleted bool   `json:"deleted"`
}

// Parse decodes a Clerk webhook body. svixID is the message's `svix-id`
// header. Errors wrap ErrMalformed or ErrUnhandledType; for the latter the
// returned Event still carries its Type, so callers can count it.
func Parse(body []byte, svixID string) (Event, error) {
	var env envelope
	if err := json.Unmarshal(body, &env); err != nil {
		return Event{}, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if env.Type == "" {
		return Event{}, fmt.Errorf("%w: no type", ErrMalformed)
	}
	ev := Event{ID: svixID, Type: env.Type, OccurredAt: occurredAt(env.Timestamp), InstanceID: env.InstanceID}
	switch env.Type {
	case UserCreated, UserUpdated:
		u, err := parseUser(env.Data)
		if err != nil {
			return Event{}, fmt.Errorf("%w: %s: %v", ErrMalformed, env.Type, err)
		}
		ev.ClerkID, ev.User = u.ClerkID, &u
	case UserDeleted:
		var d deletedUser
		if err := unmarshalData(env.Data, &d); err != nil {
			return Event{}, fmt.Errorf("%w: %s: %v", ErrMalformed, env.Type, err)
		}
		if err := ValidateClerkID(d.ID); err != nil {
			return Event{}, fmt.Errorf("%w: %s: %v", ErrMalformed, env.Type, err)
		}
		ev.ClerkID = d.ID
	case OrganizationCreated, OrganizationUpdated, OrganizationDeleted, MembershipCreated, MembershipUpdated, MembershipDeleted:
		if err := parseOrganizationEvent(&ev, env.Data); err != nil {
			return Event{}, fmt.Errorf("%w: %s: %v", ErrMalformed, env.Type, err)
		}
	default:
		return ev, fmt.Errorf("%w: %q", ErrUnhandledType, env.Type)
	}
	return ev, nil
}

// NormalizeUser maps Clerk's user object (from a webhook or the Backend
// API) to the stored shape. It is the one place that decides what a column
// holds.
func NormalizeUser(cu *ClerkUser) (User, error) {
	u, err := NormalizeUserFields(cu)
	if err != nil {
		return User{}, err
	}
	if cu.Raw != nil {
		var b bytes.Buffer
		if err := json.Compact(&b, cu.Raw); err != nil {
			return User{}, fmt.Errorf("data: %w", err)
		}
		u.Object = b.Bytes()
	} else if u.Object, err = json.Marshal(cu); err != nil {
		return User{}, fmt.Errorf("data: %w", err)
	}
	return u, nil
}

// NormalizeUserFields is NormalizeUser without Object, for a layout that
// does not store the whole object (its writes trim it anyway): marshalling
// it is about a tenth of what a backfill costs the worker.
func NormalizeUserFields(cu *ClerkUser) (User, error) {
	if err := ValidateClerkID(cu.ID); err != nil {
		return User{}, err
	}
	if cu.UpdatedAt <= 0 {
		return User{}, errors.New("data.updated_at is missing: events cannot be ordered without it")
	}
	u := User{
		ClerkID:        cu.ID,
		Email:          primaryEmail(&cu.User),
		FirstName:      nonEmpty(cu.FirstName),
		LastName:       nonEmpty(cu.LastName),
		Username:       nonEmpty(cu.Username),
		ImageURL:       nonEmpty(cu.ImageURL),
		ClerkUpdatedAt: time.UnixMilli(cu.UpdatedAt).UTC(),
	}
	if cu.CreatedAt > 0 {
		u.ClerkCreatedAt = time.UnixMilli(cu.CreatedAt).UTC()
	}
	for _, e := range cu.EmailAddresses {
		if e == nil || e.EmailAddress == "" {
			continue
		}
		if cu.PrimaryEmailAddressID != nil && e.ID == *cu.PrimaryEmailAddressID {
			verified := e.Verification != nil && e.Verification.Status == "verified"
			u.EmailVerified = &verified
			u.EmailAddresses = append([]string{e.EmailAddress}, u.EmailAddresses...)
			continue
		}
		u.EmailAddresses = append(u.EmailAddresses, e.EmailAddress)
	}
	if cu.PrimaryPhoneNumberID != nil {
		for _, p := range cu.PhoneNumbers {
			if p != nil && p.ID == *cu.PrimaryPhoneNumberID {
				u.Phone = nonEmpty(&p.PhoneNumber)
			}
		}
	}
	u.ExternalID = nonEmpty(cu.ExternalID)
	var err error
	for _, m := range []struct {
		name string
		from json.RawMessage
		to   *json.RawMessage
	}{{"public_metadata", cu.PublicMetadata, &u.PublicMetadata}, {"private_metadata", cu.PrivateMetadata, &u.PrivateMetadata},
		{"unsafe_metadata", cu.UnsafeMetadata, &u.UnsafeMetadata}} {
		if *m.to, err = compactObject(m.from); err != nil {
			return User{}, fmt.Errorf("data.%s: %w", m.name, err)
		}
	}
	if cu.LastSignInAt != nil && *cu.LastSignInAt > 0 {
		u.LastSignInAt = time.UnixMilli(*cu.LastSignInAt).UTC()
	}
	u.Banned, u.Locked, u.Deprovisioned = cu.Banned, cu.Locked, cu.Deprovisioned
	if cu.LastActiveAt != nil && *cu.LastActiveAt > 0 {
		u.LastActiveAt = time.UnixMilli(*cu.LastActiveAt).UTC()
	}
	return u, nil
}

// compactObject returns a metadata object as compact JSON, nil for none
// (absent, null or {}), so equal metadata compares and hashes equal.
func compactObject(raw json.RawMessage) (json.RawMessage, error) {
	if len(raw) == 0 {
		return nil, nil
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return nil, err
	}
	switch buf.String() {
	case "null", "{}":
		return nil, nil
	}
	if buf.Bytes()[0] != '{' {
		return nil, errors.New("not an object")
	}
	return buf.Bytes(), nil
}

// ValidateClerkID rejects what cannot be a Clerk user ID (user_ and base62):
// empty, overlong, or holding anything but ASCII letters, digits, '_' and
// '-'. The ID ends up in workflow IDs, index keys and the Clerk API's URL
// path, so nothing else (a '/', a space) gets that far.
func ValidateClerkID(id string) error {
	if id == "" {
		return errors.New("data.id is missing")
	}
	if len(id) > maxClerkIDLen {
		return fmt.Errorf("data.id is %d bytes, longer than %d", len(id), maxClerkIDLen)
	}
	if strings.IndexFunc(id, func(r rune) bool {
		return !(r < utf8.RuneSelf && (unicode.IsLetter(r) || unicode.IsDigit(r) || r == '_' || r == '-'))
	}) >= 0 {
		return fmt.Errorf("data.id %q holds characters a Clerk ID never has", id)
	}
	return nil
}

func parseUser(data json.RawMessage) (User, error) {
	cu, err := DecodeClerkUser(data)
	if err != nil {
		return User{}, err
	}
	return NormalizeUser(cu)
}

func unmarshalData(data json.RawMessage, v any) error {
	if len(data) == 0 || string(data) == "null" {
		return errors.New("data is missing")
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("data: %w", err)
	}
	return nil
}

// primaryEmail finds the address Clerk marks primary; a user may have
// addresses and still no primary one (or none at all, signing in by phone).
func primaryEmail(cu *clerk.User) *string {
	if cu.PrimaryEmailAddressID == nil {
		return nil
	}
	for _, e := range cu.EmailAddresses {
		if e != nil && e.ID == *cu.PrimaryEmailAddressID {
			return nonEmpty(&e.EmailAddress)
		}
	}
	return nil
}

func nonEmpty(s *string) *string {
	if s == nil || *s == "" {
		return nil
	}
	v := *s
	return &v
}
