package store

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/clerksync/clerksync/internal/clerkevent"
	"github.com/clerksync/clerksync/internal/mapping"
)

// sourceColumns are the columns of a source relation: one user's data as
// the write statements read it, from bound parameters (UpsertUser) or from
// arrays of a page's (WriteUserPage, pageRelation), named by mapping
// source, in the order of sourceValues.
var sourceColumns = []struct{ name, typ string }{
	{"clerk_id", "text"}, {"email", "text"}, {"first_name", "text"}, {"last_name", "text"}, {"username", "text"},
	{"image_url", "text"}, {"created_at", "timestamptz"}, {"updated_at", "timestamptz"}, {"content_hash", `text collate "C"`},
	{"email_verified", "boolean"}, {"email_addresses", "jsonb"}, {"phone", "text"}, {"external_id", "text"},
	{"public_metadata", "jsonb"}, {"private_metadata", "jsonb"}, {"unsafe_metadata", "jsonb"},
	{"last_sign_in_at", "timestamptz"}, {"banned", "boolean"}, {"locked", "boolean"}, {"object", "jsonb"},
	{"last_active_at", "timestamptz"}, {"deprovisioned", "boolean"},
}

// jsonText is raw JSON as a text parameter (cast to jsonb in the SQL), nil
// for none.
func jsonText(raw []byte) *string {
	if len(raw) == 0 {
		return nil
	}
	s := string(raw)
	return &s
}

// sourceValues is u as a row of the source relation.
func sourceValues(u clerkevent.User) []any {
	var addresses []byte
	if len(u.EmailAddresses) > 0 {
		addresses, _ = json.Marshal(u.EmailAddresses) // a []string always marshals
	}
	return []any{u.ClerkID, u.Email, u.FirstName, u.LastName, u.Username, u.ImageURL, optionalTime(u.ClerkCreatedAt),
		u.ClerkUpdatedAt, u.ContentHash(), u.EmailVerified, jsonText(addresses), u.Phone, u.ExternalID,
		jsonText(u.PublicMetadata), jsonText(u.PrivateMetadata), jsonText(u.UnsafeMetadata), optionalTime(u.LastSignInAt), u.Banned, u.Locked, jsonText(u.Object),
		optionalTime(u.LastActiveAt), u.Deprovisioned}
}

// pageSources are the source columns every page statement reads: the
// identity, the version, and created_at for the trial.
var pageSources = []string{"clerk_id", "created_at", "updated_at", "content_hash"}

// pageColumns are the source columns a page passes, as positions in
// sourceColumns (and sourceValues): pageSources and the mapped columns'
// sources. The rest are null in the page's relation, so a column no
// mapping writes (the whole object as JSON, say) costs nothing to send.
func pageColumns(typed []column) []int {
	read := slices.Clone(pageSources)
	for _, c := range typed {
		read = append(read, c.Source)
		read = append(read, derivedSources[c.Source].reads...)
	}
	var cols []int
	for i, c := range sourceColumns {
		if slices.Contains(read, c.name) {
			cols = append(cols, i)
		}
	}
	return cols
}

// arrayType is the array a source column of type typ is passed in: its
// own for times and booleans, text for the rest (JSON is cast from text,
// as the single-row statement's parameters are).
func arrayType(typ string) string {
	switch typ {
	case "timestamptz", "boolean":
		return typ + "[]"
	}
	return "text[]"
}

// pageRelation is the source relation of a page: each of cols an array
// parameter ($1, $2, ...) unnested into one row per user, every other
// source column null. One statement reads it, with no staging table: a
// temporary table cost each page its own statement, a COPY and its
// description, and its truncation at commit.
func pageRelation(cols []int) string {
	arrays, names, selected := make([]string, len(cols)), make([]string, len(cols)), make([]string, len(sourceColumns))
	for i, at := range cols {
		c := sourceColumns[at]
		arrays[i], names[i] = fmt.Sprintf("$%d::%s", i+1, arrayType(c.typ)), c.name
	}
	for i, c := range sourceColumns {
		if slices.Contains(cols, i) {
			selected[i] = "p." + c.name + "::" + c.typ + " as " + c.name
		} else {
			selected[i] = "null::" + c.typ + " as " + c.name
		}
	}
	return `select ` + strings.Join(selected, ", ") + `
    from unnest(` + strings.Join(arrays, ", ") + `) as p(` + strings.Join(names, ", ") + `)`
}

// pageArrays turns a page's rows of sourceValues into pageRelation's
// array parameters.
func pageArrays(rows [][]any, cols []int) []any {
	arrays := make([]any, len(cols))
	for i, at := range cols {
		switch arrayType(sourceColumns[at].typ) {
		case "timestamptz[]":
			arrays[i] = arrayOf[time.Time](rows, at)
		case "boolean[]":
			arrays[i] = arrayOf[bool](rows, at)
		default:
			arrays[i] = arrayOf[string](rows, at)
		}
	}
	return arrays
}

// arrayOf is the values at position at of rows, each a T or a *T, as one
// array (nil for none).
func arrayOf[T any](rows [][]any, at int) []*T {
	a := make([]*T, len(rows))
	for r, row := range rows {
		switch v := row[at].(type) {
		case T:
			a[r] = &v
		case *T:
			a[r] = v
		}
	}
	return a
}

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
	// upsert writes one user: $1..$9 are sourceColumns.
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
func compileUsers(m *mapping.Users, cols map[string]columnInfo) (*userTable, error) {
	t := &userTable{m: m, name: quoteTable(m.Table), clerkID: quote(m.ClerkID), key: quote(m.Key.Column), live: "true", columns: cols}
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
  and (select true from clerksync.user_tombstones x where x.clerk_id = p.clerk_id) is null`
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
    select 1 from clerksync.user_tombstones where clerk_id = $1
), src as (
    select ` + params(sourceColumns) + `
    where not exists (select 1 from tombstone)
),` + t.body("") + `
select
    coalesce((select id from written), (select ` + t.key + `::text from ` + t.name + ` where ` + t.clerkID + ` = $1)),
    (select inserted from written),
    exists (select 1 from tombstone)`
	t.upsertPage = t.pageStatement("")
	pending := "true"
	if t.m.Delete == mapping.Soft {
		t.remove, t.live, pending = softRemove(t.name, t.clerkID, mapping.Deletion{Delete: t.m.Delete, DeletedAt: t.m.DeletedAt, Clear: t.m.Clear},
			typed, cols, "clerksync.user_tombstones")
	} else {
		t.remove = hardRemove(t.name, t.clerkID, "clerksync.user_tombstones")
	}
	t.rowLeft = `select exists (select 1 from ` + t.name + ` u where u.` + t.clerkID + ` = $1 and ` + pending + `)`
	t.lookup = `
select u.` + t.key + `::text, u.` + t.clerkID + `,
       ` + rowObject("u", t.exposed) + ` || jsonb_build_object('clerk_id', u.` + t.clerkID + `),
       coalesce((select st.clerk_updated_at <= 'epoch' from clerksync.user_state st where st.clerk_id = u.` + t.clerkID + `), false),
       exists (select 1 from clerksync.user_tombstones t where t.clerk_id = u.` + t.clerkID + `),
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
               and (select st.trial_granted_at from clerksync.user_state st where st.clerk_id = src.clerk_id) is null as grant_trial`
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
           select 1 from clerksync.user_state st
           where st.clerk_id = src.clerk_id and ` + holds("(st.clerk_updated_at, st.content_hash) >= (src.updated_at, src.content_hash)", t.projection) + `))
), state as (
    insert into clerksync.user_state as st (clerk_id, clerk_updated_at, content_hash, projection` + stateCol + `)
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
		trialPeriod = fmt.Sprintf("$%d", len(t.pageCols)+1) // after the page's arrays
	}
	return `
with page as (
    ` + pageRelation(t.pageCols) + `
), checked as materialized (
    select p.*, ` + absent("clerksync.user_tombstones", "clerk_id", "p.clerk_id") + ` as live
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
