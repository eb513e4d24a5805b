package systemtest

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/clerksync/clerksync/ensure/contract"
	"github.com/clerksync/clerksync/internal/clerkwebhook"
	"github.com/clerksync/clerksync/workflows"
)

// TestDeletion_ATombstoneBesideARowIsFinished: a worker killed between a
// deletion's tombstone (committed) and its row's removal, its workflow task
// then replayed from an earlier write that now meets the tombstone, leaves
// the database as this test sets it up: a tombstone with the row beside it.
// The next write that meets the tombstone (a user's update, an ensure, an
// organization's rename, a membership's change) removes the row, so the
// product never shows a deleted person's data.
func TestDeletion_ATombstoneBesideARowIsFinished(t *testing.T) {
	t.Parallel()
	s := startSystem(t)
	ctx := context.Background()
	now := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	org := clerkwebhook.OrganizationFields{ClerkID: "org_leftover", Name: "Leftover", Slug: "leftover", CreatedAt: now, UpdatedAt: now}
	kept := clerkwebhook.OrganizationFields{ClerkID: "org_kept", Name: "Kept", Slug: "kept", CreatedAt: now, UpdatedAt: now}
	seat := clerkwebhook.MembershipFields{ClerkID: "orgmem_leftover", UserID: "user_leftover_member", Role: "org:member",
		Organization: kept, CreatedAt: now, UpdatedAt: now}
	for _, u := range []string{"user_leftover", "user_leftover_ensure"} {
		body, err := clerkwebhook.UserEvent("user.created", clerkwebhook.UserFields{ClerkID: u, Email: u + "@example.com", FirstName: "Leftover",
			CreatedAt: now, UpdatedAt: now})
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, s.post(t, "msg_create_"+u, body))
	}
	for _, o := range []clerkwebhook.OrganizationFields{org, kept} {
		body, err := clerkwebhook.OrganizationEvent("organization.created", o)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, s.post(t, "msg_create_"+o.ClerkID, body))
	}
	body, err := clerkwebhook.MembershipEvent("organizationMembership.created", seat)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, s.post(t, "msg_create_seat", body))
	require.Eventually(t, func() bool {
		return s.count(t, "select count(*) from users where clerk_id like 'user_leftover%'") == 3 &&
			s.count(t, "select count(*) from organizations") == 2 && s.count(t, "select count(*) from organization_memberships") == 1
	}, time.Minute, 50*time.Millisecond)

	// What the killed worker left: every tombstone committed, no row removed.
	_, err = s.db.Exec(ctx, `
insert into clerksync.user_tombstones (clerk_id) values ('user_leftover'), ('user_leftover_ensure');
insert into clerksync.organization_tombstones (clerk_id) values ('org_leftover');
insert into clerksync.organization_membership_tombstones (clerk_id) values ('orgmem_leftover')`)
	require.NoError(t, err)

	body, err = clerkwebhook.UserEvent("user.updated", clerkwebhook.UserFields{ClerkID: "user_leftover", Email: "user_leftover@example.com",
		FirstName: "Leftover", CreatedAt: now, UpdatedAt: now.Add(time.Minute)})
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, s.post(t, "msg_update_user_leftover", body))
	status, _ := s.ensureCall(t, s.token(t, "user_leftover_ensure"))
	require.Equal(t, http.StatusGone, status)
	org.Name, org.UpdatedAt = "Renamed", now.Add(time.Minute)
	body, err = clerkwebhook.OrganizationEvent("organization.updated", org)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, s.post(t, "msg_rename_leftover", body))
	seat.Role, seat.UpdatedAt = "org:admin", now.Add(time.Minute)
	body, err = clerkwebhook.MembershipEvent("organizationMembership.updated", seat)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, s.post(t, "msg_promote_seat", body))

	require.Eventually(t, func() bool {
		return s.count(t, "select count(*) from users u join clerksync.user_tombstones t using (clerk_id)") == 0 &&
			s.count(t, "select count(*) from organizations o join clerksync.organization_tombstones t using (clerk_id)") == 0 &&
			s.count(t, "select count(*) from organization_memberships m join clerksync.organization_membership_tombstones t using (clerk_id)") == 0
	}, time.Minute, 100*time.Millisecond, "every row beside a tombstone is removed")
	require.Equal(t, 1, s.count(t, "select count(*) from users where clerk_id = 'user_leftover_member'"), "the live member stays")
	require.Equal(t, 1, s.count(t, "select count(*) from organizations where clerk_id = 'org_kept'"), "the live organization stays")
	require.Eventually(t, func() bool {
		st, err := s.userState("user_leftover")
		return err == nil && st.Deleted
	}, 30*time.Second, 100*time.Millisecond)
}

// TestOrganizations_AHeldMembershipDoesNotStallItsOrganization: a product
// table holds a deleted membership's row (no ON DELETE CASCADE). While its
// removal retries, the organization's other events keep applying (a rename,
// another member's promotion), and the removed member's rejoin under a new
// membership ID, which must replace the held row, is shown failed with the
// database's message instead of retrying silently as pending. Once the
// product drops the constraint, the old row goes and the rejoin lands.
func TestOrganizations_AHeldMembershipDoesNotStallItsOrganization(t *testing.T) {
	t.Parallel()
	s := startSystem(t)
	ctx := context.Background()
	now := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	org := clerkwebhook.OrganizationFields{ClerkID: "org_held", Name: "Held", Slug: "held", CreatedAt: now, UpdatedAt: now}
	leaver := clerkwebhook.MembershipFields{ClerkID: "orgmem_leaver", UserID: "user_leaver", Role: "org:member", Organization: org,
		CreatedAt: now, UpdatedAt: now}
	stayer := clerkwebhook.MembershipFields{ClerkID: "orgmem_stayer", UserID: "user_stayer", Role: "org:member", Organization: org,
		CreatedAt: now, UpdatedAt: now}
	send := func(id, typ string, m clerkwebhook.MembershipFields) {
		t.Helper()
		body, err := clerkwebhook.MembershipEvent(typ, m)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, s.post(t, id, body))
	}
	send("msg_held_leaver", "organizationMembership.created", leaver)
	send("msg_held_stayer", "organizationMembership.created", stayer)
	require.Eventually(t, func() bool { return s.count(t, "select count(*) from organization_memberships") == 2 }, time.Minute, 50*time.Millisecond)
	_, err := s.db.Exec(ctx, `
create table seats_held (id serial primary key, membership_id uuid references organization_memberships(id));
insert into seats_held (membership_id) select id from organization_memberships where clerk_id = 'orgmem_leaver'`)
	require.NoError(t, err)

	send("msg_held_leave", "organizationMembership.deleted", leaver)
	org.Name, org.UpdatedAt = "Held renamed", now.Add(time.Minute)
	body, err := clerkwebhook.OrganizationEvent("organization.updated", org)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, s.post(t, "msg_held_rename", body))
	stayer.Role, stayer.UpdatedAt, stayer.Organization = "org:admin", now.Add(time.Minute), org
	send("msg_held_promote", "organizationMembership.updated", stayer)
	require.Eventually(t, func() bool {
		return s.queryString(t, "select name from organizations where clerk_id = 'org_held'") == "Held renamed" &&
			s.queryString(t, "select role from organization_memberships where clerk_id = 'orgmem_stayer'") == "org:admin"
	}, time.Minute, 100*time.Millisecond, "the organization's other events apply while a removal is held")
	require.Equal(t, 1, s.count(t, "select count(*) from organization_memberships where clerk_id = 'orgmem_leaver'"), "the seat holds the row")

	rejoin := leaver
	rejoin.ClerkID, rejoin.CreatedAt, rejoin.UpdatedAt, rejoin.Organization = "orgmem_rejoin", now.Add(2*time.Minute), now.Add(2*time.Minute), org
	send("msg_held_rejoin", "organizationMembership.created", rejoin)
	var state workflows.OrganizationState
	require.Eventually(t, func() bool {
		v, err := s.temporal.QueryWorkflow(ctx, contract.Organization.WorkflowID(s.taskQueue, org.ClerkID), "", contract.StateQuery)
		if err != nil || v.Get(&state) != nil || state.SyncState != contract.SyncStateFailed {
			return false
		}
		for _, f := range state.Failed {
			if f.EventID == "msg_held_rejoin" {
				return true
			}
		}
		return false
	}, time.Minute, 100*time.Millisecond, "the rejoin is shown failed")
	for _, f := range state.Failed {
		if f.EventID == "msg_held_rejoin" {
			require.Contains(t, f.Error, "older membership")
			require.Contains(t, f.Error, `"seats_held"`, "the database's message names the product's table")
		}
	}
	require.Zero(t, s.count(t, "select count(*) from organization_memberships where clerk_id = 'orgmem_rejoin'"))

	dropConstraint(t, s, "seats_held", "seats_held_membership_id_fkey")
	require.Eventually(t, func() bool {
		return s.count(t, "select count(*) from organization_memberships where clerk_id = 'orgmem_leaver'") == 0 &&
			s.count(t, "select count(*) from organization_memberships where clerk_id = 'orgmem_rejoin'") == 1
	}, time.Minute, 100*time.Millisecond, "the old row goes and the rejoin lands")
	require.Eventually(t, func() bool {
		v, err := s.temporal.QueryWorkflow(ctx, contract.Organization.WorkflowID(s.taskQueue, org.ClerkID), "", contract.StateQuery)
		return err == nil && v.Get(&state) == nil && state.SyncState == contract.SyncStateSynced
	}, time.Minute, 100*time.Millisecond, "the organization ends synced")
}
