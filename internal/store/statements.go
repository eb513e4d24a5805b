package store

import (
	"context"
	"strings"
)

// Statement is one SQL statement the store built from the mapping (or from
// clerksync's own tables): the entity it writes, what it does, its text.
type Statement struct {
	Entity, Name, SQL string
}

// Statements lists every statement the store runs against the mapped
// tables, as built from their columns now, in a fixed order: what a
// reviewer reads to see what a mapping does (internal/store/testdata/sql
// keeps them for the built-in tables and every example).
func (s *Store) Statements(ctx context.Context) ([]Statement, error) {
	c, err := s.statements(ctx)
	if err != nil {
		return nil, err
	}
	var out []Statement
	// add lists an entity's statements, given as name and SQL in turn; a
	// statement the mapping does not need ("") is left out.
	add := func(entity string, named ...string) {
		for i := 0; i+1 < len(named); i += 2 {
			if named[i+1] != "" {
				out = append(out, Statement{entity, named[i], strings.TrimSpace(named[i+1])})
			}
		}
	}
	u := c.Users
	add("users", "upsert", u.Upsert, "page", u.UpsertPage, "lookup", u.Lookup, "remove", u.Remove, "row left", u.RowLeft,
		"count", u.Count, "unseen", u.Unseen, "unseen count", u.UnseenCount,
		"link a row from before Clerk", u.Link, "link a row from before Clerk by verified email", u.LinkEmail)
	if t := c.Trials; t != nil {
		add("trials", "grant", t.Grant, "page", t.Page, "expire", t.Expire, "lookup", t.Lookup, "due (the mapping's proof)", t.Due)
	}
	if o, m := c.Organizations, c.Memberships; o != nil {
		add("organizations", "upsert", o.Upsert, "lookup", o.Lookup, "remove", o.Remove, "row left", o.RowLeft, "unseen", o.Unseen)
		add("memberships", "upsert", m.Upsert, "drop older", m.DropOlder, "remove", m.Remove, "row left", m.RowLeft,
			"members", m.Members, "unseen", m.Unseen)
	}
	return out, nil
}
