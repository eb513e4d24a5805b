package sqlgen

// Expressions the SQL compiler writes into statements: quoted names and
// literals, the conversions of a source into a column's type, missing
// values and metadata paths. Nothing unquoted reaches a statement but
// through them.

import (
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/clerksync/clerksync/internal/mapping"
)

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
		switch {
		case c.Source == mapping.SourceNow:
			src = "now()"
		case c.Missing != nil: // mapping.MissingNow, the one a time takes
			src = "coalesce(" + src + ", now())"
		}
		return timeInto(src, c.dataType)
	case mapping.Bool:
		if c.Missing != nil { // true or false, as the mapping checked
			return "coalesce(src." + quote(c.Source) + ", " + *c.Missing + ")", c.dataType == "boolean"
		}
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
