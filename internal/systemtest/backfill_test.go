package systemtest

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/clerksync/clerksync/internal/clerkwebhook"
	"github.com/clerksync/clerksync/internal/testsupport/clerkfake"
	"github.com/clerksync/clerksync/workflows"
)

// runBackfill starts a BackfillWorkflow and waits for its result.
func (s *system) runBackfill(t *testing.T, name string, in workflows.BackfillInput) workflows.BackfillProgress {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	run, err := s.temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID: workflows.BackfillWorkflowID(s.taskQueue, name), TaskQueue: s.taskQueue,
		WorkflowIDReusePolicy: enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
	}, workflows.BackfillWorkflow, in)
	require.NoError(t, err)
	var p workflows.BackfillProgress
	require.NoError(t, run.Get(ctx, &p))
	return p
}

// TestBackfill_EveryClerkUserReachesTheTable: 1,700 users in Clerk, 600 of
// them created in the same millisecond (more than a page), some already in
// the table with newer data from webhooks, some deleted by webhook; Clerk
// answers 429s and 500s on the way. The table ends equal to Clerk's users,
// newer local data kept, deleted users still absent, trials for recent
// users only; a second run changes nothing.
func TestBackfill_EveryClerkUserReachesTheTable(t *testing.T) {
	t.Parallel()
	s := startSystem(t)
	now := time.Now().Truncate(time.Millisecond)
	old := now.Add(-90 * 24 * time.Hour) // their trial would have ended long ago
	var users []clerkfake.User
	for i := range 1700 {
		created := old.Add(time.Duration(i) * time.Second)
		if i >= 1000 {
			created = now.Add(-time.Hour) // 700 recent users, 600 in one millisecond
			if i >= 1600 {
				created = created.Add(time.Duration(i) * time.Millisecond)
			}
		}
		users = append(users, clerkfake.User{ID: fmt.Sprintf("user_bf%04d", i), Email: fmt.Sprintf("bf%d@example.com", i),
			FirstName: "Fromclerk", CreatedAt: created, UpdatedAt: created.Add(time.Minute)})
	}
	s.clerk.PutUsers(users...)

	// Webhooks got here first for some: newer data, and deletions.
	for _, i := range []int{3, 1200} {
		u := users[i]
		body, err := clerkwebhook.UserEvent("user.updated", clerkwebhook.UserFields{ClerkID: u.ID, Email: u.Email, FirstName: "Newer",
			CreatedAt: u.CreatedAt, UpdatedAt: u.UpdatedAt.Add(time.Hour)})
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, s.post(t, "msg_newer_"+u.ID, body))
	}
	for _, i := range []int{5, 1300} {
		body, err := clerkwebhook.DeletedEvent(users[i].ID, now)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, s.post(t, "msg_del_"+users[i].ID, body))
	}
	require.Eventually(t, func() bool {
		return s.count(t, "select count(*) from clerksync.user_tombstones") == 2 && s.count(t, "select count(*) from users where first_name = 'Newer'") == 2
	}, 30*time.Second, 50*time.Millisecond)

	s.clerk.FailListsWith(2, http.StatusTooManyRequests, 1)
	s.clerk.FailListsWith(2, http.StatusInternalServerError, 0)
	p := s.runBackfill(t, "everyone", workflows.BackfillInput{})
	require.Equal(t, workflows.PhaseDone, p.Phase)
	require.Equal(t, 1700, p.Total)
	require.Equal(t, 1700, p.Stats.Seen)
	require.Equal(t, 2, p.Stats.Tombstoned)
	require.Equal(t, 1700-2-2, p.Stats.Inserted, "every user new to the table")
	require.Equal(t, 2, p.Stats.Unchanged, "the webhooks' newer data kept")
	require.Equal(t, 2, p.Stats.RateLimited)
	require.GreaterOrEqual(t, p.Stats.Retried, 2)

	require.Equal(t, 1698, s.count(t, "select count(*) from users"))
	require.Equal(t, 1696, s.count(t, "select count(*) from users where first_name = 'Fromclerk' and email like 'bf%@example.com'"))
	require.Equal(t, 2, s.count(t, "select count(*) from users where first_name = 'Newer'"))
	require.Zero(t, s.count(t, "select count(*) from users where clerk_id in ('user_bf0005', 'user_bf1300')"), "deleted users stay deleted")
	// Trials: the 700 recent users (one of them deleted, and the webhook
	// already gave one of them its trial) and none of the old ones.
	require.Equal(t, 699, s.count(t, "select count(*) from subscriptions"))
	require.Equal(t, 698, p.Stats.Trials)
	require.Zero(t, s.count(t, "select count(*) from subscriptions s join users u on u.id = s.user_id where u.clerk_created_at < now() - interval '30 days'"))

	again := s.runBackfill(t, "everyone", workflows.BackfillInput{})
	require.Equal(t, 1698, again.Stats.Unchanged, "a second run changes nothing")
	require.Zero(t, again.Stats.Inserted+again.Stats.Updated+again.Stats.Trials)
}

// TestReconcile_RemovesOnlyWhatClerkConfirmsGone: after a backfill, Clerk
// loses ten users without a webhook and changes five. Reconciliation removes
// and tombstones exactly the ten, each confirmed by a 404, updates the
// five, and changes nothing else; a run that would remove half the table is
// refused by the safety stop.
func TestReconcile_RemovesOnlyWhatClerkConfirmsGone(t *testing.T) {
	t.Parallel()
	s := startSystem(t)
	created := time.Now().Add(-24 * time.Hour).Truncate(time.Millisecond)
	var users []clerkfake.User
	for i := range 600 {
		c := created.Add(time.Duration(i) * time.Second)
		users = append(users, clerkfake.User{ID: fmt.Sprintf("user_rc%04d", i), Email: fmt.Sprintf("rc%d@example.com", i), CreatedAt: c, UpdatedAt: c})
	}
	s.clerk.PutUsers(users...)
	require.Equal(t, workflows.PhaseDone, s.runBackfill(t, "first", workflows.BackfillInput{}).Phase)
	require.Equal(t, 600, s.count(t, "select count(*) from users"))

	for i := range 10 {
		s.clerk.DeleteUser(users[i*7].ID)
	}
	for i := range 5 {
		u := users[100+i]
		u.FirstName, u.UpdatedAt = "Changed", u.UpdatedAt.Add(time.Hour)
		s.clerk.PutUser(u)
	}
	before := s.clerk.Calls("/v1/users/" + users[7].ID)
	p := s.runBackfill(t, "reconcile", workflows.BackfillInput{Reconcile: true})
	require.Equal(t, workflows.PhaseDone, p.Phase, p.SafetyStop)
	require.Equal(t, 10, p.Unseen)
	require.Equal(t, 10, p.Removed)
	require.Equal(t, 5, p.Stats.Updated)
	require.Equal(t, before+1, s.clerk.Calls("/v1/users/"+users[7].ID), "confirmed one by one with Clerk")
	require.Equal(t, 590, s.count(t, "select count(*) from users"))
	require.Equal(t, 10, s.count(t, "select count(*) from clerksync.user_tombstones"))
	require.Equal(t, 5, s.count(t, "select count(*) from users where first_name = 'Changed'"))
	require.Zero(t, s.count(t, "select count(*) from clerksync.backfill_seen"), "the run forgets what it saw")

	for i := range 300 {
		s.clerk.DeleteUser(users[300+i].ID)
	}
	p = s.runBackfill(t, "reconcile", workflows.BackfillInput{Reconcile: true})
	require.Equal(t, workflows.PhaseStopped, p.Phase)
	require.Contains(t, p.SafetyStop, "nothing was removed")
	require.Zero(t, p.Removed)
	require.Equal(t, 590, s.count(t, "select count(*) from users"), "the safety stop removed nothing")
}

// TestBackfill_OrganizationsAndMembershipsThenReconcile: Clerk has 120
// organizations (more than a page) with three members each; clerksync
// already tombstoned one organization by webhook and holds a newer role for
// one membership. The backfill writes every other organization and
// membership (members get their rows), keeps the newer role and leaves the
// tombstoned organization out. Then Clerk loses two organizations and three
// memberships without webhooks, and clerksync holds an organization Clerk
// never had: reconciliation removes exactly those, each confirmed; a run
// over the safety stop removes nothing.
func TestBackfill_OrganizationsAndMembershipsThenReconcile(t *testing.T) {
	t.Parallel()
	s := startSystem(t)
	created := time.Now().Add(-24 * time.Hour).Truncate(time.Millisecond)
	var (
		orgs    []clerkfake.Organization
		members []clerkfake.Membership
		users   []clerkfake.User
	)
	for i := range 120 {
		c := created.Add(time.Duration(i) * time.Second)
		org := clerkfake.Organization{ID: fmt.Sprintf("org_bf%03d", i), Name: fmt.Sprintf("Backfilled %d", i), Slug: fmt.Sprintf("bf-%d", i), CreatedAt: c, UpdatedAt: c}
		orgs = append(orgs, org)
		for k := range 3 {
			userID := fmt.Sprintf("user_bfm%03d_%d", i, k)
			users = append(users, clerkfake.User{ID: userID, FirstName: "Memberof", CreatedAt: c, UpdatedAt: c})
			members = append(members, clerkfake.Membership{ID: fmt.Sprintf("orgmem_bf%03d_%d", i, k), OrganizationID: org.ID,
				UserID: userID, Role: "org:member", CreatedAt: c, UpdatedAt: c})
		}
	}
	s.clerk.PutUsers(users...)
	s.clerk.PutOrganizations(orgs...)
	s.clerk.PutMemberships(members...)

	// What webhooks did before the backfill.
	deleted, err := clerkwebhook.OrganizationDeletedEvent(orgs[5].ID, orgs[5].Slug, time.Now())
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, s.post(t, "msg_bf_orgdel", deleted))
	promoted := members[30]
	body, err := clerkwebhook.MembershipEvent("organizationMembership.updated", clerkwebhook.MembershipFields{
		ClerkID: promoted.ID, UserID: promoted.UserID, Role: "org:admin", CreatedAt: promoted.CreatedAt, UpdatedAt: promoted.UpdatedAt.Add(time.Hour),
		Organization: clerkwebhook.OrganizationFields{ClerkID: orgs[10].ID, Name: orgs[10].Name, Slug: orgs[10].Slug,
			CreatedAt: orgs[10].CreatedAt, UpdatedAt: orgs[10].UpdatedAt}})
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, s.post(t, "msg_bf_promote", body))
	local := clerkwebhook.OrganizationFields{ClerkID: "org_bf_localonly", Name: "Local only", Slug: "local-only", CreatedAt: created, UpdatedAt: created}
	body, err = clerkwebhook.OrganizationEvent("organization.created", local)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, s.post(t, "msg_bf_local", body))
	require.Eventually(t, func() bool {
		return s.count(t, "select count(*) from clerksync.organization_tombstones") == 1 &&
			s.count(t, "select count(*) from organization_memberships where role = 'org:admin'") == 1 &&
			s.count(t, "select count(*) from organizations where clerk_id = 'org_bf_localonly'") == 1
	}, time.Minute, 100*time.Millisecond)

	p := s.runBackfill(t, "orgs", workflows.BackfillInput{})
	require.Equal(t, workflows.PhaseDone, p.Phase)
	require.Equal(t, 120, p.Stats.Organizations, "every organization is listed")
	require.Equal(t, 119*3, p.Stats.Memberships, "the tombstoned organization's memberships are not written")
	require.Equal(t, 120, s.count(t, "select count(*) from organizations"), "119 from Clerk (the deleted one stays out) and the local one")
	require.Zero(t, s.count(t, "select count(*) from organizations where clerk_id = 'org_bf005'"))
	require.Equal(t, 119*3, s.count(t, "select count(*) from organization_memberships"))
	require.Equal(t, "org:admin", s.queryString(t, "select role from organization_memberships where clerk_id = $1", promoted.ID),
		"the webhook's newer role stays")
	require.Equal(t, 360, s.count(t, "select count(*) from users where clerk_id like 'user_bfm%'"), "members got their rows")

	s.clerk.DeleteOrganization(orgs[20].ID)
	s.clerk.DeleteOrganization(orgs[21].ID)
	for _, i := range []int{150, 151, 270} { // of organizations 50 and 90, which stay
		s.clerk.DeleteMembership(members[i].ID)
	}
	p = s.runBackfill(t, "orgs-reconcile", workflows.BackfillInput{Reconcile: true})
	require.Equal(t, workflows.PhaseDone, p.Phase, p.SafetyStop)
	require.Equal(t, 3, p.UnseenOrganizations, "two gone from Clerk and the local-only one")
	require.Equal(t, 3, p.UnseenMemberships)
	require.NotNil(t, p.OrganizationsOutcome)
	require.Equal(t, 3, p.OrganizationsOutcome.RemovedOrganizations)
	require.Equal(t, 3, p.OrganizationsOutcome.RemovedMemberships)
	require.Equal(t, 117, s.count(t, "select count(*) from organizations"))
	require.Equal(t, 117*3-3, s.count(t, "select count(*) from organization_memberships"))
	require.Equal(t, 4, s.count(t, "select count(*) from clerksync.organization_tombstones"))
	require.Equal(t, 3, s.count(t, "select count(*) from clerksync.organization_membership_tombstones"))

	for _, o := range orgs[40:100] {
		s.clerk.DeleteOrganization(o.ID)
	}
	p = s.runBackfill(t, "orgs-reconcile", workflows.BackfillInput{Reconcile: true, MaxDelete: 10})
	require.Equal(t, workflows.PhaseStopped, p.Phase)
	require.Contains(t, p.SafetyStop, "60 organizations")
	require.Equal(t, 117, s.count(t, "select count(*) from organizations"), "the safety stop removed nothing")
}

// queryString runs a query that returns one text value.
func (s *system) queryString(t *testing.T, sql string, args ...any) string {
	t.Helper()
	var v string
	require.NoError(t, s.db.QueryRow(context.Background(), sql, args...).Scan(&v))
	return v
}
