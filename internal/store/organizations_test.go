package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/clerksync/clerksync/ensure/contract"
	"github.com/clerksync/clerksync/internal/clerkevent"
	"github.com/clerksync/clerksync/internal/store"
	"github.com/clerksync/clerksync/internal/testsupport/testenv"
)

// TestDeleteMembership_WithoutItsMember: a membership deletion that does
// not name the member (Clerk's document leaves public_user_data optional)
// removes the membership's row by its own ID and tombstones it, so a
// later copy of the membership is refused.
func TestDeleteMembership_WithoutItsMember(t *testing.T) {
	t.Parallel()
	st, db := openExample(t, testenv.SnakeCase, "UTC")
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Millisecond)
	name := "Acme"
	org := clerkevent.Organization{ClerkID: "org_nomember", Name: &name, ClerkCreatedAt: now, ClerkUpdatedAt: now}
	m := clerkevent.Membership{ClerkID: "orgmem_nomember", UserID: "user_nomember", Role: "org:member", Organization: org,
		ClerkCreatedAt: now, ClerkUpdatedAt: now}
	_, err := st.UpsertMembership(ctx, m)
	require.NoError(t, err)
	count := func() (n int) {
		require.NoError(t, db.QueryRow(ctx, `select count(*) from team_members where clerk_membership_id = 'orgmem_nomember'`).Scan(&n))
		return n
	}
	require.Equal(t, 1, count())

	deleted := m
	deleted.UserID = ""
	removed, err := st.DeleteMembership(ctx, deleted, now.Add(time.Second))
	require.NoError(t, err)
	require.True(t, removed)
	require.Zero(t, count())

	_, err = st.UpsertMembership(ctx, m)
	require.NoError(t, err)
	require.Zero(t, count(), "the tombstone refuses a later copy")
}

func org(id string, version int, name string) clerkevent.Organization {
	return clerkevent.Organization{ClerkID: id, Name: &name, ClerkCreatedAt: base, ClerkUpdatedAt: base.Add(time.Duration(version) * time.Millisecond)}
}

func membership(id, orgID, userID string, version int, role string) clerkevent.Membership {
	return clerkevent.Membership{ClerkID: id, UserID: userID, Role: role, Organization: org(orgID, 1, "Acme"),
		ClerkCreatedAt: base, ClerkUpdatedAt: base.Add(time.Duration(version) * time.Millisecond)}
}

// An organization's row holds the newest version Clerk sent, whatever
// order its events came in.
func TestUpsertOrganization_LastWriterWins(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	for _, step := range []struct {
		version int
		name    string
		want    store.Outcome
	}{{2, "Two", store.Inserted}, {1, "One", store.Stale}, {2, "Two", store.Stale}, {3, "Three", store.Updated}} {
		res, err := b.st.UpsertOrganization(ctx, org("org_lww", step.version, step.name))
		require.NoError(t, err)
		require.Equal(t, step.want, res.Outcome, "version %d", step.version)
	}
	var name string
	require.NoError(t, b.conn.QueryRow(ctx, `select name from organizations where clerk_id = 'org_lww'`).Scan(&name))
	require.Equal(t, "Three", name)
}

// A membership is written with its organization and a minimal row for a
// member clerksync has not seen, which the member's own data then wins
// over; a newer copy updates it, an older one changes nothing.
func TestUpsertMembership_WritesItsOrganizationAndAMinimalMember(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	res, err := b.st.UpsertMembership(ctx, membership("orgmem_1", "org_m", "user_m", 1, "org:member"))
	require.NoError(t, err)
	require.Equal(t, store.Inserted, res.Outcome)
	member, err := b.st.UserByClerkID(ctx, "user_m")
	require.NoError(t, err)
	require.True(t, member.Minimal(), "the member's row waits for the member's own data")
	require.Equal(t, 1, b.count(t, `select count(*) from organizations where clerk_id = 'org_m'`))

	res, err = b.st.UpsertMembership(ctx, membership("orgmem_1", "org_m", "user_m", 3, "org:admin"))
	require.NoError(t, err)
	require.Equal(t, store.Updated, res.Outcome)
	res, err = b.st.UpsertMembership(ctx, membership("orgmem_1", "org_m", "user_m", 2, "org:member"))
	require.NoError(t, err)
	require.Equal(t, store.Stale, res.Outcome)
	require.Equal(t, 1, b.count(t, `select count(*) from organization_memberships m join users u on u.id = m.user_id
		where m.clerk_id = 'orgmem_1' and m.role = 'org:admin' and u.clerk_id = 'user_m'`))

	_, err = b.st.UpsertUser(ctx, user("user_m", 5, "Mia"), 0)
	require.NoError(t, err)
	member, err = b.st.UserByClerkID(ctx, "user_m")
	require.NoError(t, err)
	require.False(t, member.Minimal())
}

// A membership whose own, organization's or user's deletion is recorded
// is not written, and says which deletion refused it, the membership's
// own first: each arrives before or after the others in any order.
func TestUpsertMembership_RefusedByARecordedDeletion(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	require.NoError(t, b.st.TombstoneUser(ctx, "user_gone", base))
	require.NoError(t, b.st.TombstoneOrganization(ctx, "org_gone", base))
	_, err := b.st.DeleteMembership(ctx, membership("orgmem_gone", "org_gone", "user_gone", 1, "org:member"), base)
	require.NoError(t, err)
	for _, c := range []struct {
		m    clerkevent.Membership
		want contract.Entity
	}{
		{membership("orgmem_gone", "org_gone", "user_gone", 2, "org:member"), contract.Membership},
		{membership("orgmem_a", "org_gone", "user_gone", 2, "org:member"), contract.Organization},
		{membership("orgmem_b", "org_here", "user_gone", 2, "org:member"), contract.User},
	} {
		res, err := b.st.UpsertMembership(ctx, c.m)
		require.NoError(t, err)
		require.Equal(t, store.Tombstoned, res.Outcome, c.m.ClerkID)
		require.Equal(t, c.want, res.Refused, c.m.ClerkID)
	}
	require.Zero(t, b.count(t, `select count(*) from organization_memberships`))
	require.Zero(t, b.count(t, `select count(*) from users where clerk_id = 'user_gone'`), "no minimal row for a deleted member")
}

// A user who leaves an organization and joins it again gets a new
// membership: its write removes the older one's row first; while an app's
// foreign key keeps that row, the new one is held and says why.
func TestUpsertMembership_ARejoinReplacesTheOlderMembership(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	_, err := b.st.UpsertMembership(ctx, membership("orgmem_old", "org_r", "user_r", 1, "org:member"))
	require.NoError(t, err)
	_, err = b.conn.Exec(ctx, `create table seat (membership_id uuid references organization_memberships (id));
		insert into seat select id from organization_memberships where clerk_id = 'orgmem_old'`)
	require.NoError(t, err)

	res, err := b.st.UpsertMembership(ctx, membership("orgmem_new", "org_r", "user_r", 2, "org:admin"))
	require.NoError(t, err)
	require.Equal(t, store.Held, res.Outcome)
	require.Equal(t, contract.Membership, res.Kept)
	require.Contains(t, res.RowKept, "older membership")
	require.Zero(t, b.count(t, `select count(*) from organization_memberships where clerk_id = 'orgmem_new'`))

	_, err = b.conn.Exec(ctx, `delete from seat`)
	require.NoError(t, err)
	res, err = b.st.UpsertMembership(ctx, membership("orgmem_new", "org_r", "user_r", 2, "org:admin"))
	require.NoError(t, err)
	require.Equal(t, store.Inserted, res.Outcome)
	require.Equal(t, 1, b.count(t, `select count(*) from organization_memberships`))
	require.Equal(t, 1, b.count(t, `select count(*) from organization_memberships where clerk_id = 'orgmem_new'`))
}

// A deletion whose tombstone committed but whose row's removal never ran
// (a worker killed between the two) is finished by the next write that
// meets it.
func TestUpsertOrganization_FinishesAnInterruptedDeletion(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	_, err := b.st.UpsertOrganization(ctx, org("org_half", 1, "Half"))
	require.NoError(t, err)
	require.NoError(t, b.st.TombstoneOrganization(ctx, "org_half", base.Add(time.Second)))
	require.Equal(t, 1, b.count(t, `select count(*) from organizations where clerk_id = 'org_half'`), "the removal has not run")

	res, err := b.st.UpsertOrganization(ctx, org("org_half", 2, "Late"))
	require.NoError(t, err)
	require.Equal(t, store.Tombstoned, res.Outcome)
	require.Empty(t, res.RowKept)
	require.Zero(t, b.count(t, `select count(*) from organizations where clerk_id = 'org_half'`))
}
