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
	users, trials, orgs, memberships := c.Users, c.Trials, c.Organizations, c.Memberships
	out := []Statement{
		{"users", "upsert", users.Upsert},
		{"users", "page", users.UpsertPage},
		{"users", "lookup", users.Lookup},
		{"users", "remove", users.Remove},
		{"users", "row left", users.RowLeft},
		{"users", "count", users.Count},
		{"users", "unseen", users.Unseen},
		{"users", "unseen count", users.UnseenCount},
	}
	if users.Link != "" {
		out = append(out, Statement{"users", "link a row from before Clerk", users.Link})
	}
	if users.LinkEmail != "" {
		out = append(out, Statement{"users", "link a row from before Clerk by verified email", users.LinkEmail})
	}
	if trials != nil {
		out = append(out,
			Statement{"trials", "grant", trials.Grant},
			Statement{"trials", "page", trials.Page},
			Statement{"trials", "expire", trials.Expire},
			Statement{"trials", "lookup", trials.Lookup},
			Statement{"trials", "due (the mapping's proof)", trials.Due})
	}
	if orgs != nil {
		out = append(out,
			Statement{"organizations", "upsert", orgs.Upsert},
			Statement{"organizations", "lookup", orgs.Lookup},
			Statement{"organizations", "remove", orgs.Remove},
			Statement{"organizations", "row left", orgs.RowLeft},
			Statement{"organizations", "unseen", orgs.Unseen},
			Statement{"memberships", "upsert", memberships.Upsert},
			Statement{"memberships", "drop older", memberships.DropOlder},
			Statement{"memberships", "remove", memberships.Remove},
			Statement{"memberships", "row left", memberships.RowLeft},
			Statement{"memberships", "members", memberships.Members},
			Statement{"memberships", "unseen", memberships.Unseen})
	}
	for i := range out {
		out[i].SQL = strings.TrimSpace(out[i].SQL)
	}
	return out, nil
}
