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
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
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
	SourceObject          = "object"           // the whole user object as JSON
	SourceFullName        = "full_name"        // first and last name, as Clerk's fullName joins them

	// An organization's (with id, image_url, created_at, updated_at, now).
	SourceName = "name"
	SourceSlug = "slug"
	// A membership's (with created_at, updated_at, public_metadata, now).
	SourceRole        = "role"        // org:admin, org:member, ...
	SourcePermissions = "permissions" // the role's permissions, a JSON array
)

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

// userSources are the user columns' sources and their kinds.
var userSources = map[string]Kind{
	SourceClerkID: Text, SourceEmail: Text, SourceFirstName: Text, SourceLastName: Text, SourceUsername: Text,
	SourceImageURL: Text, SourceCreatedAt: Time, SourceUpdatedAt: Time, SourceNow: Time,
	SourceEmailVerified: Bool, SourceEmailAddresses: JSON, SourcePhone: Text, SourceExternalID: Text,
	SourcePublicMetadata: JSON, SourcePrivateMetadata: JSON, SourceUnsafeMetadata: JSON,
	SourceLastSignInAt: Time, SourceBanned: Bool, SourceLocked: Bool, SourceObject: JSON, SourceFullName: Text,
}

// organizationSources are an organization column's sources, and
// membershipSources a membership column's.
var (
	organizationSources = map[string]Kind{
		SourceName: Text, SourceSlug: Text, SourceImageURL: Text, SourceCreatedAt: Time, SourceUpdatedAt: Time, SourceNow: Time,
		SourcePublicMetadata: JSON, SourcePrivateMetadata: JSON,
	}
	membershipSources = map[string]Kind{SourceRole: Text, SourceCreatedAt: Time, SourceUpdatedAt: Time, SourceNow: Time,
		SourcePermissions: JSON, SourcePublicMetadata: JSON}
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
	Table Table
	// ClerkID is the column holding the Clerk organization ID, org_...
	// (unique).
	ClerkID string
	Key     Key
	// Columns are sorted by name.
	Columns []Column
	Deletion
}

// Memberships maps Clerk organization memberships onto the product's
// table: one row per organization and user.
type Memberships struct {
	Table Table
	// ClerkID is the column holding the membership ID, orgmem_... (unique).
	ClerkID string
	Key     Key
	// Organization and User are the columns referencing the organizations'
	// and the users' keys.
	Organization, User string
	// Columns are sorted by name.
	Columns []Column
	Deletion
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
	Table Table
	// ClerkID is the column holding the Clerk user ID (unique).
	ClerkID string
	Key     Key
	// Columns are sorted by name.
	Columns []Column
	// Delete is Delete or Soft; with Soft, DeletedAt is the column set to
	// the deletion's time and Clear the columns cleared (to Missing, or
	// NULL).
	Delete    string
	DeletedAt string
	Clear     []string
}

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

// file is the YAML document.
type file struct {
	Users         *usersFile       `yaml:"users"`
	Trials        *trialsNode      `yaml:"trials"`
	Organizations *orgsNode        `yaml:"organizations"`
	Memberships   *membershipsFile `yaml:"memberships"`
}

// orgsNode is "off" or the organizations mapping.
type orgsNode struct {
	off  bool
	orgs orgsFile
}

func (o *orgsNode) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		var s string
		if err := n.Decode(&s); err != nil || s != "off" {
			return fmt.Errorf("line %d: organizations: want off, or the organizations mapping", n.Line)
		}
		o.off = true
		return nil
	}
	return decodeKnown(n, &o.orgs)
}

type orgsFile struct {
	Table   string                `yaml:"table"`
	ClerkID string                `yaml:"clerk_id"`
	Key     keyFile               `yaml:"key"`
	Columns map[string]columnFile `yaml:"columns"`
	Delete  deleteFile            `yaml:"delete"`
}

type membershipsFile struct {
	Table        string                `yaml:"table"`
	ClerkID      string                `yaml:"clerk_id"`
	Key          keyFile               `yaml:"key"`
	Organization string                `yaml:"organization"`
	User         string                `yaml:"user"`
	Columns      map[string]columnFile `yaml:"columns"`
	Delete       deleteFile            `yaml:"delete"`
}

type usersFile struct {
	Table   string                `yaml:"table"`
	ClerkID string                `yaml:"clerk_id"`
	Key     keyFile               `yaml:"key"`
	Columns map[string]columnFile `yaml:"columns"`
	Delete  deleteFile            `yaml:"delete"`
}

type keyFile struct {
	Column   string `yaml:"column"`
	Generate string `yaml:"generate"`
}

func (k *keyFile) UnmarshalYAML(n *yaml.Node) error {
	type plain keyFile
	return decodeKnown(n, (*plain)(k))
}

// columnFile is a column's source: a bare source name, or {source,
// missing, on, expose}.
type columnFile struct {
	Source  string  `yaml:"source"`
	Missing *string `yaml:"missing"`
	On      string  `yaml:"on"`
	Expose  *bool   `yaml:"expose"`
	Keep    bool    `yaml:"keep"`
}

func (c *columnFile) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		return n.Decode(&c.Source)
	}
	type plain columnFile
	return decodeKnown(n, (*plain)(c))
}

// deleteFile is "delete", or {soft: {deleted_at, clear}}.
type deleteFile struct {
	Mode      string
	DeletedAt string
	Clear     []string
}

func (d *deleteFile) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		return n.Decode(&d.Mode)
	}
	var soft struct {
		Soft *softFile `yaml:"soft"`
	}
	if err := decodeKnown(n, &soft); err != nil {
		return err
	}
	if soft.Soft == nil {
		return fmt.Errorf("line %d: delete: want delete, or soft: {deleted_at: <column>, clear: [<columns>]}", n.Line)
	}
	d.Mode, d.DeletedAt, d.Clear = Soft, soft.Soft.DeletedAt, soft.Soft.Clear
	return nil
}

// softFile is a soft deletion's settings.
type softFile struct {
	DeletedAt string   `yaml:"deleted_at"`
	Clear     []string `yaml:"clear"`
}

func (f *softFile) UnmarshalYAML(n *yaml.Node) error {
	type plain softFile
	return decodeKnown(n, (*plain)(f))
}

// trialsNode is "off" or the trials mapping.
type trialsNode struct {
	off    bool
	trials trialsFile
}

func (t *trialsNode) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		var s string
		if err := n.Decode(&s); err != nil || s != "off" {
			return fmt.Errorf("line %d: trials: want off, or the trials mapping", n.Line)
		}
		t.off = true
		return nil
	}
	return decodeKnown(n, &t.trials)
}

type trialsFile struct {
	Table   string                `yaml:"table"`
	User    string                `yaml:"user"`
	Key     keyFile               `yaml:"key"`
	Plan    planFile              `yaml:"plan"`
	Status  statusFile            `yaml:"status"`
	EndsAt  string                `yaml:"ends_at"`
	Columns map[string]columnFile `yaml:"columns"`
}

// planFile is the trial's plan column and value; statusFile its status
// column and values.
type (
	planFile   struct{ Column, Value string }
	statusFile struct{ Column, Trialing, Expired string }
)

func (p *planFile) UnmarshalYAML(n *yaml.Node) error {
	type plain planFile
	return decodeKnown(n, (*plain)(p))
}

func (s *statusFile) UnmarshalYAML(n *yaml.Node) error {
	type plain statusFile
	return decodeKnown(n, (*plain)(s))
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

func parseUsers(f *usersFile, p *problems) *Users {
	u := &Users{Table: parseTable("users", f.Table, p), ClerkID: f.ClerkID, Key: parseKey("users", f.Key, p),
		Delete: f.Delete.Mode, DeletedAt: f.Delete.DeletedAt, Clear: f.Delete.Clear}
	if u.ClerkID == "" {
		p.add("users.clerk_id: missing: name the column holding the Clerk user ID (it must be unique)")
	}
	u.Columns = parseColumns("users", userSources, f.Columns, p)
	checkRoles("users", u.Columns, map[string]string{u.ClerkID: "clerk_id", u.Key.Column: "key"}, p)
	checkDeletion("users", Deletion{u.Delete, u.DeletedAt, u.Clear}, u.Columns, p)
	return u
}

func parseOrganizations(f *orgsFile, p *problems) *Organizations {
	o := &Organizations{Table: parseTable("organizations", f.Table, p), ClerkID: f.ClerkID, Key: parseKey("organizations", f.Key, p),
		Deletion: Deletion{f.Delete.Mode, f.Delete.DeletedAt, f.Delete.Clear}}
	if o.ClerkID == "" {
		p.add("organizations.clerk_id: missing: name the column holding the Clerk organization ID (it must be unique)")
	}
	o.Columns = parseColumns("organizations", organizationSources, f.Columns, p)
	checkRoles("organizations", o.Columns, map[string]string{o.ClerkID: "clerk_id", o.Key.Column: "key"}, p)
	checkDeletion("organizations", o.Deletion, o.Columns, p)
	return o
}

func parseMemberships(f *membershipsFile, p *problems) *Memberships {
	m := &Memberships{Table: parseTable("memberships", f.Table, p), ClerkID: f.ClerkID, Key: parseKey("memberships", f.Key, p),
		Organization: f.Organization, User: f.User, Deletion: Deletion{f.Delete.Mode, f.Delete.DeletedAt, f.Delete.Clear}}
	for name, v := range map[string]string{
		"clerk_id": m.ClerkID, "organization": m.Organization, "user": m.User,
	} {
		if v == "" {
			p.add("memberships.%s: missing: name the column (clerk_id holds the membership ID, orgmem_...; "+
				"organization and user reference the organizations' and the users' keys)", name)
		}
	}
	m.Columns = parseColumns("memberships", membershipSources, f.Columns, p)
	checkRoles("memberships", m.Columns, map[string]string{m.ClerkID: "clerk_id", m.Key.Column: "key",
		m.Organization: "organization", m.User: "user"}, p)
	checkDeletion("memberships", m.Deletion, m.Columns, p)
	return m
}

// checkRoles refuses a column mapped twice: as a source and in one of the
// entity's own roles (clerk_id, key, ...).
func checkRoles(entity string, cols []Column, roles map[string]string, p *problems) {
	for _, c := range cols {
		if role, ok := roles[c.Name]; ok && c.Name != "" {
			p.add("%s.columns.%s: the column is already the %s; map it once", entity, c.Name, role)
		}
		if c.Source == SourceClerkID {
			p.add("%s.columns.%s: source id is the clerk_id column's; map the Clerk ID once, as clerk_id", entity, c.Name)
		}
	}
}

func checkDeletion(entity string, d Deletion, cols []Column, p *problems) {
	switch d.Delete {
	case "":
		p.add("%s.delete: missing: delete (the row goes, the product's foreign keys cascade) or soft: {deleted_at: <column>, clear: [<columns>]}", entity)
	case Delete:
	case Soft:
		if d.DeletedAt == "" {
			p.add("%s.delete.soft.deleted_at: missing: name the column set to the deletion's time", entity)
		}
		for _, c := range d.Clear {
			if !slices.ContainsFunc(cols, func(m Column) bool { return m.Name == c }) {
				p.add("%s.delete.soft.clear: %s is not a mapped column; clear only columns the mapping writes", entity, c)
			}
		}
	default:
		p.add("%s.delete: %q: want delete or soft", entity, d.Delete)
	}
}

func parseTrials(f *trialsFile, p *problems) *Trials {
	t := &Trials{Table: parseTable("trials", f.Table, p), User: f.User, Key: parseKey("trials", f.Key, p),
		PlanColumn: f.Plan.Column, PlanValue: f.Plan.Value,
		StatusColumn: f.Status.Column, Trialing: f.Status.Trialing, Expired: f.Status.Expired, EndsAt: f.EndsAt}
	for name, v := range map[string]string{"user": t.User, "plan.column": t.PlanColumn, "plan.value": t.PlanValue,
		"status.column": t.StatusColumn, "status.trialing": t.Trialing, "status.expired": t.Expired, "ends_at": t.EndsAt} {
		if v == "" {
			p.add("trials.%s: missing", name)
		}
	}
	t.Columns = parseColumns("trials", userSources, f.Columns, p)
	for _, c := range t.Columns {
		if c.Source != SourceNow {
			p.add("trials.columns.%s: source %s: a trial's further columns take now (the time of the write)", c.Name, c.Source)
		}
	}
	return t
}

func parseTable(entity, name string, p *problems) Table {
	schema, table, ok := strings.Cut(name, ".")
	if !ok || schema == "" || table == "" || strings.Contains(table, ".") {
		p.add("%s.table: %q: want schema.table, such as public.User (names as the database spells them)", entity, name)
	}
	return Table{Schema: schema, Name: table}
}

func parseKey(entity string, k keyFile, p *problems) Key {
	if k.Column == "" {
		p.add("%s.key.column: missing: name the primary key column", entity)
	}
	switch k.Generate {
	case GenerateDefault, GenerateUUID:
	default:
		p.add("%s.key.generate: %q: want uuid, or leave it out for the column's own default", entity, k.Generate)
	}
	return Key(k)
}

func parseColumns(entity string, sources map[string]Kind, cols map[string]columnFile, p *problems) []Column {
	var out []Column
	for name, c := range cols {
		source, rest, hasPath := strings.Cut(c.Source, ".")
		var path []string
		if hasPath {
			path = strings.Split(rest, ".")
			if !slices.Contains(metadataSources, source) || slices.Contains(path, "") {
				p.add("%s.columns.%s: source %q: only a metadata object takes a path, such as public_metadata.role", entity, name, c.Source)
			}
		}
		if _, ok := sources[source]; !ok {
			p.add("%s.columns.%s: source %q: want one of %s", entity, name, c.Source, strings.Join(slices.Sorted(maps.Keys(sources)), ", "))
		}
		if kind := SourceKind(source); c.Missing != nil && kind != Text && kind != JSON {
			p.add("%s.columns.%s: missing: only a text or JSON source has a written-as-missing value", entity, name)
		}
		switch c.On {
		case "", "write", "insert":
		default:
			p.add("%s.columns.%s: on: %q: want insert (written when the row is created, never after), or leave it out", entity, name, c.On)
		}
		if c.Keep && c.On == "insert" {
			p.add("%s.columns.%s: keep and on: insert both say when the row's value stays; write one", entity, name)
		}
		if c.Keep && (source == SourceNow || source == SourceUpdatedAt) {
			p.add("%s.columns.%s: keep: source %s always has a value, so there is never a row's value to keep", entity, name, source)
		}
		exposed := !private(source, path)
		if c.Expose != nil {
			exposed = *c.Expose
		}
		out = append(out, Column{Name: name, Source: source, Path: path, Missing: c.Missing, InsertOnly: c.On == "insert", Exposed: exposed, Keep: c.Keep})
	}
	slices.SortFunc(out, func(a, b Column) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// Uses reports whether the mapping writes a source.
func (m *Mapping) Uses(source string) bool {
	return m != nil && slices.ContainsFunc(m.Users.Columns, func(c Column) bool { return c.Source == source })
}

// problems collects a document's mistakes, sorted so the message is stable.
type problems []string

func (p *problems) add(format string, args ...any) { *p = append(*p, fmt.Sprintf(format, args...)) }

func (p problems) err() error {
	if len(p) == 0 {
		return nil
	}
	slices.Sort(p)
	return errors.New(strings.Join(p, "\n"))
}
