package systemtest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/api/serviceerror"

	"github.com/clerksync/clerksync/ensure/contract"
	"github.com/clerksync/clerksync/internal/clerkwebhook"
	"github.com/clerksync/clerksync/internal/config"
	"github.com/clerksync/clerksync/internal/testsupport/clerkfake"
	"github.com/clerksync/clerksync/internal/testsupport/testenv"
	"github.com/clerksync/clerksync/workflows"
)

// prismaRows reads the Prisma example's "User" table as a Scenario
// compares it: its email ” is a user without one, and the version is the
// one clerksync's bookkeeping recorded for the row.
const prismaRows = `
select u."clerkId", nullif(u.email, ''), u."firstName", u."lastName", coalesce(st.clerk_updated_at, 'epoch')
from "User" u left join clerksync.user_state st on st.clerk_id = u."clerkId"`

// TestAdopt_PrismaAppConvergesInItsOwnTables: the Prisma app of
// docs/examples/prisma, its rows and conversations there before clerksync,
// gets the shuffled, duplicated, signed corpus of the system tests. Its
// "User" table ends with exactly the right rows; rows it had are updated
// in place, keeping their keys and conversations; deleted users are gone
// with their conversations (the app's cascade); every live user has its
// trial in "Subscription"; organization events are acknowledged and not
// applied; ensure answers the app's own columns; a backfill fills the
// table from Clerk.
func TestAdopt_PrismaAppConvergesInItsOwnTables(t *testing.T) {
	t.Parallel()
	s := startSystemOn(t, &testenv.Prisma)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	seed := uint64(time.Now().UnixNano())
	sc := testenv.NewScenario(t, testenv.ScenarioOptions{Users: 100, DuplicateRate: 0.2, Seed: seed, Prefix: "prisma", Unusual: true})
	t.Logf("seed %d: %d deliveries, %d live and %d deleted users", seed, len(sc.Deliveries), len(sc.Live), len(sc.Deleted))

	// The app's rows from before clerksync: some of the users to come,
	// live and deleted, each with a conversation.
	live, deleted := sortedKeys(sc.Live), sortedKeys(sc.Deleted)
	existing := append(slices.Clone(live[:10]), deleted[:5]...)
	for _, id := range existing {
		_, err := s.db.Exec(ctx, `insert into "User" (id, "clerkId", email, "firstName", "updatedAt")
values ('app-' || $1::text, $1, 'before@example.com', 'Before', now())`, id)
		require.NoError(t, err)
		_, err = s.db.Exec(ctx, `insert into "Conversation" (id, "userId", title) values ('conv-' || $1::text, 'app-' || $1::text, 'from before')`, id)
		require.NoError(t, err)
	}

	s.deliverAndConverge(ctx, t, sc, prismaRows)

	for _, id := range live[:10] {
		require.Equal(t, 1, s.count(t, fmt.Sprintf(`select count(*) from "User" u join "Conversation" c on c."userId" = u.id
where u."clerkId" = '%s' and u.id = 'app-%s'`, id, id)), "%s: updated in place, its key and conversation kept", id)
	}
	require.Zero(t, s.count(t, `select count(*) from "Conversation" where "userId" not in (select id from "User")`))
	require.Equal(t, 10, s.count(t, `select count(*) from "Conversation"`), "the deleted users' conversations went with them")
	require.Equal(t, len(sc.Live), s.count(t, `select count(*) from "Subscription" s join "User" u on u.id = s."userId"
where s.plan = 'trial' and s.status = 'trialing' and s."trialEndsAt" > now() at time zone 'UTC'`), "every live user has its trial")
	require.Equal(t, len(sc.Live), s.count(t, `select count(*) from "Subscription"`))

	// Organization events are acknowledged (Svix stops) and not applied.
	now := time.Now().Truncate(time.Millisecond)
	org, err := clerkwebhook.OrganizationEvent("organization.created", clerkwebhook.OrganizationFields{ClerkID: "org_prisma", Name: "Acme",
		CreatedAt: now, UpdatedAt: now})
	require.NoError(t, err)
	stats, err := testenv.Deliver(ctx, s.url+"/webhooks/clerk", s.secret, []testenv.Delivery{{MsgID: "msg_org_prisma", Body: org}}, 1, 0)
	require.NoError(t, err)
	require.Zero(t, stats.Refused)
	_, err = s.temporal.DescribeWorkflowExecution(ctx, contract.Organization.WorkflowID(s.taskQueue, "org_prisma"), "")
	var notFound *serviceerror.NotFound
	require.ErrorAs(t, err, &notFound, "no organization workflow was started")

	// Ensure answers the app's own columns, plus clerk_id.
	s.clerk.PutUser(clerkfake.User{ID: "user_prisma_ensure", Email: "ensure@example.com", FirstName: "Ensured", CreatedAt: now, UpdatedAt: now})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url+"/v1/users/ensure", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+s.token(t, "user_prisma_ensure"))
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	var row map[string]any
	require.NoError(t, json.Unmarshal(body, &row))
	require.Equal(t, "user_prisma_ensure", row["clerkId"])
	require.Equal(t, "user_prisma_ensure", row["clerk_id"])
	require.Contains(t, row, "updatedAt")
	require.Len(t, row["id"], 36, "the key clerksync generated")
	require.Eventually(t, func() bool {
		return s.count(t, `select count(*) from "User" where "clerkId" = 'user_prisma_ensure' and "firstName" = 'Ensured'`) == 1
	}, 30*time.Second, 100*time.Millisecond, "the workflow fills the row from Clerk")

	// The starter's OpenAPI document describes that row (and the contract
	// check has held every answer above to it).
	resp, err = http.Get(s.url + "/openapi.json")
	require.NoError(t, err)
	var doc struct {
		Components struct {
			Schemas struct {
				User struct {
					Required   []string                  `json:"required"`
					Properties map[string]map[string]any `json:"properties"`
				} `json:"User"`
			} `json:"schemas"`
		} `json:"components"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&doc))
	resp.Body.Close()
	user := doc.Components.Schemas.User
	require.Equal(t, []string{"clerkId", "clerk_id", "createdAt", "email", "firstName", "id", "lastName", "updatedAt", "username"}, user.Required)
	require.Equal(t, []any{"string", "null"}, user.Properties["firstName"]["type"])
	require.Equal(t, "string", user.Properties["email"]["type"], "NOT NULL")

	// A backfill brings every Clerk user into the app's table.
	var clerkUsers []clerkfake.User
	for i := range 300 {
		clerkUsers = append(clerkUsers, clerkfake.User{ID: fmt.Sprintf("user_prisma_bf%03d", i), Email: fmt.Sprintf("bf%d@example.com", i),
			FirstName: "Listed", CreatedAt: now.Add(-time.Hour), UpdatedAt: now.Add(-time.Hour)})
	}
	s.clerk.PutUsers(clerkUsers...)
	p := s.runBackfill(t, "prisma", workflows.BackfillInput{})
	require.Equal(t, workflows.PhaseDone, p.Phase)
	require.Equal(t, "organizations are not kept with CLERKSYNC_MAPPING", p.OrganizationsSkipped)
	require.Equal(t, 300, s.count(t, `select count(*) from "User" where "firstName" = 'Listed' and email like 'bf%@example.com'`))
	require.Equal(t, 300, s.count(t, `select count(*) from "Subscription" s join "User" u on u.id = s."userId" where u."firstName" = 'Listed'`))
}

// deliverAndConverge sends the scenario's webhooks, signed, by 8 senders,
// and waits until the rows rowsSQL reads match it.
func (s *system) deliverAndConverge(ctx context.Context, t *testing.T, sc testenv.Scenario, rowsSQL string) {
	t.Helper()
	stats, err := testenv.Deliver(ctx, s.url+"/webhooks/clerk", s.secret, sc.Deliveries, 8, 0)
	require.NoError(t, err)
	require.Zero(t, stats.Refused)
	var last testenv.Divergence
	require.Eventually(t, func() bool {
		last, err = sc.CompareRows(ctx, s.db, rowsSQL)
		require.NoError(t, err)
		return last.Zero()
	}, 2*time.Minute, 250*time.Millisecond, "the app's table never converged: %v", &last)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// snakeRows reads the snake_case example's live users as a Scenario
// compares them: the version is the one the row holds, in milliseconds.
const snakeRows = `
select clerk_user_id, email_address, given_name, family_name, to_timestamp(clerk_updated_ms / 1000.0)
from app_users where deleted_at is null`

// TestAdopt_SnakeCaseAppSoftDeletes: the snake_case app of
// docs/examples/snake_case (identity keys, times as timestamp and
// milliseconds, soft deletion) gets the same corpus. Its live rows end
// exact; a deleted user's row stays, deleted_at set and its personal
// columns cleared, and the note that references it with it; a trial
// appears and expires in the app's trials table.
func TestAdopt_SnakeCaseAppSoftDeletes(t *testing.T) {
	t.Parallel()
	const period = 3 * time.Second
	s := startSystemOn(t, &testenv.SnakeCase, func(c *config.Config) { c.TrialPeriod = period })
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	seed := uint64(time.Now().UnixNano())
	sc := testenv.NewScenario(t, testenv.ScenarioOptions{Users: 100, DuplicateRate: 0.2, Seed: seed, Prefix: "snake", Unusual: true})
	t.Logf("seed %d: %d deliveries, %d live and %d deleted users", seed, len(sc.Deliveries), len(sc.Live), len(sc.Deleted))
	deleted := sortedKeys(sc.Deleted)
	for _, id := range deleted[:5] {
		_, err := s.db.Exec(ctx, `with u as (
    insert into app_users (clerk_user_id, email_address, given_name, clerk_updated_ms) values ($1, 'before@example.com', 'Before', 0) returning id
) insert into notes (user_id, body) select id, 'from before' from u`, id)
		require.NoError(t, err)
	}

	s.deliverAndConverge(ctx, t, sc, snakeRows)
	require.Eventually(t, func() bool {
		return s.count(t, `select count(*) from app_users u join notes n on n.user_id = u.id
where u.deleted_at is not null and u.email_address is null and u.given_name is null`) == 5
	}, time.Minute, 250*time.Millisecond, "the deleted users' rows and notes stay, their personal columns cleared")
	require.Zero(t, s.count(t, `select count(*) from app_users where deleted_at is not null and (email_address is not null or given_name is not null or family_name is not null)`))

	const id = "user_snake_trial"
	created := time.Now().Truncate(time.Millisecond)
	body, err := clerkwebhook.UserEvent("user.created", clerkwebhook.UserFields{ClerkID: id, Email: "t@example.com", CreatedAt: created, UpdatedAt: created})
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, s.post(t, "msg_snake_trial", body))
	require.Eventually(t, func() bool {
		return s.count(t, `select count(*) from trials t join app_users u on u.id = t.user_id where u.clerk_user_id = '`+id+`' and t.state = 'trialing'`) == 1
	}, 30*time.Second, 50*time.Millisecond, "the signup's trial")
	require.Eventually(t, func() bool {
		return s.count(t, `select count(*) from trials t join app_users u on u.id = t.user_id where u.clerk_user_id = '`+id+`' and t.state = 'expired'`) == 1
	}, 30*time.Second, 100*time.Millisecond, "the trial never expired")
	require.Equal(t, 1, s.count(t, `select count(*) from trials`), "the corpus's users signed up before the 3 s period: no trials")
}

// snakeCaseOrgQueries read the snake_case example's teams, users and team
// members as the organization scenario compares them.
var snakeCaseOrgQueries = orgQueries{
	orgs:  `select clerk_org_id, title from teams`,
	users: `select clerk_user_id, coalesce(given_name, '') from app_users where clerk_user_id like 'user_snk%' and deleted_at is null`,
	members: `
select t.clerk_org_id || ' ' || u.clerk_user_id, m.clerk_membership_id || ' ' || m.role
from team_members m join teams t on t.id = m.team_id join app_users u on u.id = m.user_id`,
}

// TestAdopt_OrganizationsConvergeInTheAppsTeams: the snake_case app maps
// Clerk's organizations onto its teams and memberships onto its team
// members. The organization corpus (memberships created, promoted,
// removed, rejoined under a new ID, organizations renamed and deleted,
// shuffled, a fifth sent twice, often before the organization or the user
// they name) ends exact in the app's tables; a deleted team's projects go
// with it through the app's cascade; a team the app had before is updated
// in place; a backfill brings Clerk's organizations and memberships in.
func TestAdopt_OrganizationsConvergeInTheAppsTeams(t *testing.T) {
	t.Parallel()
	s := startSystemOn(t, &testenv.SnakeCase)
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	seed := uint64(time.Now().UnixNano())
	sc := newOrgScenario(t, "snk", 20, 100, seed, true)
	t.Logf("seed %d: %d deliveries, %d live organizations, %d memberships", seed, len(sc.deliveries), len(sc.orgs), len(sc.members))
	s.names = append(s.names, "Member ", "Team ")

	// The app's own rows from before: a team it already had (and keeps
	// under its key), and a project of every team to come.
	var teamID int64
	require.NoError(t, s.db.QueryRow(ctx, `insert into teams (clerk_org_id, title, synced_at) values ('org_snk001', 'Before', now()) returning id`).Scan(&teamID))
	_, err := s.db.Exec(ctx, `insert into projects (team_id, name) values ($1, 'from before')`, teamID)
	require.NoError(t, err)

	stats, err := testenv.Deliver(ctx, s.url+"/webhooks/clerk", s.secret, sc.deliveries, 8, 0)
	require.NoError(t, err)
	require.Zero(t, stats.Refused)
	s.convergeOrganizations(t, sc, snakeCaseOrgQueries, seed)
	require.Equal(t, 1, s.count(t, fmt.Sprintf(`select count(*) from teams t join projects p on p.team_id = t.id
where t.clerk_org_id = 'org_snk001' and t.id = %d and t.title = 'Team 1.1'`, teamID)), "updated in place, its key and project kept")

	// Metadata and permissions reach the columns that map them.
	now := time.Now().Truncate(time.Millisecond)
	body, err := clerkwebhook.MembershipEvent("organizationMembership.updated", clerkwebhook.MembershipFields{
		ClerkID: "orgmem_snake_meta", UserID: "user_snk0001", Role: "org:admin", Permissions: []string{"org:sys_memberships:manage"},
		Organization: clerkwebhook.OrganizationFields{ClerkID: "org_snake_meta", Name: "Metadata", CreatedAt: now, UpdatedAt: now,
			PublicMetadata: json.RawMessage(`{"plan": "pro", "seats": 5}`)},
		CreatedAt: now, UpdatedAt: now})
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, s.post(t, "msg_snake_meta", body))
	require.Eventually(t, func() bool {
		return s.count(t, `select count(*) from team_members m join teams t on t.id = m.team_id
where t.clerk_org_id = 'org_snake_meta' and t.plan = 'pro' and m.permissions = '["org:sys_memberships:manage"]'`) == 1
	}, 30*time.Second, 100*time.Millisecond)

	// A deleted team's project goes with it.
	_, err = s.db.Exec(ctx, `insert into projects (team_id, name) select id, 'doomed' from teams where clerk_org_id = 'org_snk002'`)
	require.NoError(t, err)
	body, err = clerkwebhook.OrganizationDeletedEvent("org_snk002", "team-2", time.Now())
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, s.post(t, "msg_scn002_gone", body))
	require.Eventually(t, func() bool {
		return s.count(t, `select count(*) from teams where clerk_org_id = 'org_snk002'`)+
			s.count(t, `select count(*) from projects where name = 'doomed'`) == 0
	}, 30*time.Second, 100*time.Millisecond)

	// A backfill brings Clerk's organizations and their members in.
	created := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	var (
		orgs    []clerkfake.Organization
		members []clerkfake.Membership
		users   []clerkfake.User
	)
	for i := range 40 {
		org := clerkfake.Organization{ID: fmt.Sprintf("org_snakebf%02d", i), Name: fmt.Sprintf("Listed %d", i), CreatedAt: created, UpdatedAt: created}
		orgs = append(orgs, org)
		for k := range 2 {
			userID := fmt.Sprintf("user_snakebf%02d_%d", i, k)
			users = append(users, clerkfake.User{ID: userID, FirstName: "Listed", CreatedAt: created, UpdatedAt: created})
			members = append(members, clerkfake.Membership{ID: fmt.Sprintf("orgmem_snakebf%02d_%d", i, k), OrganizationID: org.ID,
				UserID: userID, Role: "org:member", CreatedAt: created, UpdatedAt: created})
		}
	}
	s.clerk.PutUsers(users...)
	s.clerk.PutOrganizations(orgs...)
	s.clerk.PutMemberships(members...)
	p := s.runBackfill(t, "snake-orgs", workflows.BackfillInput{})
	require.Equal(t, workflows.PhaseDone, p.Phase)
	require.Empty(t, p.OrganizationsSkipped)
	require.Equal(t, 40, s.count(t, `select count(*) from teams where title like 'Listed %' and created_ms is not null`))
	require.Equal(t, 80, s.count(t, `select count(*) from team_members m join teams t on t.id = m.team_id join app_users u on u.id = m.user_id
where t.clerk_org_id like 'org_snakebf%' and u.given_name = 'Listed' and m.joined_at is not null`))
}
