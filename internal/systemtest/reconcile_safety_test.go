package systemtest

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/clerksync/clerksync/internal/config"
	"github.com/clerksync/clerksync/internal/testsupport/clerkfake"
	"github.com/clerksync/clerksync/internal/testsupport/testenv"
	"github.com/clerksync/clerksync/workflows"
)

// clerkUsers makes n Clerk users named prefix0000, prefix0001, ...,
// created a day ago.
func clerkUsers(prefix string, n int) []clerkfake.User {
	created := time.Now().Add(-24 * time.Hour).Truncate(time.Millisecond)
	users := make([]clerkfake.User, n)
	for i := range users {
		c := created.Add(time.Duration(i) * time.Second)
		users[i] = clerkfake.User{ID: fmt.Sprintf("%s%04d", prefix, i), Email: fmt.Sprintf("%s%d@example.com", prefix, i), CreatedAt: c, UpdatedAt: c}
	}
	return users
}

// TestReconcile_AnotherInstancesKeyTouchesNothing: the table was filled
// from one Clerk instance; the worker's key is then swapped for another
// instance's (a staging key in production), whose Clerk has none of these
// users. A reconcile, and a backfill, refuse before they write or remove
// anything, naming both instances.
func TestReconcile_AnotherInstancesKeyTouchesNothing(t *testing.T) {
	t.Parallel()
	s := startSystem(t)
	s.clerk.PutUsers(clerkUsers("user_prod", 80)...)
	first := s.runBackfill(t, "instance-fill", workflows.BackfillInput{})
	require.Equal(t, workflows.PhaseDone, first.Phase)
	production := s.clerk.InstanceID()
	require.Equal(t, production, first.Instance)
	require.Equal(t, 80, s.count(t, "select count(*) from users"))

	s.clerk.BecomeInstance("ins_staging_other", clerkUsers("user_staging", 30)...)
	for _, in := range []workflows.BackfillInput{{Reconcile: true}, {}} {
		p := s.runBackfill(t, "instance-wrong-key", in)
		require.Equal(t, workflows.PhaseStopped, p.Phase)
		require.Contains(t, p.SafetyStop, "ins_staging_other")
		require.Contains(t, p.SafetyStop, production)
		require.Contains(t, p.SafetyStop, "nothing was written or removed")
		require.Zero(t, p.Removed)
	}
	require.Equal(t, 80, s.count(t, "select count(*) from users where clerk_id like 'user_prod%'"), "no user removed")
	require.Zero(t, s.count(t, "select count(*) from clerksync.user_tombstones"), "no user tombstoned")
	require.Zero(t, s.count(t, "select count(*) from users where clerk_id like 'user_staging%'"), "the other instance's users are not written")
}

// TestReconcile_SafetyStopRefusesMostOfASmallTable: Clerk (the same
// instance) lists none of a table's 80 users. Removing all 80 is never
// routine, though it is under the old floor of 100: the run stops and
// removes nothing, and --max-delete lets an operator say they really are
// gone.
func TestReconcile_SafetyStopRefusesMostOfASmallTable(t *testing.T) {
	t.Parallel()
	s := startSystem(t)
	users := clerkUsers("user_small", 80)
	s.clerk.PutUsers(users...)
	require.Equal(t, workflows.PhaseDone, s.runBackfill(t, "small-fill", workflows.BackfillInput{}).Phase)
	for _, u := range users {
		s.clerk.DeleteUser(u.ID)
	}
	p := s.runBackfill(t, "small-reconcile", workflows.BackfillInput{Reconcile: true})
	require.Equal(t, workflows.PhaseStopped, p.Phase)
	require.Equal(t, 80, p.Unseen)
	require.Equal(t, workflows.DefaultMaxDelete(80), p.MaxDelete)
	require.Contains(t, p.SafetyStop, "80 local users")
	require.Equal(t, 80, s.count(t, "select count(*) from users"), "the safety stop removed nothing")

	p = s.runBackfill(t, "small-reconcile", workflows.BackfillInput{Reconcile: true, MaxDelete: 80})
	require.Equal(t, workflows.PhaseDone, p.Phase, p.SafetyStop)
	require.Equal(t, 80, p.Removed)
	require.Zero(t, s.count(t, "select count(*) from users"))
}

// TestBackfill_InstanceWithoutOrganizations: Clerk answers every
// organization endpoint with its 403 organization_not_enabled_in_instance.
// That is a normal instance: a backfill and a reconcile skip their
// organization phase, say so, and a reconcile still reaches its removals.
func TestBackfill_InstanceWithoutOrganizations(t *testing.T) {
	t.Parallel()
	s := startSystem(t)
	s.clerk.DisableOrganizations()
	users := clerkUsers("user_noorg", 30)
	s.clerk.PutUsers(users...)
	p := s.runBackfill(t, "noorg-fill", workflows.BackfillInput{})
	require.Equal(t, workflows.PhaseDone, p.Phase)
	require.Equal(t, 30, p.Stats.Inserted)
	require.Contains(t, p.OrganizationsSkipped, "Organizations feature")

	s.clerk.DeleteUser(users[4].ID)
	p = s.runBackfill(t, "noorg-reconcile", workflows.BackfillInput{Reconcile: true})
	require.Equal(t, workflows.PhaseDone, p.Phase, p.SafetyStop)
	require.Contains(t, p.OrganizationsSkipped, "Organizations feature")
	require.Equal(t, 1, p.Removed)
	require.Equal(t, 29, s.count(t, "select count(*) from users"))
}

// TestReconcile_OrganizationsAllGoneFromClerk: Clerk lost every
// organization without webhooks. Clerk lists none at the run's start, so
// the run does not list them again after the users (a request's latency
// on every run of an instance without organizations), and still removes
// the local ones, each confirmed gone.
func TestReconcile_OrganizationsAllGoneFromClerk(t *testing.T) {
	t.Parallel()
	s := startSystem(t)
	users := clerkUsers("user_orgsgone", 4)
	s.clerk.PutUsers(users...)
	for i, u := range users[:2] {
		org := clerkfake.Organization{ID: fmt.Sprintf("org_gone%d", i), Name: "Gone", Slug: fmt.Sprintf("gone-%d", i), CreatedAt: u.CreatedAt, UpdatedAt: u.CreatedAt}
		s.clerk.PutOrganizations(org)
		s.clerk.PutMemberships(clerkfake.Membership{ID: fmt.Sprintf("orgmem_gone%d", i), OrganizationID: org.ID, UserID: u.ID,
			Role: "org:admin", CreatedAt: u.CreatedAt, UpdatedAt: u.CreatedAt})
	}
	listings := func(name string) int {
		n := 0
		for _, e := range s.history(t, workflows.BackfillWorkflowID(s.taskQueue, name), "").GetEvents() {
			if e.GetActivityTaskScheduledEventAttributes().GetActivityType().GetName() == "BackfillOrganizations" {
				n++
			}
		}
		return n
	}
	p := s.runBackfill(t, "orgsgone-fill", workflows.BackfillInput{})
	require.Equal(t, workflows.PhaseDone, p.Phase)
	require.Equal(t, 2, p.Stats.Organizations)
	require.Equal(t, 1, listings("orgsgone-fill"), "Clerk had organizations: the run lists them after the users")
	require.Equal(t, 2, s.count(t, "select count(*) from organization_memberships"))

	s.clerk.DeleteOrganization("org_gone0")
	s.clerk.DeleteOrganization("org_gone1")
	p = s.runBackfill(t, "orgsgone-reconcile", workflows.BackfillInput{Reconcile: true, MaxDelete: 10})
	require.Equal(t, workflows.PhaseDone, p.Phase, p.SafetyStop)
	require.Zero(t, listings("orgsgone-reconcile"), "Clerk had none at the start: nothing to list after the users")
	require.Empty(t, p.OrganizationsSkipped)
	require.Equal(t, 2, p.UnseenOrganizations)
	require.NotNil(t, p.OrganizationsOutcome)
	require.Equal(t, 2, p.OrganizationsOutcome.RemovedOrganizations)
	require.Zero(t, s.count(t, "select count(*) from organizations"))
	require.Zero(t, s.count(t, "select count(*) from organization_memberships"))
	require.Equal(t, 4, s.count(t, "select count(*) from users"), "the members stay users")
}

// TestBackfill_AListingThatAnswers404IsAConfigurationError: CLERK_API_URL
// without /v1 answers 404 for every listing. The run fails at once with an
// error that says what to fix, instead of retrying for ever.
func TestBackfill_AListingThatAnswers404IsAConfigurationError(t *testing.T) {
	t.Parallel()
	s := startSystem(t, func(c *config.Config) { c.ClerkAPIURL = strings.TrimSuffix(c.ClerkAPIURL, "/v1") })
	s.clerk.PutUsers(clerkUsers("user_nov1", 3)...)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	run, err := s.temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: workflows.BackfillWorkflowID(s.taskQueue, "nov1"), TaskQueue: s.taskQueue},
		workflows.BackfillWorkflow, workflows.BackfillInput{})
	require.NoError(t, err)
	err = run.Get(ctx, nil)
	require.Error(t, err)
	require.NotErrorIs(t, err, context.DeadlineExceeded, "the run retried instead of failing")
	require.Contains(t, err.Error(), "CLERK_API_URL")
	require.Contains(t, err.Error(), "404")
}

// TestReconcile_ATerminatedRunHidesNoDeletions: a reconcile is terminated
// after its listing recorded every user as seen. Clerk then loses two users
// without a webhook: the next reconcile of the same name removes both
// (the terminated run's seen set is not its own) and drops what the
// terminated run left.
func TestReconcile_ATerminatedRunHidesNoDeletions(t *testing.T) {
	t.Parallel()
	s := startSystem(t)
	users := clerkUsers("user_term", 40)
	s.clerk.PutUsers(users...)
	require.Equal(t, workflows.PhaseDone, s.runBackfill(t, "terminated-fill", workflows.BackfillInput{}).Phase)

	// The organization phase hangs on a failing Clerk, after the users'.
	s.clerk.FailOrganizationsWith(http.StatusInternalServerError)
	ctx := context.Background()
	id := workflows.BackfillWorkflowID(s.taskQueue, "terminated-reconcile")
	_, err := s.temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: s.taskQueue,
		WorkflowIDReusePolicy: enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE}, workflows.BackfillWorkflow, workflows.BackfillInput{Reconcile: true})
	require.NoError(t, err)
	require.Eventually(t, func() bool { return s.count(t, "select count(*) from clerksync.backfill_seen") == 40 }, time.Minute, 100*time.Millisecond)
	require.NoError(t, s.temporal.TerminateWorkflow(ctx, id, "", "operator stopped it"))
	s.clerk.FailOrganizationsWith(0)

	s.clerk.DeleteUser(users[3].ID)
	s.clerk.DeleteUser(users[30].ID)
	p := s.runBackfill(t, "terminated-reconcile", workflows.BackfillInput{Reconcile: true})
	require.Equal(t, workflows.PhaseDone, p.Phase, p.SafetyStop)
	require.Equal(t, 2, p.Unseen)
	require.Equal(t, 2, p.Removed)
	require.Equal(t, 38, s.count(t, "select count(*) from users"))
	require.Zero(t, s.count(t, "select count(*) from clerksync.backfill_seen"), "the terminated run's seen set is dropped too")
}

// TestBackfill_AUserPostgreSQLRefusesIsRecordedAndTheRestWritten: one
// Clerk user of a 500-user page has a NUL byte in its name, which
// PostgreSQL never takes. Every other user of the page and the listing is
// written, the refused one is listed with its reason, and the run
// completes; a reconcile does not take it for deleted.
func TestBackfill_AUserPostgreSQLRefusesIsRecordedAndTheRestWritten(t *testing.T) {
	t.Parallel()
	s := startSystem(t)
	users := clerkUsers("user_nul", 700)
	users[123].FirstName = "Nul\x00byte"
	s.clerk.PutUsers(users...)
	p := s.runBackfill(t, "nul-fill", workflows.BackfillInput{})
	require.Equal(t, workflows.PhaseDone, p.Phase)
	require.Equal(t, 699, p.Stats.Inserted)
	require.Equal(t, 1, p.Stats.Refused)
	require.Len(t, p.Refused, 1)
	require.Equal(t, users[123].ID, p.Refused[0].ClerkID)
	require.Contains(t, p.Refused[0].Reason, "invalid byte sequence")
	require.Equal(t, 699, s.count(t, "select count(*) from users"))

	p = s.runBackfill(t, "nul-reconcile", workflows.BackfillInput{Reconcile: true})
	require.Equal(t, workflows.PhaseDone, p.Phase, p.SafetyStop)
	require.Equal(t, 1, p.Stats.Refused)
	require.Zero(t, p.Unseen, "the refused user is seen: Clerk has it")
	require.Zero(t, p.Removed)
	require.Zero(t, s.count(t, "select count(*) from clerksync.user_tombstones"))
}

// TestBackfill_AUserTheAppsUniqueIndexRefusesStallsNothing: the app's
// unique index on email holds one Clerk user's address for another (an
// email handed from one user to another, or a legacy row holding it).
// The page's statement fails with 23505 on every retry, so the run used
// to stall for ever with nothing written; now every other user is
// written, the refused one is listed with the index, and the run
// completes.
func TestBackfill_AUserTheAppsUniqueIndexRefusesStallsNothing(t *testing.T) {
	t.Parallel()
	s := startSystem(t)
	_, err := s.db.Exec(context.Background(), `create unique index users_email_key on users (email)`)
	require.NoError(t, err)
	users := clerkUsers("user_uniq", 700)
	users[120].Email, users[121].Email = "handed.over@example.com", "handed.over@example.com"
	s.clerk.PutUsers(users...)
	p := s.runBackfill(t, "unique-fill", workflows.BackfillInput{})
	require.Equal(t, workflows.PhaseDone, p.Phase)
	require.Equal(t, 699, p.Stats.Inserted)
	require.Equal(t, 1, p.Stats.Refused)
	require.Len(t, p.Refused, 1)
	require.Equal(t, users[121].ID, p.Refused[0].ClerkID)
	require.Contains(t, p.Refused[0].Reason, "users_email_key")
	require.Equal(t, 699, s.count(t, "select count(*) from users"))
}

// TestBackfill_OrganizationsTheAppRefusesStallNothing: on the snake_case
// example, the app's CHECK refuses one of Clerk's organizations (its
// name), and its unique (team_id, user_id) refuses one membership (a row
// the app already had for that team and user). The organization backfill
// used to retry the page for ever; now every other organization and
// membership is written, the two refused are counted, and the run
// completes.
func TestBackfill_OrganizationsTheAppRefusesStallNothing(t *testing.T) {
	t.Parallel()
	s := startSystemOn(t, &testenv.SnakeCase)
	ctx := context.Background()
	_, err := s.db.Exec(ctx, `alter table teams add constraint teams_title_check check (title <> 'Forbidden')`)
	require.NoError(t, err)
	created := time.Now().Add(-24 * time.Hour).Truncate(time.Millisecond)
	users := clerkUsers("user_orgref", 3)
	s.clerk.PutUsers(users...)
	var orgs []clerkfake.Organization
	var members []clerkfake.Membership
	for i, name := range []string{"Alpha", "Forbidden", "Gamma"} {
		o := clerkfake.Organization{ID: fmt.Sprintf("org_ref%d", i), Name: name, Slug: fmt.Sprintf("ref-%d", i),
			CreatedAt: created.Add(time.Duration(i) * time.Second), UpdatedAt: created}
		orgs = append(orgs, o)
		for k, u := range users {
			members = append(members, clerkfake.Membership{ID: fmt.Sprintf("orgmem_ref%d_%d", i, k), OrganizationID: o.ID, UserID: u.ID,
				Role: "org:member", CreatedAt: created, UpdatedAt: created})
		}
	}
	s.clerk.PutOrganizations(orgs...)
	s.clerk.PutMemberships(members...)
	// The app's own membership row for Gamma's team and the first user,
	// made after a first look at the users and teams.
	p := s.runBackfill(t, "orgref-users", workflows.BackfillInput{})
	require.Equal(t, workflows.PhaseDone, p.Phase)
	_, err = s.db.Exec(ctx, `delete from team_members where clerk_membership_id = 'orgmem_ref2_0'`)
	require.NoError(t, err)
	_, err = s.db.Exec(ctx, `insert into team_members (clerk_membership_id, team_id, user_id, role)
select 'app-own-row', t.id, u.id, 'owner' from teams t, app_users u where t.clerk_org_id = 'org_ref2' and u.clerk_user_id = $1`, users[0].ID)
	require.NoError(t, err)
	_, err = s.db.Exec(ctx, `delete from clerksync.membership_state where clerk_id = 'orgmem_ref2_0'`)
	require.NoError(t, err)

	p = s.runBackfill(t, "orgref", workflows.BackfillInput{})
	require.Equal(t, workflows.PhaseDone, p.Phase)
	require.Equal(t, 2, s.count(t, "select count(*) from teams"), "Alpha and Gamma")
	require.Equal(t, 3+2, s.count(t, "select count(*) from team_members where clerk_membership_id like 'orgmem_ref%'"),
		"every membership but the Forbidden team's and the one the app's own row holds")
	require.GreaterOrEqual(t, p.Stats.Refused, 2, "%+v", p.Stats)
}

// TestBackfill_AnEmailHandedOverLandsAtTheRunsEnd: Clerk moved an email
// from one user to another; the table still has it on the first. The
// listing reaches the new holder before the old one, whose row the app's
// unique index still gives the email: refused in its page. Once the old
// holder's new email is written, the run writes the refused user once
// more at its end, and it lands: nothing is left refused.
func TestBackfill_AnEmailHandedOverLandsAtTheRunsEnd(t *testing.T) {
	t.Parallel()
	s := startSystem(t)
	_, err := s.db.Exec(context.Background(), `create unique index users_email_key on users (email)`)
	require.NoError(t, err)
	users := clerkUsers("user_handed", 30)
	s.clerk.PutUsers(users...)
	p := s.runBackfill(t, "handed-before", workflows.BackfillInput{})
	require.Equal(t, 30, p.Stats.Inserted)

	oldHolder, newHolder := users[20], users[5]
	newHolder.Email, newHolder.UpdatedAt = oldHolder.Email, newHolder.UpdatedAt.Add(time.Hour)
	oldHolder.Email, oldHolder.UpdatedAt = "moved.on@example.com", oldHolder.UpdatedAt.Add(time.Hour)
	s.clerk.PutUsers(newHolder, oldHolder)
	p = s.runBackfill(t, "handed-after", workflows.BackfillInput{})
	require.Equal(t, workflows.PhaseDone, p.Phase)
	require.Zero(t, p.Stats.Refused, "%+v", p.Refused)
	require.Empty(t, p.Refused)
	require.Equal(t, 2, p.Stats.Updated)
	require.Equal(t, newHolder.Email, s.queryString(t, `select email from users where clerk_id = $1`, newHolder.ID))
	require.Equal(t, "moved.on@example.com", s.queryString(t, `select email from users where clerk_id = $1`, oldHolder.ID))
}

// TestReconcile_CountsOnlyClerksUsers: the invoicing app's 50 rows from
// before Clerk (no Clerk ID) are not Clerk users gone missing: a
// reconciliation after 2 of 10 Clerk users were deleted counts 2, so an
// exact safety stop of 2 lets it remove them, and the legacy rows stay. It
// used to count 52, and refuse.
func TestReconcile_CountsOnlyClerksUsers(t *testing.T) {
	t.Parallel()
	s := startSystemOn(t, &testenv.Invoicing)
	_, err := s.db.Exec(context.Background(), `insert into app.users (email) select 'legacy' || i || '@example.com' from generate_series(1, 50) i`)
	require.NoError(t, err)
	users := clerkUsers("user_recleg", 10)
	s.clerk.PutUsers(users...)
	require.Equal(t, workflows.PhaseDone, s.runBackfill(t, "recleg-fill", workflows.BackfillInput{}).Phase)
	s.clerk.DeleteUser(users[3].ID)
	s.clerk.DeleteUser(users[7].ID)
	p := s.runBackfill(t, "recleg-reconcile", workflows.BackfillInput{Reconcile: true, MaxDelete: 2})
	require.Equal(t, workflows.PhaseDone, p.Phase, "stopped: %s", p.SafetyStop)
	require.Equal(t, 2, p.Unseen)
	require.Equal(t, 2, p.Removed)
	require.Equal(t, 50, s.count(t, `select count(*) from app.users where clerk_user_id is null and deleted_at is null`), "the legacy rows stay")
}
