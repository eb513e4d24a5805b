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
	users, trials, orgs, memberships := c.users, c.trials, c.orgs, c.memberships
	out := []Statement{
		{"users", "upsert", users.upsert},
		{"users", "page", users.upsertPage},
		{"users", "lookup", users.lookup},
		{"users", "remove", users.remove},
		{"users", "row left", users.rowLeft},
	}
	if users.link != "" {
		out = append(out, Statement{"users", "link a row from before Clerk", users.link})
	}
	if users.linkEmail != "" {
		out = append(out, Statement{"users", "link a row from before Clerk by verified email", users.linkEmail})
	}
	if trials != nil {
		out = append(out,
			Statement{"trials", "grant", trials.grant},
			Statement{"trials", "page", trials.page},
			Statement{"trials", "expire", trials.expire},
			Statement{"trials", "lookup", trials.lookup},
			Statement{"trials", "due (the mapping's proof)", trials.due})
	}
	if orgs != nil {
		out = append(out,
			Statement{"organizations", "upsert", orgs.upsert},
			Statement{"organizations", "lookup", orgs.lookup},
			Statement{"organizations", "remove", orgs.remove},
			Statement{"organizations", "row left", orgs.rowLeft},
			Statement{"organizations", "unseen", orgs.unseen},
			Statement{"memberships", "upsert", memberships.upsert},
			Statement{"memberships", "drop older", memberships.dropOlder},
			Statement{"memberships", "remove", memberships.remove},
			Statement{"memberships", "row left", memberships.rowLeft},
			Statement{"memberships", "members", memberships.members},
			Statement{"memberships", "unseen", memberships.unseen})
	}
	for i := range out {
		out[i].SQL = strings.TrimSpace(out[i].SQL)
	}
	return out, nil
}
