package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/clerksync/clerksync/ensure/contract"
	"github.com/clerksync/clerksync/internal/clerkevent"
	"github.com/clerksync/clerksync/internal/store/sqlgen"
)

// OrganizationResult is what a write of an organization or a membership did.
type OrganizationResult struct {
	Outcome Outcome
	// Refused names why a membership was not written although it is not
	// stale: the membership, its organization or its user was deleted.
	Refused contract.Entity
	// RowKept is set when the write met a tombstone beside a row that a
	// product's foreign key keeps: the database's message, redacted.
	RowKept string
	// Kept names whose row that is: the membership's, the
	// organization's or the user's.
	Kept contract.Entity
}

// UpsertOrganization writes the organization's row if o is newer than what
// it holds and the organization was never deleted.
func (s *Store) UpsertOrganization(ctx context.Context, o clerkevent.Organization) (OrganizationResult, error) {
	o = s.mapping.TrimOrganization(o)
	orgs, _, err := s.orgTables(ctx)
	if err != nil {
		return OrganizationResult{}, fmt.Errorf("upsert organization %s: %w", o.ClerkID, err)
	}
	var res OrganizationResult
	err = s.inLockedTx(ctx, []string{o.ClerkID}, func(tx pgx.Tx) error {
		var (
			err     error
			rowLeft bool
		)
		res.Outcome, rowLeft, err = s.upsertOrganization(ctx, tx, orgs, o)
		if err != nil || !rowLeft {
			return err
		}
		res.Kept = organizationEntity.name
		res.RowKept, err = finishDeletion(ctx, tx, organizationEntity, orgs.Remove, o.ClerkID)
		return err
	})
	if err != nil {
		return OrganizationResult{}, fmt.Errorf("upsert organization %s: %w", o.ClerkID, err)
	}
	return res, nil
}

// upsertOrganization writes o and reports, for a tombstoned organization,
// whether its row is still there (its removal never ran).
func (s *Store) upsertOrganization(ctx context.Context, tx pgx.Tx, orgs *sqlgen.Organizations, o clerkevent.Organization) (outcome Outcome, rowLeft bool, err error) {
	var (
		inserted   *bool
		tombstoned bool
	)
	if err := tx.QueryRow(ctx, orgs.Upsert, sqlgen.Args(sqlgen.OrganizationRelation, o)).Scan(&inserted, &tombstoned, &rowLeft); err != nil {
		return "", false, err
	}
	if tombstoned {
		return Tombstoned, rowLeft, nil
	}
	return written(inserted), false, nil
}

// TombstoneOrganization records that Clerk deleted the organization, in a
// transaction of its own: once it commits, no event writes the organization
// or a membership of it again, whatever happens to the row's removal.
func (s *Store) TombstoneOrganization(ctx context.Context, clerkID string, deletedAt time.Time) error {
	return s.tombstone(ctx, organizationEntity, clerkID, []string{clerkID}, deletedAt)
}

// RemoveOrganizationRow deletes a tombstoned organization's row; its
// memberships (and a product's rows that cascade) go with it. It reports
// whether a row was removed. A product table that references
// organizations(id) without ON DELETE CASCADE makes it fail with a foreign
// key violation (see IsRefusal) until the product fixes its schema.
func (s *Store) RemoveOrganizationRow(ctx context.Context, clerkID string) (bool, error) {
	orgs, _, err := s.orgTables(ctx)
	if err != nil {
		return false, fmt.Errorf("remove row of deleted organization %s: %w", clerkID, err)
	}
	return s.removeRow(ctx, organizationEntity, orgs.Remove, clerkID, []string{clerkID})
}

// UpsertMembership writes a membership: the organization it embeds (under
// the organization's own last-writer-wins), a minimal row for a member
// clerksync does not know yet, and the membership itself. Nothing is written
// for a membership whose own, organization's or user's deletion is
// recorded, whatever order the events came in.
func (s *Store) UpsertMembership(ctx context.Context, m clerkevent.Membership) (OrganizationResult, error) {
	m = s.mapping.TrimMembership(m)
	orgs, memberships, err := s.orgTables(ctx)
	if err != nil {
		return OrganizationResult{}, fmt.Errorf("upsert membership %s: %w", m.ClerkID, err)
	}
	var res OrganizationResult
	err = s.inLockedTx(ctx, []string{m.Organization.ClerkID, m.UserID}, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, s.bk.membershipRefusal, m.ClerkID, m.Organization.ClerkID, m.UserID).Scan(&res.Refused); err != nil {
			return fmt.Errorf("check deletions: %w", err)
		}
		if res.Refused != "" {
			res.Outcome = Tombstoned
			return s.finishDeletions(ctx, tx, m, &res)
		}
		if _, _, err := s.upsertOrganization(ctx, tx, orgs, m.Organization); err != nil {
			return fmt.Errorf("organization: %w", err)
		}
		// A member clerksync has no row for gets the row an ensure writes
		// (a minimal row), which the user's own data wins over.
		if _, err := s.upsertUser(ctx, tx, clerkevent.User{ClerkID: m.UserID, ClerkUpdatedAt: clerkevent.MinimalVersion}, 0); err != nil {
			return fmt.Errorf("member: %w", err)
		}
		held, err := savepoint(ctx, tx, func(sp pgx.Tx) error {
			_, err := sp.Exec(ctx, memberships.DropOlder, m.ClerkID, m.Organization.ClerkID, m.UserID, m.ClerkUpdatedAt)
			return err
		})
		if err != nil {
			return fmt.Errorf("older membership: %w", err)
		}
		if held != "" {
			// A rejoin waits for the row of the membership it replaces.
			res.Outcome, res.RowKept, res.Kept = Held, "older membership: "+held, membershipEntity.name
			return nil
		}
		var inserted *bool
		if err := tx.QueryRow(ctx, memberships.Upsert, sqlgen.Args(sqlgen.MembershipRelation, m)).Scan(&inserted); err != nil {
			return err
		}
		res.Outcome = written(inserted)
		return nil
	})
	if err != nil {
		return OrganizationResult{}, fmt.Errorf("upsert membership %s: %w", m.ClerkID, err)
	}
	return res, nil
}

// finishDeletions removes, for a membership write that met a tombstone,
// every row whose deletion is recorded but that is still there (the
// membership's, its organization's, its user's), and reports the first a
// product's foreign key keeps.
func (s *Store) finishDeletions(ctx context.Context, tx pgx.Tx, m clerkevent.Membership, res *OrganizationResult) error {
	users, _, err := s.tables(ctx)
	if err != nil {
		return err
	}
	orgs, memberships, err := s.orgTables(ctx)
	if err != nil {
		return err
	}
	for _, d := range []struct {
		e               entity
		id              string
		rowLeft, remove string
	}{
		{membershipEntity, m.ClerkID, memberships.RowLeft, memberships.Remove},
		{organizationEntity, m.Organization.ClerkID, orgs.RowLeft, orgs.Remove},
		{userEntity, m.UserID, users.RowLeft, users.Remove},
	} {
		var left bool
		if err := tx.QueryRow(ctx, `select (`+s.bk.of[d.e.tombstones].deleted+`) and (`+d.rowLeft+`)`,
			d.id).Scan(&left); err != nil {
			return fmt.Errorf("row of deleted %s %s: %w", d.e.name, d.id, err)
		}
		if !left {
			continue
		}
		kept, err := finishDeletion(ctx, tx, d.e, d.remove, d.id)
		if err != nil {
			return err
		}
		if kept != "" && res.RowKept == "" {
			res.RowKept, res.Kept = kept, d.e.name
		}
	}
	return nil
}

// DeleteMembership tombstones the membership in a transaction of its own,
// then removes its row (which a rejoin under a new membership ID may
// already have replaced). A removal a product's foreign key refuses comes
// back as an error IsRefusal recognizes, the tombstone committed.
func (s *Store) DeleteMembership(ctx context.Context, m clerkevent.Membership, deletedAt time.Time) (bool, error) {
	if err := s.tombstone(ctx, membershipEntity, m.ClerkID, membershipLocks(m), deletedAt); err != nil {
		return false, err
	}
	return s.RemoveMembershipRow(ctx, m)
}

// RemoveMembershipRow deletes a tombstoned membership's row.
func (s *Store) RemoveMembershipRow(ctx context.Context, m clerkevent.Membership) (bool, error) {
	_, memberships, err := s.orgTables(ctx)
	if err != nil {
		return false, fmt.Errorf("remove row of deleted membership %s: %w", m.ClerkID, err)
	}
	return s.removeRow(ctx, membershipEntity, memberships.Remove, m.ClerkID, membershipLocks(m))
}

// membershipLocks are the locks a membership's deletion takes: its
// organization's and its member's, as its writes take them, or the
// organization's alone for a deletion that does not name the member
// (which still serializes it with every write of the organization's
// memberships).
func membershipLocks(m clerkevent.Membership) []string {
	if m.UserID == "" {
		return []string{m.Organization.ClerkID}
	}
	return []string{m.Organization.ClerkID, m.UserID}
}

// Member is one of an organization's memberships, with the member's Clerk
// ID.
type Member struct {
	ClerkID        string    `json:"clerk_id"`
	UserClerkID    string    `json:"user_clerk_id"`
	Role           string    `json:"role"`
	ClerkUpdatedAt time.Time `json:"clerk_updated_at"`
}

// OrganizationByClerkID returns the organization's row (as JSON, by the
// table's column names, plus clerk_id) and its members, or ErrDeleted for a
// tombstoned organization and ErrNotFound for one clerksync has never seen.
func (s *Store) OrganizationByClerkID(ctx context.Context, clerkID string) (json.RawMessage, []Member, error) {
	orgs, memberships, err := s.orgTables(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("look up organization %s: %w", clerkID, err)
	}
	var deleted bool
	if err := s.db.QueryRow(ctx, s.bk.of[organizationEntity.tombstones].deleted, clerkID).Scan(&deleted); err != nil {
		return nil, nil, fmt.Errorf("look up organization %s: %w", clerkID, err)
	}
	if deleted {
		return nil, nil, ErrDeleted
	}
	var (
		id  string
		row json.RawMessage
	)
	err = s.db.QueryRow(ctx, orgs.Lookup, clerkID).Scan(&id, &row)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return nil, nil, fmt.Errorf("organization %s: %w", clerkID, ErrNotFound)
	case err != nil:
		return nil, nil, fmt.Errorf("look up organization %s: %w", clerkID, err)
	}
	rows, err := s.db.Query(ctx, memberships.Members, clerkID)
	if err != nil {
		return nil, nil, fmt.Errorf("members of organization %s: %w", clerkID, err)
	}
	members, err := pgx.CollectRows(rows, pgx.RowToStructByPos[Member])
	if err != nil {
		return nil, nil, fmt.Errorf("members of organization %s: %w", clerkID, err)
	}
	return row, members, nil
}

func optionalTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}
