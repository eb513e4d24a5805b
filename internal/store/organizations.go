package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/clerksync/clerksync/internal/clerkevent"
)

// OrganizationResult is what a write of an organization or a membership did.
type OrganizationResult struct {
	Outcome Outcome
	// Refused names why a membership was not written although it is not
	// stale: "membership", "organization" or "user" was deleted.
	Refused string
	// RowKept is set when the write met a tombstone beside a row that a
	// product's foreign key keeps: the database's message, redacted. Kept
	// names whose row it is: "membership", "organization" or "user".
	RowKept, Kept string
}

// upsertOrganizationSQL writes an organization under last-writer-wins on
// Clerk's updated_at (ties by content hash) and refuses a tombstoned ID.
const upsertOrganizationSQL = `
with tombstone as (
    select 1 from clerksync.organization_tombstones where clerk_id = $1
), written as (
    insert into organizations (clerk_id, name, slug, image_url, clerk_created_at, clerk_updated_at, content_hash)
    select $1, $2, $3, $4, $5, $6, $7
    where not exists (select 1 from tombstone)
    on conflict (clerk_id) do update set
        name             = excluded.name,
        slug             = excluded.slug,
        image_url        = excluded.image_url,
        clerk_created_at = coalesce(excluded.clerk_created_at, organizations.clerk_created_at),
        clerk_updated_at = excluded.clerk_updated_at,
        content_hash     = excluded.content_hash,
        updated_at       = now()
    where (organizations.clerk_updated_at, organizations.content_hash) < (excluded.clerk_updated_at, excluded.content_hash)
    returning xmax = 0 as inserted
)
select (select inserted from written), exists (select 1 from tombstone),
       exists (select 1 from tombstone) and exists (select 1 from organizations where clerk_id = $1)`

// UpsertOrganization writes the organization's row if o is newer than what
// it holds and the organization was never deleted.
func (s *Store) UpsertOrganization(ctx context.Context, o clerkevent.Organization) (OrganizationResult, error) {
	var res OrganizationResult
	err := s.inLockedTx(ctx, []string{o.ClerkID}, func(tx pgx.Tx) error {
		var (
			err     error
			rowLeft bool
		)
		res.Outcome, rowLeft, err = s.upsertOrganization(ctx, tx, o)
		if err != nil || !rowLeft {
			return err
		}
		res.Kept = organizationEntity.name
		res.RowKept, err = finishDeletion(ctx, tx, organizationEntity, s.sql(organizationEntity.removeSQL()), o.ClerkID)
		return err
	})
	if err != nil {
		return OrganizationResult{}, fmt.Errorf("upsert organization %s: %w", o.ClerkID, err)
	}
	return res, nil
}

// upsertOrganization writes o and reports, for a tombstoned organization,
// whether its row is still there (its removal never ran).
func (s *Store) upsertOrganization(ctx context.Context, tx pgx.Tx, o clerkevent.Organization) (outcome Outcome, rowLeft bool, err error) {
	var (
		inserted   *bool
		tombstoned bool
	)
	if err := tx.QueryRow(ctx, s.sql(upsertOrganizationSQL), o.ClerkID, o.Name, o.Slug, o.ImageURL, optionalTime(o.ClerkCreatedAt),
		o.ClerkUpdatedAt, o.ContentHash()).Scan(&inserted, &tombstoned, &rowLeft); err != nil {
		return "", false, err
	}
	switch {
	case tombstoned:
		return Tombstoned, rowLeft, nil
	case inserted == nil:
		return Stale, false, nil
	case *inserted:
		return Inserted, false, nil
	}
	return Updated, false, nil
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
	return s.removeRow(ctx, organizationEntity, s.sql(organizationEntity.removeSQL()), clerkID, []string{clerkID})
}

// membershipRefusalSQL says which deletion, if any, refuses a membership:
// its own, its organization's or its user's.
const membershipRefusalSQL = `
select case
    when exists (select 1 from clerksync.organization_membership_tombstones where clerk_id = $1) then 'membership'
    when exists (select 1 from clerksync.organization_tombstones where clerk_id = $2) then 'organization'
    when exists (select 1 from clerksync.user_tombstones where clerk_id = $3) then 'user'
    else '' end`

// upsertMembershipSQL writes the membership under last-writer-wins on
// Clerk's updated_at (ties by role), and nothing while a newer membership
// under another ID (by updated_at, ties by the greater ID) holds the same
// user in the same organization.
const upsertMembershipSQL = `
with org as (
    select id from organizations where clerk_id = $2
), member as (
    select id from users where clerk_id = $3
), written as (
    insert into organization_memberships (clerk_id, organization_id, user_id, role, clerk_created_at, clerk_updated_at)
    select $1, org.id, member.id, $4, $5, $6 from org, member
    where not exists (
        select 1 from organization_memberships m
        where m.organization_id = org.id and m.user_id = member.id
          and (m.clerk_updated_at, m.clerk_id collate "C") > ($6::timestamptz, $1::text collate "C"))
    on conflict (clerk_id) do update set
        role             = excluded.role,
        clerk_created_at = coalesce(excluded.clerk_created_at, organization_memberships.clerk_created_at),
        clerk_updated_at = excluded.clerk_updated_at,
        updated_at       = now()
    where (organization_memberships.clerk_updated_at, organization_memberships.role collate "C")
        < (excluded.clerk_updated_at, excluded.role collate "C")
    returning xmax = 0 as inserted
)
select (select inserted from written)`

// dropOlderMembershipSQL removes the membership of the same user in the
// same organization under another, older membership ID: the user left and
// rejoined, and the pair keeps one row, the newer.
const dropOlderMembershipSQL = `
delete from organization_memberships m
using organizations o, users u
where o.clerk_id = $2 and u.clerk_id = $3 and m.organization_id = o.id and m.user_id = u.id
  and (m.clerk_updated_at, m.clerk_id collate "C") < ($4::timestamptz, $1::text collate "C")`

// UpsertMembership writes a membership: the organization it embeds (under
// the organization's own last-writer-wins), a minimal row for a member
// clerksync does not know yet, and the membership itself. Nothing is written
// for a membership whose own, organization's or user's deletion is
// recorded, whatever order the events came in.
func (s *Store) UpsertMembership(ctx context.Context, m clerkevent.Membership) (OrganizationResult, error) {
	var res OrganizationResult
	err := s.inLockedTx(ctx, []string{m.Organization.ClerkID, m.UserID}, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, s.sql(membershipRefusalSQL), m.ClerkID, m.Organization.ClerkID, m.UserID).Scan(&res.Refused); err != nil {
			return fmt.Errorf("check deletions: %w", err)
		}
		if res.Refused != "" {
			res.Outcome = Tombstoned
			return s.finishDeletions(ctx, tx, m, &res)
		}
		if _, _, err := s.upsertOrganization(ctx, tx, m.Organization); err != nil {
			return fmt.Errorf("organization: %w", err)
		}
		// A member clerksync has no row for gets the row an ensure writes
		// (a minimal row), which the user's own data wins over.
		if _, err := s.upsertUser(ctx, tx, clerkevent.User{ClerkID: m.UserID, ClerkUpdatedAt: MinimalVersion}, 0); err != nil {
			return fmt.Errorf("member: %w", err)
		}
		held, err := savepoint(ctx, tx, func(sp pgx.Tx) error {
			_, err := sp.Exec(ctx, dropOlderMembershipSQL, m.ClerkID, m.Organization.ClerkID, m.UserID, m.ClerkUpdatedAt)
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
		if err := tx.QueryRow(ctx, upsertMembershipSQL, m.ClerkID, m.Organization.ClerkID, m.UserID, m.Role,
			optionalTime(m.ClerkCreatedAt), m.ClerkUpdatedAt).Scan(&inserted); err != nil {
			return err
		}
		switch {
		case inserted == nil:
			res.Outcome = Stale
		case *inserted:
			res.Outcome = Inserted
		default:
			res.Outcome = Updated
		}
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
	var left []string
	if err := tx.QueryRow(ctx, s.sql(leftRowsSQL), m.ClerkID, m.Organization.ClerkID, m.UserID).Scan(&left); err != nil {
		return fmt.Errorf("rows of deletions: %w", err)
	}
	for _, d := range []struct {
		e  entity
		id string
	}{{membershipEntity, m.ClerkID}, {organizationEntity, m.Organization.ClerkID}, {userEntity, m.UserID}} {
		if !slices.Contains(left, d.e.name) {
			continue
		}
		kept, err := finishDeletion(ctx, tx, d.e, s.sql(d.e.removeSQL()), d.id)
		if err != nil {
			return err
		}
		if kept != "" && res.RowKept == "" {
			res.RowKept, res.Kept = kept, d.e.name
		}
	}
	return nil
}

// leftRowsSQL names the tombstoned objects of a membership ($1), its
// organization ($2) and its user ($3) whose rows are still there.
const leftRowsSQL = `
select array_remove(array[
    case when exists (select 1 from clerksync.organization_membership_tombstones t join organization_memberships r using (clerk_id) where clerk_id = $1)
         then 'membership' end,
    case when exists (select 1 from clerksync.organization_tombstones t join organizations r using (clerk_id) where clerk_id = $2)
         then 'organization' end,
    case when exists (select 1 from clerksync.user_tombstones t join users r using (clerk_id) where clerk_id = $3)
         then 'user' end], null)`

// DeleteMembership tombstones the membership in a transaction of its own,
// then removes its row (which a rejoin under a new membership ID may
// already have replaced). A removal a product's foreign key refuses comes
// back as an error IsRefusal recognizes, the tombstone committed.
func (s *Store) DeleteMembership(ctx context.Context, m clerkevent.Membership, deletedAt time.Time) (bool, error) {
	if err := s.tombstone(ctx, membershipEntity, m.ClerkID, []string{m.Organization.ClerkID, m.UserID}, deletedAt); err != nil {
		return false, err
	}
	return s.RemoveMembershipRow(ctx, m)
}

// RemoveMembershipRow deletes a tombstoned membership's row.
func (s *Store) RemoveMembershipRow(ctx context.Context, m clerkevent.Membership) (bool, error) {
	return s.removeRow(ctx, membershipEntity, s.sql(membershipEntity.removeSQL()), m.ClerkID, []string{m.Organization.ClerkID, m.UserID})
}

// OrganizationRow is an organizations row, for starter status.
type OrganizationRow struct {
	ID             string     `json:"id"`
	ClerkID        string     `json:"clerk_id"`
	Name           *string    `json:"name"`
	Slug           *string    `json:"slug"`
	ImageURL       *string    `json:"image_url"`
	ClerkCreatedAt *time.Time `json:"clerk_created_at"`
	ClerkUpdatedAt time.Time  `json:"clerk_updated_at"`
	CreatedAt      time.Time  `json:"created_at"`
	UpdatedAt      time.Time  `json:"updated_at"`
}

// Member is one row of an organization's memberships, with the member's
// Clerk ID.
type Member struct {
	ClerkID        string    `json:"clerk_id"`
	UserClerkID    string    `json:"user_clerk_id"`
	Role           string    `json:"role"`
	ClerkUpdatedAt time.Time `json:"clerk_updated_at"`
}

// OrganizationByClerkID returns the organization's row and its members, or
// ErrDeleted for a tombstoned organization and ErrNotFound for one
// clerksync has never seen.
func (s *Store) OrganizationByClerkID(ctx context.Context, clerkID string) (OrganizationRow, []Member, error) {
	var deleted bool
	if err := s.pool.QueryRow(ctx, s.sql(`select exists (select 1 from clerksync.organization_tombstones where clerk_id = $1)`), clerkID).Scan(&deleted); err != nil {
		return OrganizationRow{}, nil, fmt.Errorf("look up organization %s: %w", clerkID, err)
	}
	if deleted {
		return OrganizationRow{}, nil, ErrDeleted
	}
	rows, err := s.pool.Query(ctx, `
select id, clerk_id, name, slug, image_url, clerk_created_at, clerk_updated_at, created_at, updated_at
from organizations where clerk_id = $1`, clerkID)
	if err != nil {
		return OrganizationRow{}, nil, fmt.Errorf("look up organization %s: %w", clerkID, err)
	}
	org, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByPos[OrganizationRow])
	if err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return OrganizationRow{}, nil, ErrNotFound
		}
		return OrganizationRow{}, nil, fmt.Errorf("look up organization %s: %w", clerkID, err)
	}
	rows, err = s.pool.Query(ctx, `
select m.clerk_id, u.clerk_id, m.role, m.clerk_updated_at
from organization_memberships m join users u on u.id = m.user_id
where m.organization_id = $1 order by u.clerk_id`, org.ID)
	if err != nil {
		return OrganizationRow{}, nil, fmt.Errorf("members of organization %s: %w", clerkID, err)
	}
	members, err := pgx.CollectRows(rows, pgx.RowToStructByPos[Member])
	if err != nil {
		return OrganizationRow{}, nil, fmt.Errorf("members of organization %s: %w", clerkID, err)
	}
	return org, members, nil
}

func optionalTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}
