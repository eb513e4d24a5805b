package sqlgen

// The checks every mapped table goes through (tableCompiler) and the
// statements every entity shares: soft and hard removal.

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/clerksync/clerksync/internal/mapping"
)

// column is a mapped column with its database type.
type column struct {
	mapping.Column
	quoted string
	// dataType is information_schema.columns.data_type.
	dataType string
	// enumType is an enum column's type, quoted: text is cast to it.
	enumType string
}

// ColumnInfo is what information_schema says of a column.
type ColumnInfo struct {
	DataType   string
	Nullable   bool
	hasDefault bool
	// enumType and enumLabels are an enum column's type, quoted, and its
	// labels in order (Drizzle's pgEnum, Prisma's enum); empty otherwise.
	enumType   string
	enumLabels []string
	// userType is a user-defined type's name (citext, an enum), quoted with
	// its schema; "" for a built-in type.
	userType string
}

// tableCompiler checks a mapped table's columns against its mapping and
// collects every mistake, one line each, naming the table and the column.
type tableCompiler struct {
	label    string
	cols     map[string]ColumnInfo
	written  map[string]bool
	problems []string
	// clerkID is the table's Clerk ID column, quoted, once checked.
	clerkID string
	// unwrittenFix is what a NOT NULL column the mapping does not write
	// may be mapped to, for the problem's fix; "" is any source, or now.
	unwrittenFix string
	// updates are columns' assignments as an UPDATE ... FROM apply src
	// writes them over the row u: the same values as the insert's and its
	// ON CONFLICT's sets, without going through an insert (which draws a
	// value of the key's sequence even when it ends in the update).
	updates []string
}

func newTableCompiler(entity string, t mapping.Table, cols map[string]ColumnInfo) *tableCompiler {
	return &tableCompiler{label: fmt.Sprintf("%s table %s", entity, t), cols: cols, written: map[string]bool{}}
}

func (c *tableCompiler) problem(col, format string, args ...any) {
	c.problems = append(c.problems, fmt.Sprintf("%s, column %s: ", c.label, col)+fmt.Sprintf(format, args...))
}

// info returns a column's type, or records that it is not there.
func (c *tableCompiler) info(name string) (ColumnInfo, bool) {
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
	if ci, ok := c.info(name); ok && !slices.Contains(textTypes, ci.DataType) {
		c.problem(name, "type %s cannot hold %s; make it text", ci.DataType, what)
	}
}

// referenceColumn checks a column that references another table's key of
// keyType.
func (c *tableCompiler) referenceColumn(name, keyType, what string) {
	c.written[name] = true
	if ci, ok := c.info(name); ok && ci.DataType != keyType {
		c.problem(name, "type %s does not match %s's key (%s)", ci.DataType, what, keyType)
	}
}

// labelColumn checks a column that takes the text values: one of text's
// types, or an enum with them as labels.
func (c *tableCompiler) labelColumn(name string, values ...string) {
	c.written[name] = true
	ci, ok := c.info(name)
	switch {
	case !ok:
	case len(ci.enumLabels) > 0:
		for _, v := range values {
			if !slices.Contains(ci.enumLabels, v) {
				c.problem(name, "%q is not a label of enum %s (%s); write one of its labels", v, ci.DataType, strings.Join(ci.enumLabels, ", "))
			}
		}
	case !slices.Contains(textTypes, ci.DataType):
		c.problem(name, "type %s cannot hold text; make it text", ci.DataType)
	}
}

// entity checks what every entity's mapping names: its Clerk ID column
// (holding what), its key and its columns. It returns the columns typed,
// the insert's columns and values (the Clerk ID, then refs, pairs of a
// quoted column and its value, then the key and the columns) and the ON
// CONFLICT's sets.
func (c *tableCompiler) entity(e mapping.Entity, what string, refs ...[2]string) (typed []column, insertCols, insertVals, sets []string) {
	c.clerkIDColumn(e.ClerkID, what)
	insertCols, insertVals = []string{c.clerkID}, []string{"src.clerk_id"}
	for _, r := range refs {
		insertCols, insertVals = append(insertCols, r[0]), append(insertVals, r[1])
	}
	if col, val := c.keyColumn(e.Key); col != "" {
		insertCols, insertVals = append(insertCols, col), append(insertVals, val)
	}
	typed, cols, vals, sets := c.columns(e.Columns)
	return typed, append(insertCols, cols...), append(insertVals, vals...), sets
}

// keyColumn checks the primary key and returns the column and expression a
// new row's key is written with, or "" when the database makes it.
func (c *tableCompiler) keyColumn(k mapping.Key) (col, val string) {
	c.written[k.Column] = true
	ci, ok := c.info(k.Column)
	if !ok {
		return "", ""
	}
	gen, ok := keyExpr(k, ci.DataType)
	switch {
	case !ok:
		c.problem(k.Column, "type %s cannot hold a generated uuid; make it text or uuid, or give it a default", ci.DataType)
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
		col := column{Column: m, quoted: quote(m.Name), dataType: ci.DataType, enumType: ci.enumType}
		if col.enumType != "" && m.Missing != nil && !slices.Contains(ci.enumLabels, *m.Missing) {
			c.problem(m.Name, "missing %q is not a label of enum %s (%s); write one of its labels", *m.Missing, ci.DataType, strings.Join(ci.enumLabels, ", "))
		}
		expr, ok := valueExpr(col)
		if !ok {
			c.problem(m.Name, "type %s cannot hold source %s (%s); change the column's type or the source", ci.DataType, m.Source, kindName(m.Source))
			continue
		}
		if !ci.Nullable && m.Missing == nil && !mapping.SourceNotNull(m.Source) {
			c.problem(m.Name, "NOT NULL, and source %s can be missing; say what is written then: {source: %s, missing: %s}", m.Source, m.Source, missingExample(m.Source, ci.DataType))
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
			c.updates = append(c.updates, fmt.Sprintf("%s = coalesce(%s, u.%s)", col.quoted, rawExpr, col.quoted))
		case m.Source == mapping.SourceCreatedAt:
			// Clerk's created_at never changes; a write without it keeps it.
			sets = append(sets, fmt.Sprintf("%s = coalesce(excluded.%s, u.%s)", col.quoted, col.quoted, col.quoted))
			c.updates = append(c.updates, fmt.Sprintf("%s = coalesce(%s, u.%s)", col.quoted, expr, col.quoted))
		default:
			sets = append(sets, fmt.Sprintf("%s = excluded.%s", col.quoted, col.quoted))
			c.updates = append(c.updates, fmt.Sprintf("%s = %s", col.quoted, expr))
		}
	}
	return typed, insertCols, insertVals, sets
}

// missingExample is a missing value that a source's kind takes, for a
// problem's suggested fix.
func missingExample(source, dataType string) string {
	switch mapping.SourceKind(source) {
	case mapping.Time:
		return mapping.MissingNow
	case mapping.Bool:
		return "false"
	case mapping.JSON:
		if slices.Contains(textTypes, dataType) {
			return `""`
		}
		if source == mapping.SourceEmailAddresses {
			return `"[]"`
		}
		return `"{}"`
	}
	return `""`
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
	if _, ok := timeInto("now()", ci.DataType); !ok {
		c.problem(d.DeletedAt, "type %s cannot hold the deletion's time; make it timestamptz, timestamp or bigint", ci.DataType)
	}
	if !ci.Nullable {
		c.problem(d.DeletedAt, "NOT NULL: %s has no deletion time; make the column nullable", live)
	}
}

// err reports every NOT NULL column the mapping leaves unwritten, and
// every mistake found before, or nil.
func (c *tableCompiler) err() error {
	for _, name := range slices.Sorted(maps.Keys(c.cols)) {
		if ci := c.cols[name]; !ci.Nullable && !ci.hasDefault && !c.written[name] {
			fix := cmp.Or(c.unwrittenFix, "a source, or now")
			c.problem(name, "NOT NULL without a default, and the mapping does not write it; map it (%s) or give it a default", fix)
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
func softRemove(name, clerkID string, d mapping.Deletion, typed []column, cols map[string]ColumnInfo, tombstones string) (remove, live, pending string) {
	deleted := quote(d.DeletedAt)
	now, _ := timeInto("now()", cols[d.DeletedAt].DataType)
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
	return render("soft_remove", struct {
		Table, ClerkID, Pending, Tombstones string
		Sets                                []string
	}{name, clerkID, pending, tombstones, set}), live, pending
}

// hardRemove is the delete of a tombstoned row ($1).
func hardRemove(name, clerkID, tombstones string) string {
	return render("hard_remove", struct{ Table, ClerkID, Tombstones string }{name, clerkID, tombstones})
}

// writeFromApply is the write of apply's rows (as src) into the table
// name, ending in the CTE written: a row its Clerk ID column holds is
// updated (updates), and only the absent ones reach the insert (an insert
// that ended in ON CONFLICT's update drew a value of the key's sequence on
// every update). Both see the statement's snapshot, so no row is in both;
// the insert's ON CONFLICT (sets) is left for a row another transaction
// inserted since. Each written row returns the returning columns (each
// followed by a comma) and whether it was inserted. page is for a write of
// many rows: the insert takes them in Clerk ID order, and the update is
// given apply's Clerk IDs as an array for the planner (joined to apply
// alone, the table was scanned whole for a page while it was small, and
// for every page after while its statistics lagged).
func writeFromApply(name, clerkID string, insertCols, insertVals, sets, updates []string, returning string, page bool) string {
	if len(updates) == 0 {
		updates = []string{clerkID + " = src.clerk_id"} // the row is there
	}
	return render("write", struct {
		Table, ClerkID, Returning, Absent     string
		Updates, Sets, InsertCols, InsertVals []string
		Page                                  bool
	}{name, clerkID, returning, absent(name, clerkID, "src.clerk_id"), updates, sets, insertCols, insertVals, page})
}
