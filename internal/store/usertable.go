package store

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/clerksync/clerksync/internal/mapping"
)

// userTable is the SQL for the table users are written to: clerksync's own
// users table, or a product's, mapped. It is built once, from the mapping
// and the table's column types, and every write of a user row (a webhook,
// an ensure's minimal row, a membership's member, a backfill page) goes
// through it.
type userTable struct {
	m *mapping.Users
	// name, clerkID and key are quoted: the table, its Clerk ID column and
	// its primary key.
	name, clerkID, key string
	// schema is the bookkeeping schema the statements are written for.
	schema string
	// upsert writes one user: its parameters are userRelation's.
	upsert string
	// upsertPage writes a page (pageStatement) without trials.
	upsertPage string
	pageCols   []int
	// link gives a row of the app's own from before Clerk (no Clerk ID)
	// the Clerk ID of the users ($1, Clerk IDs) whose external_id ($2) is
	// that row's key, as Clerk's migration path sets it; "" when the Clerk
	// ID column is NOT NULL (no such rows can exist) or the table is
	// clerksync's own.
	link string
	// keyKind is how link compares an external_id with the key: the key's
	// type (integer, bigint, smallint, uuid), text, or "" for a type
	// compared as text.
	keyKind string
	// linkEmail does the same for the users ($1) whose verified primary
	// email ($2) the row's email column holds, when the mapping links by
	// email (users.link); "" otherwise.
	linkEmail string
	// write is the CTEs that write apply's rows (as src) into the table,
	// the last of them, written, returning each row's clerk_id, its key as
	// text (id) and as it is (user_key), and whether it was inserted.
	write string
	// projection is write's projectionOf, an SQL literal.
	projection string
	// lookup reads one row by Clerk ID ($1).
	lookup string
	// remove deletes (or soft-deletes) the row of a tombstoned Clerk ID
	// ($1); rowLeft tells whether a tombstoned user's row still waits for
	// that.
	remove, rowLeft string
	// live is a predicate on the table's alias u: the row is not
	// soft-deleted.
	live string
	// columns are every column of the table.
	columns map[string]columnInfo
	// exposed are the columns of the row lookup reads, which ensure
	// answers: the key, the Clerk ID and the mapped columns the mapping
	// exposes, sorted; never a column the mapping does not name.
	exposed []string
}

// ownUsers is the mapping of clerksync's own users table, with its column
// types (migrations/tables/001_users.sql).
var ownUsers = &mapping.Users{
	Table: mapping.Table{Name: "users"}, ClerkID: "clerk_id", Key: mapping.Key{Column: "id"}, Delete: mapping.Delete,
	Columns: []mapping.Column{
		{Name: "clerk_created_at", Source: mapping.SourceCreatedAt},
		{Name: "clerk_updated_at", Source: mapping.SourceUpdatedAt},
		{Name: "email", Source: mapping.SourceEmail},
		{Name: "first_name", Source: mapping.SourceFirstName},
		{Name: "image_url", Source: mapping.SourceImageURL},
		{Name: "last_name", Source: mapping.SourceLastName},
		{Name: "updated_at", Source: mapping.SourceNow},
		{Name: "username", Source: mapping.SourceUsername},
	},
}

var ownUsersTypes = map[string]columnInfo{
	"id": {dataType: "uuid", hasDefault: true}, "clerk_id": {dataType: "text"},
	"clerk_created_at": {dataType: "timestamp with time zone", nullable: true},
	"clerk_updated_at": {dataType: "timestamp with time zone"},
	"email":            {dataType: "text", nullable: true}, "first_name": {dataType: "text", nullable: true},
	"image_url": {dataType: "text", nullable: true}, "last_name": {dataType: "text", nullable: true},
	"updated_at": {dataType: "timestamp with time zone", hasDefault: true},
	"username":   {dataType: "text", nullable: true},
	"created_at": {dataType: "timestamp with time zone", hasDefault: true},
}

// compileUsers builds a userTable from a mapping and the table's columns,
// or says, one line per mistake, what in the mapping the table cannot take.
func compileUsers(m *mapping.Users, cols map[string]columnInfo, schema string) (*userTable, error) {
	t := &userTable{schema: schema, m: m, name: quoteTable(m.Table), clerkID: quote(m.ClerkID), key: quote(m.Key.Column), live: "true", columns: cols}
	c := newTableCompiler("users", m.Table, cols)
	c.clerkIDColumn(m.ClerkID, "a Clerk ID")
	insertCols, insertVals := []string{t.clerkID}, []string{"src.clerk_id"}
	if col, val := c.keyColumn(m.Key); col != "" {
		insertCols, insertVals = append(insertCols, col), append(insertVals, val)
	}
	typed, cols2, vals, sets := c.columns(m.Columns)
	insertCols, insertVals = append(insertCols, cols2...), append(insertVals, vals...)
	c.deletion(mapping.Deletion{Delete: m.Delete, DeletedAt: m.DeletedAt, Clear: m.Clear}, "a live user's row")
	if err := c.err(); err != nil {
		return nil, err
	}
	if len(sets) == 0 {
		// An update that sets nothing is not valid SQL; the row is there.
		sets = append(sets, fmt.Sprintf("%s = excluded.%s", t.clerkID, t.clerkID))
	}
	t.pageCols = pageColumns(typed)
	t.exposed = exposedColumns(m, cols)
	if m != ownUsers && cols[m.ClerkID].nullable {
		// A row some user holds is never taken, nor one for a deleted user.
		unheld := `
  and ` + absent(t.name, t.clerkID, "p.clerk_id") + `
  and (select true from ` + t.schema + `.user_tombstones x where x.clerk_id = p.clerk_id) is null`
		if m.Links(mapping.LinkExternalID) {
			// The external_id as the key's own type, so the key's index
			// finds the row: compared as text, every write of a user with
			// an external_id scanned the table. externalIDs passes only
			// values the type takes.
			t.keyKind = externalIDKind(cols[m.Key.Column].dataType)
			key := `u.` + t.key + ` = p.external_id`
			switch t.keyKind {
			case "":
				key = `u.` + t.key + `::text = p.external_id`
			case "text":
			default:
				key += `::` + t.keyKind
			}
			t.link = `
update ` + t.name + ` u set ` + t.clerkID + ` = p.clerk_id
from unnest($1::text[], $2::text[]) as p(clerk_id, external_id)
where u.` + t.clerkID + ` is null and ` + key + unheld
		}
		if m.Links(mapping.LinkEmail) {
			// Compared as the column compares (citext: whatever the case),
			// so the column's own index finds the row: text compared with
			// citext would compare as text.
			email := "p.email"
			if ut := cols[m.EmailColumn].userType; ut != "" {
				email += "::" + ut
			}
			t.linkEmail = `
update ` + t.name + ` u set ` + t.clerkID + ` = p.clerk_id
from unnest($1::text[], $2::text[]) as p(clerk_id, email)
where u.` + t.clerkID + ` is null and u.` + quote(m.EmailColumn) + ` = ` + email + unheld
		}
	}
	t.build(insertCols, insertVals, sets, c.updates, typed, cols)
	return t, nil
}

// exposedColumns are the columns of m's table that a user's row, as
// ensure answers it, holds: every column of clerksync's own table (their
// names and meaning are the public contract, and clerksync created them
// all), or the key, the Clerk ID and the exposed mapped columns of a
// product's own table, whatever else that table holds.
func exposedColumns(m *mapping.Users, cols map[string]columnInfo) []string {
	if m == ownUsers {
		return slices.Sorted(maps.Keys(cols))
	}
	exposed := []string{m.Key.Column, m.ClerkID}
	for _, c := range m.Columns {
		if c.Exposed {
			exposed = append(exposed, c.Name)
		}
	}
	slices.Sort(exposed)
	return slices.Compact(exposed)
}

// rowObject is the JSON object of the named columns of the row alias,
// keyed by column name, values as to_jsonb writes them.
func rowObject(alias string, names []string) string {
	// jsonb_build_object takes at most 100 arguments: 50 columns a call.
	var parts []string
	for chunk := range slices.Chunk(names, 50) {
		var args []string
		for _, n := range chunk {
			args = append(args, literal(n), alias+"."+quote(n))
		}
		parts = append(parts, "jsonb_build_object("+strings.Join(args, ", ")+")")
	}
	return strings.Join(parts, " || ")
}

// build writes the statements of t.
func (t *userTable) build(insertCols, insertVals, sets, updates []string, typed []column, cols map[string]columnInfo) {
	t.write = writeFromApply(t.name, t.clerkID, insertCols, insertVals, sets, updates,
		`u.`+t.clerkID+` as clerk_id, u.`+t.key+`::text as id, u.`+t.key+` as user_key, `, true)
	t.projection = projectionOf(t.write)
	t.upsert = `
with tombstone as (
    select 1 from ` + t.schema + `.user_tombstones where clerk_id = @clerk_id
), src as (
    select ` + params(userRelation) + `
    where not exists (select 1 from tombstone)
),` + t.body("") + `
select
    coalesce((select id from written), (select ` + t.key + `::text from ` + t.name + ` where ` + t.clerkID + ` = @clerk_id)),
    (select inserted from written),
    exists (select 1 from tombstone)`
	t.upsertPage = t.pageStatement("")
	pending := "true"
	if t.m.Delete == mapping.Soft {
		t.remove, t.live, pending = softRemove(t.name, t.clerkID, mapping.Deletion{Delete: t.m.Delete, DeletedAt: t.m.DeletedAt, Clear: t.m.Clear},
			typed, cols, t.schema+".user_tombstones")
	} else {
		t.remove = hardRemove(t.name, t.clerkID, t.schema+".user_tombstones")
	}
	t.rowLeft = `select exists (select 1 from ` + t.name + ` u where u.` + t.clerkID + ` = $1 and ` + pending + `)`
	t.lookup = `
select u.` + t.key + `::text, u.` + t.clerkID + `,
       ` + rowObject("u", t.exposed) + ` || jsonb_build_object('clerk_id', u.` + t.clerkID + `),
       coalesce((select st.clerk_updated_at <= 'epoch' from ` + t.schema + `.user_state st where st.clerk_id = u.` + t.clerkID + `), false),
       exists (select 1 from ` + t.schema + `.user_tombstones t where t.clerk_id = u.` + t.clerkID + `),
       ` + pending + `
from ` + t.name + ` u where u.` + t.clerkID + ` = $1`
}

// body takes a source relation src (one row per user, tombstoned users
// left out) to the written rows: apply decides which rows win, state
// records their versions, written writes them. With trial, apply also
// says which of its users this write gives their trial (grant_trial: a
// user never given one whose trial_ends, Clerk's created_at plus
// trialPeriod, an interval parameter, is still ahead), and state records it
// as given. Without trialPeriod it gives none.
func (t *userTable) body(trialPeriod string) string {
	var grant, stateCol, stateVal, stateSet string
	if trialPeriod != "" {
		trialEnds := "src.created_at + " + trialPeriod + "::interval"
		grant = `,
           ` + trialEnds + ` as trial_ends,
           ` + trialEnds + ` > now()
               and (select st.trial_granted_at from ` + t.schema + `.user_state st where st.clerk_id = src.clerk_id) is null as grant_trial`
		stateCol, stateVal = ", trial_granted_at", ", case when grant_trial then now() end"
		stateSet = `,
        trial_granted_at = coalesce(st.trial_granted_at, excluded.trial_granted_at)`
	}
	return `
apply as materialized (
    select src.*` + grant + `
    from src
    where ` + absent(t.name, t.clerkID, "src.clerk_id") + `
       or (src.updated_at > 'epoch' and not exists (
           select 1 from ` + t.schema + `.user_state st
           where st.clerk_id = src.clerk_id and ` + holds("(st.clerk_updated_at, st.content_hash) >= (src.updated_at, src.content_hash)", t.projection) + `))
), state as (
    insert into ` + t.schema + `.user_state as st (clerk_id, clerk_updated_at, content_hash, projection` + stateCol + `)
    select clerk_id, updated_at, content_hash, ` + t.projection + stateVal + ` from apply
    on conflict (clerk_id) do update set
        clerk_updated_at = excluded.clerk_updated_at,
        content_hash     = excluded.content_hash,
        projection       = excluded.projection` + stateSet + `
),` + t.write
}

// pageStatement writes a page: pageRelation of pageCols, and with
// trialInsert (an insert of the trials of apply's rows a with grant_trial,
// joined to their written rows w, returning a row per trial written), the
// trial period as one more parameter. It answers the users inserted, the
// users updated, the page's users refused as tombstoned, and the trials
// given. Each user is looked up once in the tombstones (checked): a
// second anti-join for the count cost the page a second probe per user.
func (t *userTable) pageStatement(trialInsert string) string {
	trial, trials, trialPeriod := "", "0", ""
	if trialInsert != "" {
		trial, trials = `, trial as (`+trialInsert+`
)`, "(select count(*) from trial)"
		trialPeriod = "@trial_period"
	}
	return `
with page as (
    ` + pageRelation(t.pageCols) + `
), checked as materialized (
    select p.*, ` + absent(t.schema+".user_tombstones", "clerk_id", "p.clerk_id") + ` as live
    from page p
), src as materialized (
    select distinct on (p.clerk_id) p.*
    from checked p
    where p.live
    order by p.clerk_id, p.updated_at desc, p.content_hash desc
),` + t.body(trialPeriod) + trial + `
select
    count(*) filter (where inserted),
    count(*) filter (where not inserted),
    (select count(*) from checked where not live),
    ` + trials + `
from written`
}
