package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

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
		jsonText(u.PublicMetadata), jsonText(u.PrivateMetadata), jsonText(u.UnsafeMetadata), optionalTime(u.LastSignInAt), u.Banned, u.Locked, jsonText(u.Object)}
}

// pageSources are the source columns every page statement reads: the
// identity, the version, and created_at for the trial.
var pageSources = []string{"clerk_id", "created_at", "updated_at", "content_hash"}

// derivedSources are the mapping sources that are no column of the source
// relation but an expression of some (reads), on its alias src.
var derivedSources = map[string]struct {
	expr  string
	reads []string
}{
	// Clerk's fullName: the first and last name joined by a space, either
	// alone when the other is missing, none when both are.
	mapping.SourceFullName: {`nullif(btrim(concat_ws(' ', src.first_name, src.last_name)), '')`, []string{"first_name", "last_name"}},
}

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

// column is a mapped column with its database type.
type column struct {
	mapping.Column
	quoted string
	// dataType is information_schema.columns.data_type.
	dataType string
	// enumType is an enum column's type, quoted: text is cast to it.
	enumType string
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
	// write is the insert of the written CTE: apply's rows as src into the
	// table, returning each row's clerk_id, its key as text (id) and as it
	// is (user_key), and whether it was inserted.
	write string
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

// columnInfo is what information_schema says of a column.
type columnInfo struct {
	dataType   string
	nullable   bool
	hasDefault bool
	// enumType and enumLabels are an enum column's type, quoted, and its
	// labels in order (Drizzle's pgEnum, Prisma's enum); empty otherwise.
	enumType   string
	enumLabels []string
}

// quoteTable quotes a mapped table's name; an empty schema (clerksync's own
// tables) leaves it to search_path.
func quoteTable(t mapping.Table) string {
	if t.Schema == "" {
		return pgx.Identifier{t.Name}.Sanitize()
	}
	return pgx.Identifier{t.Schema, t.Name}.Sanitize()
}

func quote(name string) string { return pgx.Identifier{name}.Sanitize() }

// literal quotes s as an SQL string constant (standard_conforming_strings,
// PostgreSQL's default since 9.1).
func literal(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// timeInto converts a timestamptz expression to a column's type: Clerk's
// times and the time of the write go into timestamptz as they are, into
// timestamp without time zone as UTC, into bigint as Unix milliseconds (as
// Clerk writes them). ok is false for a type that cannot hold a time.
func timeInto(expr, dataType string) (string, bool) {
	switch dataType {
	case "timestamp with time zone":
		return expr, true
	case "timestamp without time zone":
		return "(" + expr + " at time zone 'UTC')", true
	case "bigint", "numeric":
		return "(extract(epoch from " + expr + ") * 1000)::bigint", true
	}
	return "", false
}

// timeFrom converts a column of one of timeInto's types back to timestamptz.
func timeFrom(expr, dataType string) string {
	switch dataType {
	case "timestamp without time zone":
		return "(" + expr + " at time zone 'UTC')"
	case "bigint", "numeric":
		return "to_timestamp(" + expr + " / 1000.0)"
	}
	return expr
}

// textTypes can hold a text source (citext is an extension's type, which
// information_schema calls by its name; see tableColumns).
var textTypes = []string{"text", "character varying", "character", "citext"}

// ClerkIDPlaceholder in a missing value is replaced by the row's Clerk ID,
// so a NOT NULL unique column (an app's required, unique email) can take a
// value of each user's own when Clerk has none: missing:
// "{clerk_id}@no-email.invalid".
const ClerkIDPlaceholder = "{clerk_id}"

// missingExpr is the expression of a missing value, with
// ClerkIDPlaceholder replaced by clerkID (an expression).
func missingExpr(missing, clerkID string) string {
	if !strings.Contains(missing, ClerkIDPlaceholder) {
		return literal(missing)
	}
	return "replace(" + literal(missing) + ", " + literal(ClerkIDPlaceholder) + ", " + clerkID + ")"
}

// valueExpr is the expression a column is written with, from the source
// relation's row src.
func valueExpr(c column) (string, bool) {
	if c.enumType != "" {
		// Text written as the enum: a label the enum lacks is a data
		// exception, and the event fails for that user alone
		// (Store.Classify).
		text := c
		text.dataType, text.enumType = "text", ""
		expr, ok := valueExpr(text)
		return "(" + expr + ")::" + c.enumType, ok && mapping.SourceKind(c.Source) != mapping.Time && mapping.SourceKind(c.Source) != mapping.Bool
	}
	withMissing := func(expr string) string {
		if c.Missing == nil {
			return expr
		}
		return "coalesce(" + expr + ", " + missingExpr(*c.Missing, "src.clerk_id") + ")"
	}
	switch mapping.SourceKind(c.Source) {
	case mapping.Time:
		src := "src." + quote(c.Source)
		if c.Source == mapping.SourceNow {
			src = "now()"
		}
		return timeInto(src, c.dataType)
	case mapping.Bool:
		return "src." + quote(c.Source), c.dataType == "boolean"
	case mapping.JSON:
		src := "src." + quote(c.Source)
		path := ""
		if len(c.Path) > 0 {
			path = " " + pathLiteral(c.Path)
		}
		switch {
		case c.dataType == "jsonb" && path != "":
			return withMissing("(" + src + " #>" + path + ")"), true
		case c.dataType == "jsonb":
			return withMissing(src), true
		case c.dataType == "json":
			return withMissing("(" + src + " #>" + cmpPath(path) + ")::json"), true
		case slices.Contains(textTypes, c.dataType) && path != "":
			return withMissing("(" + src + " #>>" + path + ")"), true
		case slices.Contains(textTypes, c.dataType):
			return withMissing(src + "::text"), true
		}
		return "", false
	default:
		if !slices.Contains(textTypes, c.dataType) {
			return "", false
		}
		if d, ok := derivedSources[c.Source]; ok {
			return withMissing(d.expr), true
		}
		return withMissing("src." + quote(c.Source)), true
	}
}

// pathLiteral is a metadata path as a text[] literal for #> and #>>,
// every key quoted: a key with a comma, a quote or a brace is the one key
// it says, not several or none.
func pathLiteral(path []string) string {
	keys := make([]string, len(path))
	for i, k := range path {
		keys[i] = `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(k) + `"`
	}
	return literal("{" + strings.Join(keys, ",") + "}")
}

// cmpPath is path, or the empty path '{}' (the whole value).
func cmpPath(path string) string {
	if path == "" {
		return " '{}'"
	}
	return path
}

// keyExpr is the expression a new row's generated key is written with.
func keyExpr(k mapping.Key, dataType string) (string, bool) {
	switch {
	case k.Generate != mapping.GenerateUUID:
		return "", true
	case dataType == "uuid":
		return "gen_random_uuid()", true
	case slices.Contains(textTypes, dataType):
		return "gen_random_uuid()::text", true
	}
	return "", false
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
	t.build(insertCols, insertVals, sets, typed, cols)
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

// tableCompiler checks a mapped table's columns against its mapping and
// collects every mistake, one line each, naming the table and the column.
type tableCompiler struct {
	label    string
	cols     map[string]columnInfo
	written  map[string]bool
	problems []string
	// clerkID is the table's Clerk ID column, quoted, once checked.
	clerkID string
}

func newTableCompiler(entity string, t mapping.Table, cols map[string]columnInfo) *tableCompiler {
	return &tableCompiler{label: fmt.Sprintf("%s table %s", entity, t), cols: cols, written: map[string]bool{}}
}

func (c *tableCompiler) problem(col, format string, args ...any) {
	c.problems = append(c.problems, fmt.Sprintf("%s, column %s: ", c.label, col)+fmt.Sprintf(format, args...))
}

// info returns a column's type, or records that it is not there.
func (c *tableCompiler) info(name string) (columnInfo, bool) {
	ci, ok := c.cols[name]
	if !ok {
		c.problem(name, "no such column; add it to the table, or take it out of the mapping")
	}
	return ci, ok
}

// clerkIDColumn checks the column holding a Clerk ID (what names it).
func (c *tableCompiler) clerkIDColumn(name, what string) {
	c.written[name] = true
	c.clerkID = quote(name)
	if ci, ok := c.info(name); ok && !slices.Contains(textTypes, ci.dataType) {
		c.problem(name, "type %s cannot hold %s; make it text", ci.dataType, what)
	}
}

// referenceColumn checks a column that references another table's key of
// keyType.
func (c *tableCompiler) referenceColumn(name, keyType, what string) {
	c.written[name] = true
	if ci, ok := c.info(name); ok && ci.dataType != keyType {
		c.problem(name, "type %s does not match %s's key (%s)", ci.dataType, what, keyType)
	}
}

// keyColumn checks the primary key and returns the column and expression a
// new row's key is written with, or "" when the database makes it.
func (c *tableCompiler) keyColumn(k mapping.Key) (col, val string) {
	c.written[k.Column] = true
	ci, ok := c.info(k.Column)
	if !ok {
		return "", ""
	}
	gen, ok := keyExpr(k, ci.dataType)
	switch {
	case !ok:
		c.problem(k.Column, "type %s cannot hold a generated uuid; make it text or uuid, or give it a default", ci.dataType)
	case gen == "" && !ci.hasDefault:
		c.problem(k.Column, "the primary key has no database default; say how a new row's key is made: key: {column: %s, generate: uuid}", k.Column)
	case gen != "":
		return quote(k.Column), gen
	}
	return "", ""
}

// columns checks the mapped columns and returns them typed, with the
// insert's columns and values and the update's assignments.
func (c *tableCompiler) columns(cols []mapping.Column) (typed []column, insertCols, insertVals, sets []string) {
	for _, m := range cols {
		ci, ok := c.info(m.Name)
		if !ok {
			continue
		}
		col := column{Column: m, quoted: quote(m.Name), dataType: ci.dataType, enumType: ci.enumType}
		if col.enumType != "" && m.Missing != nil && !slices.Contains(ci.enumLabels, *m.Missing) {
			c.problem(m.Name, "missing %q is not a label of enum %s (%s); write one of its labels", *m.Missing, ci.dataType, strings.Join(ci.enumLabels, ", "))
		}
		expr, ok := valueExpr(col)
		if !ok {
			c.problem(m.Name, "type %s cannot hold source %s (%s); change the column's type or the source", ci.dataType, m.Source, kindName(m.Source))
			continue
		}
		if !ci.nullable && m.Missing == nil && nullableSource(m.Source) {
			c.problem(m.Name, "NOT NULL, and source %s can be missing; say what is written then: {source: %s, missing: \"\"}", m.Source, m.Source)
		}
		c.written[m.Name] = true
		typed = append(typed, col)
		insertCols, insertVals = append(insertCols, col.quoted), append(insertVals, expr)
		switch {
		case m.InsertOnly:
		case m.Keep:
			// The source as it is, without the missing value: none keeps
			// the row's own. ON CONFLICT's SET sees only the proposed row,
			// so the source is read back from the write's apply relation.
			raw := col
			raw.Missing = nil
			rawExpr, _ := valueExpr(raw)
			sets = append(sets, fmt.Sprintf("%s = coalesce((select %s from apply src where src.clerk_id = excluded.%s), u.%s)",
				col.quoted, rawExpr, c.clerkID, col.quoted))
		case m.Source == mapping.SourceCreatedAt:
			// Clerk's created_at never changes; a write without it keeps it.
			sets = append(sets, fmt.Sprintf("%s = coalesce(excluded.%s, u.%s)", col.quoted, col.quoted, col.quoted))
		default:
			sets = append(sets, fmt.Sprintf("%s = excluded.%s", col.quoted, col.quoted))
		}
	}
	return typed, insertCols, insertVals, sets
}

// deletion checks a soft deletion's deleted-at column (live says whose row
// has none).
func (c *tableCompiler) deletion(d mapping.Deletion, live string) {
	if d.Delete != mapping.Soft {
		return
	}
	ci, ok := c.info(d.DeletedAt)
	if !ok {
		return
	}
	if _, ok := timeInto("now()", ci.dataType); !ok {
		c.problem(d.DeletedAt, "type %s cannot hold the deletion's time; make it timestamptz, timestamp or bigint", ci.dataType)
	}
	if !ci.nullable {
		c.problem(d.DeletedAt, "NOT NULL: %s has no deletion time; make the column nullable", live)
	}
}

// err reports every NOT NULL column the mapping leaves unwritten, and
// every mistake found before, or nil.
func (c *tableCompiler) err() error {
	for _, name := range slices.Sorted(maps.Keys(c.cols)) {
		if ci := c.cols[name]; !ci.nullable && !ci.hasDefault && !c.written[name] {
			c.problem(name, "NOT NULL without a default, and the mapping does not write it; map it (a source, or now) or give it a default")
		}
	}
	if len(c.problems) > 0 {
		return errors.New(strings.Join(c.problems, "\n"))
	}
	return nil
}

// softRemove is the soft deletion of a tombstoned row ($1), on the table
// alias u: the deleted-at column set (kept when the app had set it
// already), the cleared columns emptied, whatever the row's state, so a
// row the app deactivated itself loses its personal data too. live is a
// predicate on u: the row is not soft-deleted; pending, that its removal
// is not done (not soft-deleted, or a cleared column still holds a value).
func softRemove(name, clerkID string, d mapping.Deletion, typed []column, cols map[string]columnInfo, tombstones string) (remove, live, pending string) {
	deleted := quote(d.DeletedAt)
	now, _ := timeInto("now()", cols[d.DeletedAt].dataType)
	set := []string{deleted + " = coalesce(u." + deleted + ", " + now + ")"}
	live = "u." + deleted + " is null"
	uncleared := []string{live}
	for _, name := range d.Clear {
		i := slices.IndexFunc(typed, func(c column) bool { return c.Name == name })
		value := "null"
		if typed[i].Missing != nil {
			value = missingExpr(*typed[i].Missing, "u."+clerkID)
		}
		set = append(set, quote(name)+" = "+value)
		uncleared = append(uncleared, "u."+quote(name)+" is distinct from "+value)
	}
	// The columns every write stamps with its time (an app's updated_at)
	// say when the row last changed: a deletion changes it.
	for _, c := range typed {
		if c.Source == mapping.SourceNow && !c.InsertOnly && !slices.Contains(d.Clear, c.Name) && c.Name != d.DeletedAt {
			stamp, _ := timeInto("now()", c.dataType)
			set = append(set, c.quoted+" = "+stamp)
		}
	}
	pending = "(" + strings.Join(uncleared, " or ") + ")"
	return `update ` + name + ` u set ` + strings.Join(set, ", ") + `
where u.` + clerkID + ` = $1 and ` + pending + `
  and exists (select 1 from ` + tombstones + ` where clerk_id = $1)`, live, pending
}

// hardRemove is the delete of a tombstoned row ($1).
func hardRemove(name, clerkID, tombstones string) string {
	return `delete from ` + name + ` u
where u.` + clerkID + ` = $1 and exists (select 1 from ` + tombstones + ` where clerk_id = $1)`
}

// build writes the statements of t.
func (t *userTable) build(insertCols, insertVals, sets []string, typed []column, cols map[string]columnInfo) {
	t.write = `
    insert into ` + t.name + ` as u (` + strings.Join(insertCols, ", ") + `)
    select ` + strings.Join(insertVals, ", ") + ` from apply src
    order by src.clerk_id
    on conflict (` + t.clerkID + `) do update set
        ` + strings.Join(sets, ",\n        ") + `
    returning u.` + t.clerkID + ` as clerk_id, u.` + t.key + `::text as id, u.` + t.key + ` as user_key, xmax = 0 as inserted`
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
           where st.clerk_id = src.clerk_id and (st.clerk_updated_at, st.content_hash) >= (src.updated_at, src.content_hash)))
), state as (
    insert into clerksync.user_state as st (clerk_id, clerk_updated_at, content_hash` + stateCol + `)
    select clerk_id, updated_at, content_hash` + stateVal + ` from apply
    on conflict (clerk_id) do update set
        clerk_updated_at = excluded.clerk_updated_at,
        content_hash     = excluded.content_hash` + stateSet + `
), written as (` + t.write + `
)`
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

// absent tests that no row of table has the unique column equal to value,
// by index, one value at a time. PostgreSQL may run NOT EXISTS (select ...
// where column = value) as a hashed subplan, reading the whole table into a
// hash for every statement: for a backfill page of 500 users beside 100,000
// rows, a scan of the table per page, and a backfill that slows as the
// table fills. A scalar subquery is never hashed; the column is unique, so
// it returns at most one row.
func absent(table, column, value string) string {
	return `(select true from ` + table + ` x where x.` + column + ` = ` + value + `) is null`
}

// nullableSource reports whether a source can have no value.
func nullableSource(source string) bool {
	switch source {
	case mapping.SourceUpdatedAt, mapping.SourceNow, mapping.SourceBanned, mapping.SourceLocked, mapping.SourceRole:
		return false
	}
	return true
}

func kindName(source string) string {
	switch mapping.SourceKind(source) {
	case mapping.Time:
		return "a time"
	case mapping.Bool:
		return "a boolean"
	case mapping.JSON:
		return "JSON"
	}
	return "text"
}

// tableColumns reads a table's columns from information_schema, or says
// that the table is not there.
func tableColumns(ctx context.Context, q pgx.Tx, entity string, t mapping.Table) (map[string]columnInfo, error) {
	rows, err := q.Query(ctx, `
select column_name::text, case when data_type = 'USER-DEFINED' then udt_name::text else data_type::text end, is_nullable = 'YES',
       column_default is not null or is_identity = 'YES' or is_generated <> 'NEVER',
       case when data_type = 'USER-DEFINED' then udt_schema::text else '' end,
       coalesce((select array_agg(e.enumlabel::text order by e.enumsortorder)
                 from pg_type ty join pg_namespace n on n.oid = ty.typnamespace join pg_enum e on e.enumtypid = ty.oid
                 where ty.typname = c.udt_name and n.nspname = c.udt_schema), '{}')
from information_schema.columns c where table_schema = $1 and table_name = $2`, t.Schema, t.Name)
	if err != nil {
		return nil, fmt.Errorf("read the columns of %s: %w", t, err)
	}
	cols := map[string]columnInfo{}
	for rows.Next() {
		var name, typeSchema string
		var ci columnInfo
		if err := rows.Scan(&name, &ci.dataType, &ci.nullable, &ci.hasDefault, &typeSchema, &ci.enumLabels); err != nil {
			return nil, fmt.Errorf("read the columns of %s: %w", t, err)
		}
		if len(ci.enumLabels) > 0 {
			ci.enumType = pgx.Identifier{typeSchema, ci.dataType}.Sanitize()
		}
		cols[name] = ci
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read the columns of %s: %w", t, err)
	}
	if len(cols) == 0 {
		return nil, &noTableError{entity: entity, table: t}
	}
	return cols, nil
}

// noTableError is a mapped table the database does not have.
type noTableError struct {
	entity string
	table  mapping.Table
}

func (e *noTableError) Error() string {
	return fmt.Sprintf("%s table %s: no such table (or no privilege to see it); create it, or correct the mapping's %s.table", e.entity, e.table, e.entity)
}

// isUnique reports whether a unique index (or constraint) of table holds
// column alone, so that ON CONFLICT on it can work.
func isUnique(ctx context.Context, q pgx.Tx, t mapping.Table, col string) (bool, error) {
	var ok bool
	err := q.QueryRow(ctx, `
select exists (
    select 1 from pg_index i join pg_attribute a on a.attrelid = i.indrelid and a.attnum = i.indkey[0]
    where i.indrelid = (quote_ident($1) || '.' || quote_ident($2))::regclass
      and i.indisunique and i.indnkeyatts = 1 and i.indpred is null and a.attname = $3)`, t.Schema, t.Name, col).Scan(&ok)
	if err != nil {
		return false, fmt.Errorf("look for a unique index on %s.%s: %w", t, col, err)
	}
	return ok, nil
}

// RowColumn is a column of the row ensure answers: its name and
// PostgreSQL's type (information_schema's data_type; an extension's type by
// its name).
type RowColumn struct {
	Name, DataType string
	Nullable       bool
}

// UserColumns lists the columns of a user's row (User.Row), sorted by
// name: the columns the mapping exposes, plus clerk_id, which the row
// always carries. With a mapping it reads the table's columns on first use.
func (s *Store) UserColumns(ctx context.Context) ([]RowColumn, error) {
	users, _, err := s.tables(ctx)
	if err != nil {
		return nil, err
	}
	cols := []RowColumn{{Name: "clerk_id", DataType: "text"}}
	for _, name := range users.exposed {
		if name == "clerk_id" {
			continue
		}
		ci := users.columns[name]
		cols = append(cols, RowColumn{Name: name, DataType: ci.dataType, Nullable: ci.nullable})
	}
	slices.SortFunc(cols, func(a, b RowColumn) int { return strings.Compare(a.Name, b.Name) })
	return cols, nil
}
