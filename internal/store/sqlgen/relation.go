package sqlgen

// The source relations: the row a write statement reads one user,
// organization or membership from, as named parameters (one entity) or
// as named arrays unnested (a page). Their columns are the mapping's
// source tables (mapping.UserSources, ...), in order.

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/clerksync/clerksync/internal/clerkevent"
	"github.com/clerksync/clerksync/internal/mapping"
)

// relation is the sources with a column in the relation, in order.
func relation[T any](sources []mapping.Source[T]) []mapping.Source[T] {
	return slices.DeleteFunc(slices.Clone(sources), func(s mapping.Source[T]) bool { return s.RelationColumn() == "" })
}

var (
	UserRelation         = relation(mapping.UserSources)
	OrganizationRelation = relation(mapping.OrganizationSources)
	MembershipRelation   = relation(mapping.MembershipSources)
)

// params is a relation's columns as named parameters (@clerk_id), each
// cast to its type and named as its column.
func params[T any](rel []mapping.Source[T]) string {
	ps := make([]string, len(rel))
	for i, s := range rel {
		ps[i] = "@" + s.RelationColumn() + "::" + s.SQLType + " as " + s.RelationColumn()
	}
	return strings.Join(ps, ", ")
}

// Args are e's values as the named arguments of a statement reading
// params(rel).
func Args[T any](rel []mapping.Source[T], e T) pgx.StrictNamedArgs {
	a := make(pgx.StrictNamedArgs, len(rel))
	for _, s := range rel {
		a[s.RelationColumn()] = s.Value(e)
	}
	return a
}

// pageSources are the user relation's columns every page statement reads:
// the identity, the version, and created_at for the trial.
var pageSources = []string{"clerk_id", "created_at", "updated_at", "content_hash"}

// pageColumns are the user relation's columns a page passes, as positions
// in userRelation: pageSources and the mapped columns' sources. The rest
// are null in the page's relation, so a column no mapping writes (the
// whole object as JSON, say) costs nothing to send.
func pageColumns(typed []column) []int {
	read := slices.Clone(pageSources)
	for _, c := range typed {
		read = append(read, c.Source)
		read = append(read, derivedSources[c.Source].reads...)
	}
	var cols []int
	for i, s := range UserRelation {
		if slices.Contains(read, s.RelationColumn()) {
			cols = append(cols, i)
		}
	}
	return cols
}

// arrayType is the array a relation column of type typ is passed in: its
// own for times and booleans, text for the rest (JSON is cast from text,
// as the single-row statement's parameters are).
func arrayType(typ string) string {
	switch typ {
	case "timestamptz", "boolean":
		return typ + "[]"
	}
	return "text[]"
}

// pageRelation is the source relation of a page: each of cols a named
// array parameter (@email, an array of every user's) unnested into one row
// per user, every other column null. One statement reads it, with no
// staging table: a temporary table cost each page its own statement, a
// COPY and its description, and its truncation at commit.
func pageRelation(cols []int) string {
	arrays, names, selected := make([]string, len(cols)), make([]string, len(cols)), make([]string, len(UserRelation))
	for i, at := range cols {
		s := UserRelation[at]
		arrays[i], names[i] = "@"+s.RelationColumn()+"::"+arrayType(s.SQLType), s.RelationColumn()
	}
	for i, s := range UserRelation {
		if slices.Contains(cols, i) {
			selected[i] = "p." + s.RelationColumn() + "::" + s.SQLType + " as " + s.RelationColumn()
		} else {
			selected[i] = "null::" + s.SQLType + " as " + s.RelationColumn()
		}
	}
	return `select ` + strings.Join(selected, ", ") + `
    from unnest(` + strings.Join(arrays, ", ") + `) as p(` + strings.Join(names, ", ") + `)`
}

// PageArgs are a page's users as pageRelation's named arrays.
func PageArgs(users []clerkevent.User, cols []int) pgx.StrictNamedArgs {
	a := make(pgx.StrictNamedArgs, len(cols)+1)
	values := make([]any, len(users))
	for _, at := range cols {
		s := UserRelation[at]
		for i, u := range users {
			values[i] = s.Value(u)
		}
		switch arrayType(s.SQLType) {
		case "timestamptz[]":
			a[s.RelationColumn()] = arrayOf[time.Time](values)
		case "boolean[]":
			a[s.RelationColumn()] = arrayOf[bool](values)
		default:
			a[s.RelationColumn()] = arrayOf[string](values)
		}
	}
	return a
}

// TrialPeriodArg is the page statement's trial period (@trial_period), an
// interval.
func TrialPeriodArg(d time.Duration) string { return fmt.Sprintf("%d microseconds", d.Microseconds()) }

// arrayOf is values, each a T, a *T or nil, as one array.
func arrayOf[T any](values []any) []*T {
	a := make([]*T, len(values))
	for r, v := range values {
		switch v := v.(type) {
		case T:
			a[r] = &v
		case *T:
			a[r] = v
		}
	}
	return a
}
