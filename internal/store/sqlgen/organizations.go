package sqlgen

import (
	"fmt"

	"github.com/clerksync/clerksync/internal/mapping"
)

// Organizations is the SQL for the table organizations are written to:
// clerksync's own organizations table, or a product's, mapped. Like
// userTable it is built once, and every write of an organization's row (its
// own event, a membership's embedded organization, a backfill) goes
// through it; versions are kept in clerksync.organization_state.
type Organizations struct {
	// Name, ClerkID and Key are quoted: the table, its Clerk ID column and
	// its primary Key; Live is the predicate of a row (alias u) not
	// soft-deleted.
	Name, ClerkID, Key, Live string
	// schema is the bookkeeping schema the statements are written for.
	schema string
	// Upsert writes one organization (parameters: orgRelation) and says
	// whether it inserted, whether the organization is tombstoned and
	// whether its row is still there then.
	Upsert string
	// Remove deletes (or soft-deletes) a tombstoned organization's row
	// ($1); RowLeft tells whether it is still there.
	Remove, RowLeft string
	// Lookup reads the row of $1 as JSON.
	Lookup string
	// Unseen lists the live organizations a run ($1, started at $2) did
	// not see, that clerksync had written before it started (or never).
	Unseen  string
	KeyType string
}

// ownOrganizations is the mapping of clerksync's own organizations table
// (migrations/tables), with its column types.
var ownOrganizations = &mapping.Organizations{Entity: own("organizations", map[string]string{
	"clerk_created_at": mapping.SourceCreatedAt, "clerk_updated_at": mapping.SourceUpdatedAt, "image_url": mapping.SourceImageURL,
	"name": mapping.SourceName, "slug": mapping.SourceSlug, "updated_at": mapping.SourceNow,
})}

var ownOrganizationsTypes = map[string]ColumnInfo{
	"id": {DataType: "uuid", hasDefault: true}, "clerk_id": {DataType: "text"},
	"name": {DataType: "text", Nullable: true}, "slug": {DataType: "text", Nullable: true},
	"image_url":        {DataType: "text", Nullable: true},
	"clerk_created_at": {DataType: "timestamp with time zone", Nullable: true},
	"clerk_updated_at": {DataType: "timestamp with time zone"},
	"created_at":       {DataType: "timestamp with time zone", hasDefault: true},
	"updated_at":       {DataType: "timestamp with time zone", hasDefault: true},
}

// compileOrganizations builds an orgTable from a mapping and the table's
// columns, or says, one line per mistake, what the table cannot take.
func compileOrganizations(m *mapping.Organizations, cols map[string]ColumnInfo, schema string) (*Organizations, error) {
	t := &Organizations{schema: schema, Name: quoteTable(m.Table), ClerkID: quote(m.ClerkID), Key: quote(m.Key.Column), Live: "true",
		KeyType: cols[m.Key.Column].DataType}
	c := newTableCompiler("organizations", m.Table, cols)
	typed, insertCols, insertVals, sets := c.entity(m.Entity, "a Clerk organization ID")
	c.deletion(m.Deletion, "a live organization's row")
	if err := c.err(); err != nil {
		return nil, err
	}
	if len(sets) == 0 {
		sets = append(sets, fmt.Sprintf("%s = excluded.%s", t.ClerkID, t.ClerkID))
	}
	tombstones := t.schema + ".organization_tombstones"
	pending := "true"
	if m.Delete == mapping.Soft {
		t.Remove, t.Live, pending = softRemove(t.Name, t.ClerkID, m.Deletion, typed, cols, tombstones)
	} else {
		t.Remove = hardRemove(t.Name, t.ClerkID, tombstones)
	}
	row := `u.` + t.ClerkID + ` = $1 and ` + t.Live
	// rowLeft of the Clerk ID id: $1 alone, @clerk_id in the upsert.
	rowLeft := func(id string) string {
		return `exists (select 1 from ` + t.Name + ` u where u.` + t.ClerkID + ` = ` + id + ` and ` + pending + `)`
	}
	t.RowLeft = rowLeft("$1")
	write := writeFromApply(t.Name, t.ClerkID, insertCols, insertVals, sets, c.updates, "", false) + "\n"
	projection := projectionOf(write)
	t.Upsert = render("organization_upsert", struct {
		Schema, Table, ClerkID, Params, Holds, Projection, Write, RowLeft string
	}{t.schema, t.Name, t.ClerkID, params(OrganizationRelation),
		holds("(st.clerk_updated_at, st.content_hash) >= (src.updated_at, src.content_hash)", projection), projection, write, rowLeft("@clerk_id")})
	t.Lookup = `select u.` + t.Key + `::text, to_jsonb(u) || jsonb_build_object('clerk_id', u.` + t.ClerkID + `)
from ` + t.Name + ` u where ` + row
	t.Unseen = render("organization_unseen", struct{ Schema, Table, ClerkID, Live string }{t.schema, t.Name, t.ClerkID, t.Live})
	return t, nil
}

// Memberships is the SQL for the table memberships are written to,
// clerksync's own organization_memberships or a product's, mapped: one row
// per organization and user, referencing both tables' keys. Versions, and
// which organization and user each membership is of, are kept in
// clerksync.membership_state.
type Memberships struct {
	Name, ClerkID string
	// schema is the bookkeeping schema the statements are written for.
	schema string
	// Upsert writes one membership (parameters: membershipRelation) of an
	// organization and a user whose rows exist, under last-writer-wins,
	// and nothing while a newer membership under another ID holds the pair.
	Upsert string
	// DropOlder removes the row of the pair's ($2, $3) older membership
	// under another ID than $1, older than $4: the user left and rejoined.
	DropOlder string
	// Remove deletes a tombstoned membership's row ($1); RowLeft tells
	// whether it is still there.
	Remove, RowLeft string
	// Members lists an organization's ($1, Clerk ID) memberships.
	Members string
	// Unseen lists the memberships, of organizations a run ($1, started
	// at $2) saw, that the run did not see.
	Unseen string
}

// ownMemberships is the mapping of clerksync's own organization_memberships
// table, with its column types.
var ownMemberships = &mapping.Memberships{Organization: "organization_id", User: "user_id",
	Entity: own("organization_memberships", map[string]string{
		"clerk_created_at": mapping.SourceCreatedAt, "clerk_updated_at": mapping.SourceUpdatedAt, "role": mapping.SourceRole,
		"updated_at": mapping.SourceNow,
	})}

var ownMembershipsTypes = map[string]ColumnInfo{
	"id": {DataType: "uuid", hasDefault: true}, "clerk_id": {DataType: "text"},
	"organization_id": {DataType: "uuid"}, "user_id": {DataType: "uuid"}, "role": {DataType: "text"},
	"clerk_created_at": {DataType: "timestamp with time zone", Nullable: true},
	"clerk_updated_at": {DataType: "timestamp with time zone"},
	"created_at":       {DataType: "timestamp with time zone", hasDefault: true},
	"updated_at":       {DataType: "timestamp with time zone", hasDefault: true},
}

// compileMemberships builds a membershipTable referencing orgs and users,
// or says, one line per mistake, what the table cannot take.
func compileMemberships(m *mapping.Memberships, cols map[string]ColumnInfo, orgs *Organizations, users *Users) (*Memberships, error) {
	t := &Memberships{Name: quoteTable(m.Table), ClerkID: quote(m.ClerkID), schema: users.Schema}
	c := newTableCompiler("memberships", m.Table, cols)
	_, insertCols, insertVals, sets := c.entity(m.Entity, "a Clerk membership ID",
		[2]string{quote(m.Organization), "src.org_key"}, [2]string{quote(m.User), "src.user_key"})
	c.referenceColumn(m.Organization, orgs.KeyType, "the organizations table")
	c.referenceColumn(m.User, users.Columns[users.Mapping.Key.Column].DataType, "the users table")
	if m.Delete == mapping.Soft {
		c.problem(m.ClerkID, "memberships are deleted, not soft-deleted: a user who rejoins gets a new membership, "+
			"whose row the older one's would hold; write delete: delete")
	}
	if err := c.err(); err != nil {
		return nil, err
	}
	sets = append(sets, fmt.Sprintf("%s = excluded.%s", t.ClerkID, t.ClerkID))
	tombstones := t.schema + ".organization_membership_tombstones"
	t.Remove = hardRemove(t.Name, t.ClerkID, tombstones)
	t.RowLeft = `exists (select 1 from ` + t.Name + ` u where u.` + t.ClerkID + ` = $1)`
	write := writeFromApply(t.Name, t.ClerkID, insertCols, insertVals, sets, c.updates, "", false) + "\n"
	projection := projectionOf(write)
	names := struct{ Schema, Table, ClerkID string }{t.schema, t.Name, t.ClerkID}
	t.Upsert = render("membership_upsert", struct {
		Schema, Table, ClerkID, Params, Holds, Projection, Write      string
		OrgKey, OrgTable, OrgClerkID, UserKey, UserTable, UserClerkID string
	}{t.schema, t.Name, t.ClerkID, params(MembershipRelation),
		holds("(st.clerk_updated_at, st.role) >= (src.updated_at, src.role)", projection), projection, write,
		orgs.Key, orgs.Name, orgs.ClerkID, users.Key, users.Name, users.ClerkID})
	t.DropOlder = render("membership_drop_older", names)
	t.Members = render("membership_members", names)
	t.Unseen = render("membership_unseen", names)
	return t, nil
}
