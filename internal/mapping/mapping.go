// Package mapping reads CLERKSYNC_MAPPING: the YAML file that maps Clerk's
// users, their trial subscriptions, organizations and memberships onto a
// product's own tables, each column given its source. It checks the file on its own terms (known
// sources, one role per column); the store checks it against the live
// database and builds its SQL from it (store.Layout).
//
//	users:
//	  table: public.User
//	  clerk_id: clerkId
//	  key: {column: id, generate: uuid}
//	  columns:
//	    email: {source: email, missing: ""}
//	    firstName: first_name
//	    updatedAt: now
//	  delete: delete
//	trials:
//	  table: public.Subscription
//	  user: userId
//	  key: {column: id, generate: uuid}
//	  plan: {column: plan, value: trial}
//	  status: {column: status, trialing: trialing, expired: expired}
//	  ends_at: trialEndsAt
//	  columns:
//	    updatedAt: now
//	organizations: off   # or organizations: {table, clerk_id, key, columns, delete}
//	                     # and memberships: {table, clerk_id, key, organization, user, columns, delete}
//
// Names are the database's own, case and all (Prisma's "User", "clerkId"):
// clerksync quotes every identifier it writes.
package mapping

import (
	"bytes"
	"fmt"
	"os"
	"slices"

	"go.yaml.in/yaml/v3"
)

// MissingNow is a time source's missing value: the time of the write (a
// NOT NULL created_at column, for a row written before Clerk's profile
// arrives).
const MissingNow = "now"

// Kind is what a source's values are, which decides the column types that
// can hold it.
type Kind int

// Kinds of sources.
const (
	Text Kind = iota
	Time
	Bool
	// JSON is a JSON value: an object, an array, or (by path) anything.
	JSON
)

// userSources, organizationSources and membershipSources are each
// entity's sources by name, with their kinds.
var (
	userSources         = kinds(UserSources)
	organizationSources = kinds(OrganizationSources)
	membershipSources   = kinds(MembershipSources)
)

// metadataSources may take a path into the object: a metadata object, or
// the whole user object (object.last_active_at).
var metadataSources = []string{SourcePublicMetadata, SourcePrivateMetadata, SourceUnsafeMetadata, SourceObject}

// SourceKind returns the kind of a column's source, of any entity (a name
// is one kind whatever the entity).
func SourceKind(source string) Kind {
	if k, ok := userSources[source]; ok {
		return k
	}
	if k, ok := organizationSources[source]; ok {
		return k
	}
	return membershipSources[source]
}

// Key generation, for a primary key column without a database default.
const (
	// GenerateDefault leaves the key to the column's default (an identity,
	// a serial, gen_random_uuid()).
	GenerateDefault = ""
	// GenerateUUID writes a random UUID (text or uuid columns).
	GenerateUUID = "uuid"
)

// Deletion policies.
const (
	// Delete removes the row; the product's foreign keys cascade, or refuse
	// (the removal is then retried and shown failed).
	Delete = "delete"
	// Soft sets the deleted-at column and clears the PII columns; the row
	// and everything that references it stay.
	Soft = "soft"
)

// Mapping is a parsed, self-consistent CLERKSYNC_MAPPING.
type Mapping struct {
	Users *Users
	// Trials is nil when the product has no trials ("trials: off").
	Trials *Trials
	// Organizations and Memberships are nil when the product keeps no
	// organizations ("organizations: off"): clerksync then acknowledges
	// their events and applies none.
	Organizations *Organizations
	Memberships   *Memberships
}

// Deletion is how an entity's row goes when Clerk deletes it.
// Entity is what the mapping of every entity (users, organizations,
// memberships) says: its table, the column holding its Clerk ID, its key,
// its columns and how its rows are deleted.
type Entity struct {
	Table Table
	// ClerkID is the column holding the Clerk ID (unique).
	ClerkID string
	Key     Key
	// Columns are sorted by name.
	Columns []Column
	Deletion
}

type Deletion struct {
	// Delete is Delete or Soft; with Soft, DeletedAt is the column set to
	// the deletion's time and Clear the columns cleared (to Missing, or
	// NULL).
	Delete    string
	DeletedAt string
	Clear     []string
}

// Organizations maps Clerk organizations onto the product's table.
type Organizations struct {
	// Entity's ClerkID holds the Clerk organization ID, org_... (unique).
	Entity
}

// Memberships maps Clerk organization memberships onto the product's
// table: one row per organization and user.
type Memberships struct {
	// Entity's ClerkID holds the membership ID, orgmem_... (unique).
	Entity
	// Organization and User are the columns referencing the organizations'
	// and the users' keys.
	Organization, User string
}

// Table is a schema-qualified table name.
type Table struct{ Schema, Name string }

func (t Table) String() string { return t.Schema + "." + t.Name }

// Key is a table's primary key column and how a new row's key is made.
type Key struct {
	Column   string
	Generate string
}

// Column is one mapped column.
type Column struct {
	Name   string
	Source string
	// Path, for a metadata source, is the key (and keys below it) the
	// column takes: public_metadata.role is Source public_metadata, Path
	// [role]. Empty takes the whole object.
	Path []string
	// Missing, when set, is written instead of NULL when the source has no
	// value (a NOT NULL email column of a user with no primary email).
	Missing *string
	// InsertOnly columns are written when the row is created, never after
	// ("on: insert": a createdAt of the write's time).
	InsertOnly bool
	// Exposed columns are in the row ensure answers (and in the OpenAPI
	// document's User); see Exposed.
	Exposed bool
	// Keep: when Clerk has no value for the source, an update keeps the
	// row's value (the app's) instead of writing NULL or Missing over it;
	// a new row still gets Missing ("keep: true": a role the app set
	// before Clerk knew roles).
	Keep bool
}

// Users maps Clerk users onto the product's user table.
type Users struct {
	// Entity's ClerkID holds the Clerk user ID, user_... (unique).
	Entity
	// Link is how a row of the app's from before Clerk (no Clerk ID) is
	// found for a Clerk user and given its Clerk ID, in this order:
	// LinkExternalID, LinkEmail. The default is LinkExternalID alone.
	Link []string
	// EmailColumn is the column mapped from the email source, which
	// LinkEmail compares; "" for none.
	EmailColumn string
}

// How a row from before Clerk is linked to its Clerk user (Users.Link).
const (
	// LinkExternalID links the row whose key is the user's external_id,
	// as Clerk's migration path (createUser with externalId) sets it.
	LinkExternalID = "external_id"
	// LinkEmail links the row whose email column holds the user's
	// primary email address, once Clerk has verified it.
	LinkEmail = "email"
)

// Links reports whether u links rows from before Clerk by how.
func (u *Users) Links(how string) bool { return slices.Contains(u.Link, how) }

// Trials maps each user's trial onto the product's subscription table.
type Trials struct {
	Table Table
	// User is the column referencing the user table's Key.
	User string
	Key  Key
	// PlanColumn holds PlanValue in a trial's row.
	PlanColumn, PlanValue string
	// StatusColumn holds Trialing, then Expired.
	StatusColumn, Trialing, Expired string
	// EndsAt holds the trial's end.
	EndsAt string
	// Columns are further columns (now, a generated key), sorted by name.
	Columns []Column
}

// Load reads and checks the mapping file at path.
func Load(path string) (*Mapping, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("CLERKSYNC_MAPPING: %w", err)
	}
	m, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("CLERKSYNC_MAPPING %s: %w", path, err)
	}
	return m, nil
}

// Parse reads and checks a mapping document. Every mistake is listed, one
// per line, each naming the entity, the column and the fix.
func Parse(data []byte) (*Mapping, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var f file
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("parse: %w", err)
	}
	var p problems
	if f.Users == nil {
		p.add("users: missing: the mapping names the product's user table")
		return nil, p.err()
	}
	m := &Mapping{Users: parseUsers(f.Users, &p)}
	switch {
	case f.Organizations == nil:
		p.add("organizations: missing: map the organization table (and memberships), or write organizations: off " +
			"(clerksync then ignores organization events and the backfill skips them)")
	case f.Organizations.off:
		if f.Memberships != nil {
			p.add("memberships: organizations are off; map organizations too, or leave memberships out")
		}
	default:
		m.Organizations = parseOrganizations(&f.Organizations.orgs, &p)
		if f.Memberships == nil {
			p.add("memberships: missing: with organizations mapped, map the membership table too")
		} else {
			m.Memberships = parseMemberships(f.Memberships, &p)
		}
	}
	if f.Trials == nil {
		p.add("trials: missing: map the trial subscription table, or write trials: off")
	} else if !f.Trials.off {
		m.Trials = parseTrials(&f.Trials.trials, &p)
	}
	if err := p.err(); err != nil {
		return nil, err
	}
	return m, nil
}

// Uses reports whether the mapping writes a source.
func (m *Mapping) Uses(source string) bool {
	return m != nil && usesSource(m.Users.Columns, source)
}

// NamedTable is a table a mapping names, and for which entity ("users",
// "trials", "organizations", "memberships"), as its section is called.
type NamedTable struct {
	Entity string
	Table  Table
}

// Tables lists the tables m maps, in the order of its sections.
func (m *Mapping) Tables() []NamedTable {
	tables := []NamedTable{{"users", m.Users.Table}}
	if m.Trials != nil {
		tables = append(tables, NamedTable{"trials", m.Trials.Table})
	}
	if m.Organizations != nil {
		tables = append(tables, NamedTable{"organizations", m.Organizations.Table}, NamedTable{"memberships", m.Memberships.Table})
	}
	return tables
}
