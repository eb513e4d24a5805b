package sqlgen

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/clerksync/clerksync/internal/mapping"
)

// Users is the SQL for the table users are written to: clerksync's own
// users table, or a product's, mapped. It is built once, from the mapping
// and the table's column types, and every write of a user row (a webhook,
// an ensure's minimal row, a membership's member, a backfill page) goes
// through it.
type Users struct {
	Mapping *mapping.Users
	// Name, ClerkID and Key are quoted: the table, its Clerk ID column and
	// its primary Key.
	Name, ClerkID, Key string
	// Schema is the bookkeeping Schema the statements are written for.
	Schema string
	// Upsert writes one user: its parameters are userRelation's.
	Upsert string
	// UpsertPage writes a page (pageStatement) without trials.
	UpsertPage string
	PageCols   []int
	// Link gives a row of the app's own from before Clerk (no Clerk ID)
	// the Clerk ID of the users ($1, Clerk IDs) whose external_id ($2) is
	// that row's key, as Clerk's migration path sets it; "" when the Clerk
	// ID column is NOT NULL (no such rows can exist) or the table is
	// clerksync's own.
	Link string
	// KeyKind is how link compares an external_id with the key: the key's
	// type (integer, bigint, smallint, uuid), text, or "" for a type
	// compared as text.
	KeyKind string
	// LinkEmail does the same for the users ($1) whose verified primary
	// email ($2) the row's email column holds, when the mapping links by
	// email (users.link); "" otherwise.
	LinkEmail string
	// write is the CTEs that write apply's rows (as src) into the table,
	// the last of them, written, returning each row's clerk_id, its key as
	// text (id) and as it is (user_key), and whether it was inserted.
	write string
	// projection is write's projectionOf, an SQL literal.
	projection string
	// Count counts the live users with a Clerk ID.
	Count string
	// Unseen lists up to $4 live users after the Clerk ID $3 that the run
	// $1, started at $2, did not see (user_unseen); UnseenCount counts
	// them all.
	Unseen, UnseenCount string
	// Lookup reads one row by Clerk ID ($1).
	Lookup string
	// Remove deletes (or soft-deletes) the row of a tombstoned Clerk ID
	// ($1); RowLeft tells whether a tombstoned user's row still waits for
	// that.
	Remove, RowLeft string
	// Live is a predicate on the table's alias u: the row is not
	// soft-deleted.
	Live string
	// Columns are every column of the table.
	Columns map[string]ColumnInfo
	// Exposed are the columns of the row lookup reads, which ensure
	// answers: the key, the Clerk ID and the mapped columns the mapping
	// exposes, sorted; never a column the mapping does not name.
	Exposed []string
}

// ownUsers is the mapping of clerksync's own users table, with its column
// types (migrations/tables/001_users.sql).
var ownUsers = &mapping.Users{Entity: own("users", map[string]string{
	"clerk_created_at": mapping.SourceCreatedAt, "clerk_updated_at": mapping.SourceUpdatedAt, "email": mapping.SourceEmail,
	"first_name": mapping.SourceFirstName, "image_url": mapping.SourceImageURL, "last_name": mapping.SourceLastName,
	"updated_at": mapping.SourceNow, "username": mapping.SourceUsername,
})}

var ownUsersTypes = map[string]ColumnInfo{
	"id": {DataType: "uuid", hasDefault: true}, "clerk_id": {DataType: "text"},
	"clerk_created_at": {DataType: "timestamp with time zone", Nullable: true},
	"clerk_updated_at": {DataType: "timestamp with time zone"},
	"email":            {DataType: "text", Nullable: true}, "first_name": {DataType: "text", Nullable: true},
	"image_url": {DataType: "text", Nullable: true}, "last_name": {DataType: "text", Nullable: true},
	"updated_at": {DataType: "timestamp with time zone", hasDefault: true},
	"username":   {DataType: "text", Nullable: true},
	"created_at": {DataType: "timestamp with time zone", hasDefault: true},
}

// compileUsers builds a userTable from a mapping and the table's columns,
// or says, one line per mistake, what in the mapping the table cannot take.
func compileUsers(m *mapping.Users, cols map[string]ColumnInfo, schema string) (*Users, error) {
	t := &Users{Schema: schema, Mapping: m, Name: quoteTable(m.Table), ClerkID: quote(m.ClerkID), Key: quote(m.Key.Column), Live: "true", Columns: cols}
	c := newTableCompiler("users", m.Table, cols)
	typed, insertCols, insertVals, sets := c.entity(m.Entity, "a Clerk ID")
	c.deletion(m.Deletion, "a live user's row")
	if err := c.err(); err != nil {
		return nil, err
	}
	if len(sets) == 0 {
		// An update that sets nothing is not valid SQL; the row is there.
		sets = append(sets, fmt.Sprintf("%s = excluded.%s", t.ClerkID, t.ClerkID))
	}
	t.PageCols = pageColumns(typed)
	t.Exposed = exposedColumns(m, cols)
	if m != ownUsers && cols[m.ClerkID].Nullable {
		// A row some user holds is never taken, nor one for a deleted user.
		link := func(by, match string) string {
			return render("link", struct{ Schema, Table, ClerkID, By, Match, Absent string }{
				t.Schema, t.Name, t.ClerkID, by, match, absent(t.Name, t.ClerkID, "p.clerk_id")})
		}
		if m.Links(mapping.LinkExternalID) {
			// The external_id as the key's own type, so the key's index
			// finds the row: compared as text, every write of a user with
			// an external_id scanned the table. externalIDs passes only
			// values the type takes.
			t.KeyKind = externalIDKind(cols[m.Key.Column].DataType)
			key := `u.` + t.Key + ` = p.external_id`
			switch t.KeyKind {
			case "":
				key = `u.` + t.Key + `::text = p.external_id`
			case "text":
			default:
				key += `::` + t.KeyKind
			}
			t.Link = link("external_id", key)
		}
		if m.Links(mapping.LinkEmail) {
			// Compared as the column compares (citext: whatever the case),
			// so the column's own index finds the row: text compared with
			// citext would compare as text.
			email := "p.email"
			if ut := cols[m.EmailColumn].userType; ut != "" {
				email += "::" + ut
			}
			t.LinkEmail = link("email", `u.`+quote(m.EmailColumn)+` = `+email)
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
func exposedColumns(m *mapping.Users, cols map[string]ColumnInfo) []string {
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
func (t *Users) build(insertCols, insertVals, sets, updates []string, typed []column, cols map[string]ColumnInfo) {
	t.write = writeFromApply(t.Name, t.ClerkID, insertCols, insertVals, sets, updates,
		`u.`+t.ClerkID+` as clerk_id, u.`+t.Key+`::text as id, u.`+t.Key+` as user_key, `, true)
	t.projection = projectionOf(t.write)
	t.Upsert = render("user_upsert", struct {
		Apply                       userApply
		Params, Key, Table, ClerkID string
	}{t.apply(""), params(UserRelation), t.Key, t.Name, t.ClerkID})
	t.UpsertPage = t.pageStatement("")
	pending := "true"
	if t.Mapping.Delete == mapping.Soft {
		t.Remove, t.Live, pending = softRemove(t.Name, t.ClerkID, t.Mapping.Deletion,
			typed, cols, t.Schema+".user_tombstones")
	} else {
		t.Remove = hardRemove(t.Name, t.ClerkID, t.Schema+".user_tombstones")
	}
	t.RowLeft = `select exists (select 1 from ` + t.Name + ` u where u.` + t.ClerkID + ` = $1 and ` + pending + `)`
	counts := struct{ Schema, Table, ClerkID, Live string }{t.Schema, t.Name, t.ClerkID, t.Live}
	t.Count = render("user_count", counts)
	unseen := struct {
		Schema, Table, ClerkID, Live string
		Count                        bool
	}{t.Schema, t.Name, t.ClerkID, t.Live, true}
	t.UnseenCount = render("user_unseen", unseen)
	unseen.Count = false
	t.Unseen = render("user_unseen", unseen)
	t.Lookup = render("user_lookup", struct{ Schema, Table, Key, ClerkID, Row, Pending string }{
		t.Schema, t.Name, t.Key, t.ClerkID, rowObject("u", t.Exposed), pending})
}

// userApply fills user_apply (sql/users.sql).
type userApply struct {
	Schema, TrialPeriod, Absent, Holds, Projection, Write string
}

// apply is user_apply for t, giving trials of trialPeriod (a parameter;
// "" for none).
func (t *Users) apply(trialPeriod string) userApply {
	return userApply{Schema: t.Schema, TrialPeriod: trialPeriod, Absent: absent(t.Name, t.ClerkID, "src.clerk_id"),
		Holds:      holds("(st.clerk_updated_at, st.content_hash) >= (src.updated_at, src.content_hash)", t.projection),
		Projection: t.projection, Write: t.write}
}

// pageStatement writes a page (user_page): with trialInsert (an insert of
// the trials of apply's rows a with grant_trial, joined to their written
// rows w, returning a row per trial written), the trials of the period
// @trial_period too. A second anti-join of the tombstones for the count
// cost the page a second probe per user, hence checked.
func (t *Users) pageStatement(trialInsert string) string {
	trialPeriod := ""
	if trialInsert != "" {
		trialPeriod = "@trial_period"
	}
	return render("user_page", struct {
		Apply                       userApply
		Relation, Live, TrialInsert string
	}{t.apply(trialPeriod), pageRelation(t.PageCols), absent(t.Schema+".user_tombstones", "clerk_id", "p.clerk_id"), trialInsert})
}

// externalIDKind is how an external_id is compared with a key of
// dataType: cast to the key's integer or uuid type, as text for a text
// key, or "" (the key cast to text) for any other.
func externalIDKind(dataType string) string {
	switch dataType {
	case "smallint", "integer", "bigint", "uuid":
		return dataType
	case "text", "character varying", "citext", "character":
		return "text"
	}
	return ""
}

// uuidText is a UUID as PostgreSQL reads one.
var uuidText = regexp.MustCompile(`^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$`)

// KeyHolds reports whether a key of keyKind can hold the value v.
func KeyHolds(keyKind, v string) bool {
	switch keyKind {
	case "smallint":
		_, err := strconv.ParseInt(v, 10, 16)
		return err == nil
	case "integer":
		_, err := strconv.ParseInt(v, 10, 32)
		return err == nil
	case "bigint":
		_, err := strconv.ParseInt(v, 10, 64)
		return err == nil
	case "uuid":
		return uuidText.MatchString(v)
	}
	return true
}
