package systemtest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/clerksync/clerksync/ensure/contract"
	"github.com/clerksync/clerksync/internal/clerkwebhook"
	"github.com/clerksync/clerksync/internal/testsupport/testenv"
	"github.com/clerksync/clerksync/workflows"
)

// orgScenario is a batch of user, organization and membership webhooks and
// the three tables' final state they imply.
type orgScenario struct {
	deliveries []testenv.Delivery
	// orgs: live organization -> its final name.
	orgs map[string]string
	// users: live user -> its final first name.
	users map[string]string
	// members: "org_id user_id" -> "orgmem_id role" of its final membership.
	members map[string]string
	// deleted organizations, users and memberships: tombstoned, nothing left.
	deletedOrgs, deletedUsers, deletedMembers []string
}

// newOrgScenario builds nOrgs organizations (created, renamed, a tenth
// deleted), nUsers users (created, renamed, a tenth deleted) and about
// eight memberships per organization, each created, some promoted, a fifth
// removed, half of those rejoined under a new membership ID. Every event is
// shuffled with the rest, a fifth sent twice, so memberships often come
// before their organization's or their user's creation.
//
// Every Clerk ID holds prefix (user_<prefix>0001, org_<prefix>001,
// orgmem_<prefix>001_0001_a): tests run at once on one Temporal server,
// where a workflow ID such as user/user_x0001 is one workflow whichever
// test signals it, so two tests sharing an ID apply each other's events
// in their own databases.
//
// With keepUsers, no user is deleted (an app that soft-deletes its users
// keeps their rows, and what a cascade would remove with them).
func newOrgScenario(t *testing.T, prefix string, nOrgs, nUsers int, seed uint64, keepUsers bool) orgScenario {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 1))
	base := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	at := func(s int) time.Time { return base.Add(time.Duration(s) * time.Second) }
	sc := orgScenario{orgs: map[string]string{}, users: map[string]string{}, members: map[string]string{}}
	add := func(id string, body []byte, err error) {
		t.Helper()
		require.NoError(t, err)
		sc.deliveries = append(sc.deliveries, testenv.Delivery{MsgID: id, Body: body})
	}

	deletedUser := map[string]bool{}
	for i := range nUsers {
		id := fmt.Sprintf("user_%s%04d", prefix, i)
		for v, name := range []string{fmt.Sprintf("Member %d.0", i), fmt.Sprintf("Member %d.1", i)} {
			typ := "user.created"
			if v == 1 {
				typ = "user.updated"
			}
			body, err := clerkwebhook.UserEvent(typ, clerkwebhook.UserFields{ClerkID: id, FirstName: name, CreatedAt: at(0), UpdatedAt: at(1 + v)})
			add(fmt.Sprintf("msg_%s_%d", id, v), body, err)
			sc.users[id] = name
		}
		if i%10 == 3 && !keepUsers {
			body, err := clerkwebhook.DeletedEvent(id, at(50))
			add("msg_"+id+"_del", body, err)
			deletedUser[id] = true
			delete(sc.users, id)
			sc.deletedUsers = append(sc.deletedUsers, id)
		}
	}

	for o := range nOrgs {
		orgID := fmt.Sprintf("org_%s%03d", prefix, o)
		versions := []clerkwebhook.OrganizationFields{
			{ClerkID: orgID, Name: fmt.Sprintf("Team %d.0", o), Slug: fmt.Sprintf("team-%d", o), CreatedAt: at(0), UpdatedAt: at(1)},
			{ClerkID: orgID, Name: fmt.Sprintf("Team %d.1", o), Slug: fmt.Sprintf("team-%d", o), CreatedAt: at(0), UpdatedAt: at(5)},
		}
		for v, f := range versions {
			typ := "organization.created"
			if v == 1 {
				typ = "organization.updated"
			}
			body, err := clerkwebhook.OrganizationEvent(typ, f)
			add(fmt.Sprintf("msg_%s_%d", orgID, v), body, err)
		}
		orgDeleted := o%10 == 7
		if orgDeleted {
			body, err := clerkwebhook.OrganizationDeletedEvent(orgID, versions[1].Slug, at(60))
			add("msg_"+orgID+"_del", body, err)
			sc.deletedOrgs = append(sc.deletedOrgs, orgID)
		} else {
			sc.orgs[orgID] = versions[1].Name
		}

		for k, u := range rng.Perm(nUsers)[:8] {
			userID := fmt.Sprintf("user_%s%04d", prefix, u)
			memID := fmt.Sprintf("orgmem_%s%03d_%04d_a", prefix, o, u)
			// Each membership event embeds one of the organization's real
			// versions, the one current when it happened.
			m := clerkwebhook.MembershipFields{ClerkID: memID, UserID: userID, Role: "org:member",
				Organization: versions[rng.IntN(2)], CreatedAt: at(10), UpdatedAt: at(10)}
			body, err := clerkwebhook.MembershipEvent("organizationMembership.created", m)
			add(fmt.Sprintf("msg_%s_c", memID), body, err)
			final := memID + " org:member"
			if k%3 == 0 { // promoted
				m.Role, m.UpdatedAt = "org:admin", at(20)
				body, err := clerkwebhook.MembershipEvent("organizationMembership.updated", m)
				add(fmt.Sprintf("msg_%s_u", memID), body, err)
				final = memID + " org:admin"
			}
			if k%5 == 1 { // removed
				body, err := clerkwebhook.MembershipEvent("organizationMembership.deleted", m)
				add(fmt.Sprintf("msg_%s_d", memID), body, err)
				sc.deletedMembers = append(sc.deletedMembers, memID)
				final = ""
				if k == 1 { // rejoined under a new ID
					rejoin := m
					rejoin.ClerkID, rejoin.Role, rejoin.CreatedAt, rejoin.UpdatedAt = fmt.Sprintf("orgmem_%s%03d_%04d_b", prefix, o, u), "org:member", at(40), at(40)
					body, err := clerkwebhook.MembershipEvent("organizationMembership.created", rejoin)
					add(fmt.Sprintf("msg_%s_c", rejoin.ClerkID), body, err)
					final = rejoin.ClerkID + " org:member"
				}
			}
			if final != "" && !orgDeleted && !deletedUser[userID] {
				sc.members[orgID+" "+userID] = final
			}
		}
	}
	n := len(sc.deliveries)
	for _, d := range sc.deliveries[:n:n] {
		if rng.Float64() < 0.2 {
			sc.deliveries = append(sc.deliveries, d)
		}
	}
	rng.Shuffle(len(sc.deliveries), func(i, j int) { sc.deliveries[i], sc.deliveries[j] = sc.deliveries[j], sc.deliveries[i] })
	return sc
}

// orgQueries read the organizations, users and memberships tables as
// compare needs them: (Clerk ID, name), (Clerk ID, first name) of the
// scenario's users, and ("org_id user_id", "orgmem_id role").
type orgQueries struct{ orgs, users, members string }

// ownOrgQueries read clerksync's own tables.
var ownOrgQueries = orgQueries{
	orgs:  `select clerk_id, coalesce(name, '') from organizations`,
	users: `select clerk_id, coalesce(first_name, '') from users where clerk_id like 'user_own%'`,
	members: `
select o.clerk_id || ' ' || u.clerk_id, m.clerk_id || ' ' || m.role
from organization_memberships m join organizations o on o.id = m.organization_id join users u on u.id = m.user_id`,
}

// compare returns what the tables hold that the scenario does not imply,
// "" when they are equal.
func (sc orgScenario) compare(ctx context.Context, db testenv.Querier, q orgQueries) (string, error) {
	pairs := func(sql string) (map[string]string, error) {
		rows, err := db.Query(ctx, sql)
		if err != nil {
			return nil, err
		}
		got := map[string]string{}
		for rows.Next() {
			var k, v string
			if err := rows.Scan(&k, &v); err != nil {
				return nil, err
			}
			got[k] = v
		}
		return got, rows.Err()
	}
	orgs, err := pairs(q.orgs)
	if err != nil {
		return "", err
	}
	users, err := pairs(q.users)
	if err != nil {
		return "", err
	}
	members, err := pairs(q.members)
	if err != nil {
		return "", err
	}
	var diffs []string
	for name, c := range []struct {
		got, want map[string]string
	}{{orgs, sc.orgs}, {users, sc.users}, {members, sc.members}} {
		if !maps.Equal(c.got, c.want) {
			diffs = append(diffs, fmt.Sprintf("%s: %s", []string{"organizations", "users", "memberships"}[name], mapDiff(c.got, c.want)))
		}
	}
	if len(diffs) > 0 {
		return strings.Join(diffs, "; "), nil
	}
	for table, ids := range map[string][]string{
		"clerksync.organization_tombstones": sc.deletedOrgs, "clerksync.user_tombstones": sc.deletedUsers,
		"clerksync.organization_membership_tombstones": sc.deletedMembers,
	} {
		var n int
		if err := db.QueryRow(ctx, `select count(*) from `+table+` where clerk_id = any($1)`, ids).Scan(&n); err != nil {
			return "", err
		}
		if n != len(ids) {
			return fmt.Sprintf("%s holds %d of the %d deleted IDs", table, n, len(ids)), nil
		}
	}
	return "", nil
}

// lastDiff holds the latest comparison (or error) for a failure message,
// which formats it when the wait has ended.
type lastDiff struct {
	mu sync.Mutex
	s  string
}

func (d *lastDiff) set(s string) { d.mu.Lock(); d.s = s; d.mu.Unlock() }

func (d *lastDiff) String() string { d.mu.Lock(); defer d.mu.Unlock(); return d.s }

func mapDiff(got, want map[string]string) string {
	var diffs []string
	for k, w := range want {
		if g, ok := got[k]; !ok {
			diffs = append(diffs, fmt.Sprintf("missing %s=%q", k, w))
		} else if g != w {
			diffs = append(diffs, fmt.Sprintf("%s=%q, want %q", k, g, w))
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok {
			diffs = append(diffs, fmt.Sprintf("unexpected %s=%q", k, g))
		}
	}
	slices.Sort(diffs)
	if len(diffs) > 5 {
		diffs = append(diffs[:5], fmt.Sprintf("and %d more", len(diffs)-5))
	}
	return fmt.Sprint(diffs)
}

// TestOrganizations_ShuffledDuplicatedEventsConverge: 30 organizations and
// 150 users with memberships created, promoted, removed and rejoined, some
// organizations and users deleted, every event signed, shuffled, a fifth
// sent twice, by 8 concurrent senders: the organizations, users and
// memberships tables end equal to the final state the events imply,
// nothing of a deleted user or organization left, tombstones in place.
func TestOrganizations_ShuffledDuplicatedEventsConverge(t *testing.T) {
	t.Parallel()
	s := startSystem(t)
	seed := uint64(time.Now().UnixNano())
	sc := newOrgScenario(t, "own", 30, 150, seed, false)
	t.Logf("seed %d: %d deliveries, %d live organizations, %d memberships", seed, len(sc.deliveries), len(sc.orgs), len(sc.members))
	s.names = append(s.names, "Member ", "Team ") // the scenario's names, which no log may hold

	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	stats, err := testenv.Deliver(ctx, s.url+"/webhooks/clerk", s.secret, sc.deliveries, 8, 0)
	require.NoError(t, err)
	require.Zero(t, stats.Refused, "a delivery is acknowledged, or deferred (503) while Temporal is slow on a loaded machine, never refused")

	s.convergeOrganizations(t, sc, ownOrgQueries, seed)
}

// convergeOrganizations waits until the tables q reads hold what sc
// implies, for as long as they keep changing: a loaded machine (CI runs
// every package at once) applies the corpus slowly, and only a stall says
// something is wrong. If they stop changing for stallLimit before they
// converge, or never converge within convergeLimit, it shows, for the
// first live organizations and users whose row is missing or not the
// newest, what Temporal and the worker's log say of their workflows, and every warning
// and error the log holds, then fails the test.
func (s *system) convergeOrganizations(t *testing.T, sc orgScenario, q orgQueries, seed uint64) {
	t.Helper()
	const stallLimit, convergeLimit = time.Minute, 4 * time.Minute
	ctx, cancel := context.WithTimeout(context.Background(), convergeLimit+time.Minute)
	defer cancel()
	start, changed, last := time.Now(), time.Now(), ""
	for {
		d, err := sc.compare(ctx, s.db, q)
		if err != nil {
			d = err.Error()
		}
		if d == "" {
			return
		}
		if d != last {
			changed, last = time.Now(), d
		}
		if time.Since(changed) > stallLimit || time.Since(start) > convergeLimit {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	for _, kind := range []struct {
		rows       string
		want       map[string]string
		workflowID func(taskQueue, clerkID string) string
	}{{q.orgs, sc.orgs, contract.Organization.WorkflowID}, {q.users, sc.users, contract.User.WorkflowID}} {
		explained := 0
		for _, id := range slices.Sorted(maps.Keys(kind.want)) {
			var got string
			err := s.db.QueryRow(ctx, `select v from (`+kind.rows+`) r(k, v) where k = $1`, id).Scan(&got)
			if (err == nil && got == kind.want[id]) || explained == 3 {
				continue
			}
			explained++
			s.explainWorkflow(ctx, t, kind.workflowID(s.taskQueue, id), id)
			t.Logf("%s: row %q (%v), want %q", id, got, err, kind.want[id])
		}
	}
	warnings := map[string]int{}
	for _, line := range bytes.Split(s.logs.Bytes(), []byte("\n")) {
		var l struct{ Level, Msg, Error string }
		if json.Unmarshal(line, &l) == nil && (l.Level == "WARN" || l.Level == "ERROR") {
			warnings[fmt.Sprintf("%s %s: %.300s", l.Level, l.Msg, l.Error)]++
		}
	}
	for _, w := range slices.Sorted(maps.Keys(warnings)) {
		t.Logf("log, %d times: %s", warnings[w], w)
	}
	t.Fatalf("tables stopped changing before they converged (seed %d, after %s): %s", seed, time.Since(start).Round(time.Second), last)
}

// explainWorkflow logs what Temporal says of workflowID (its pending
// workflow task and activities, its state) and the log lines, but debug
// ones, that name id.
func (s *system) explainWorkflow(ctx context.Context, t *testing.T, workflowID, id string) {
	t.Helper()
	d, err := s.temporal.DescribeWorkflowExecution(ctx, workflowID, "")
	t.Logf("%s: describe: %v; status %v, history length %d, pending workflow task %v, pending activities %v", workflowID, err,
		d.GetWorkflowExecutionInfo().GetStatus(), d.GetWorkflowExecutionInfo().GetHistoryLength(), d.GetPendingWorkflowTask(),
		d.GetPendingActivities())
	if v, err := s.temporal.QueryWorkflow(ctx, workflowID, "", contract.StateQuery); err == nil {
		var state any
		_ = v.Get(&state)
		t.Logf("%s: state %v", workflowID, state)
	}
	for _, line := range bytes.Split(s.logs.Bytes(), []byte("\n")) {
		if bytes.Contains(line, []byte(id)) && !bytes.Contains(line, []byte(`"level":"DEBUG"`)) {
			t.Logf("%s: log: %.600s", workflowID, line)
		}
	}
}

// TestOrganizations_DeletionHeldByAProductForeignKey: a product table that
// references organizations(id) without ON DELETE CASCADE holds a deleted
// organization's row. The deletion takes effect at once (a later membership
// is refused), the workflow shows failed with the database's message while
// it retries, and the row goes once the product drops the constraint.
func TestOrganizations_DeletionHeldByAProductForeignKey(t *testing.T) {
	t.Parallel()
	s := startSystem(t)
	ctx := context.Background()
	now := time.Now().Truncate(time.Millisecond)
	org := clerkwebhook.OrganizationFields{ClerkID: "org_pinned", Name: "Pinned", Slug: "pinned", CreatedAt: now, UpdatedAt: now}
	body, err := clerkwebhook.OrganizationEvent("organization.created", org)
	require.NoError(t, err)
	require.Equal(t, 200, s.post(t, "msg_pin_create", body))
	require.Eventually(t, func() bool { return s.count(t, "select count(*) from organizations") == 1 }, time.Minute, 50*time.Millisecond)
	// A membership whose row a product table holds too.
	seat := clerkwebhook.MembershipFields{ClerkID: "orgmem_seat", UserID: "user_seat", Role: "org:member", Organization: org,
		CreatedAt: now, UpdatedAt: now}
	body, err = clerkwebhook.MembershipEvent("organizationMembership.created", seat)
	require.NoError(t, err)
	require.Equal(t, 200, s.post(t, "msg_seat_create", body))
	require.Eventually(t, func() bool { return s.count(t, "select count(*) from organization_memberships") == 1 }, time.Minute, 50*time.Millisecond)
	_, err = s.db.Exec(ctx, `
create table workspaces (id serial primary key, organization_id uuid references organizations(id));
insert into workspaces (organization_id) select id from organizations;
create table seats (id serial primary key, membership_id uuid references organization_memberships(id));
insert into seats (membership_id) select id from organization_memberships`)
	require.NoError(t, err)
	body, err = clerkwebhook.MembershipEvent("organizationMembership.deleted", seat)
	require.NoError(t, err)
	require.Equal(t, 200, s.post(t, "msg_seat_delete", body))
	require.Eventually(t, func() bool {
		return s.count(t, "select count(*) from clerksync.organization_membership_tombstones") == 1
	}, time.Minute, 50*time.Millisecond)
	require.Equal(t, 1, s.count(t, "select count(*) from organization_memberships"), "the seat holds the membership's row")
	dropConstraint(t, s, "seats", "seats_membership_id_fkey")
	require.Eventually(t, func() bool { return s.count(t, "select count(*) from organization_memberships") == 0 }, time.Minute, 100*time.Millisecond,
		"the membership's removal retries until the constraint goes")

	body, err = clerkwebhook.OrganizationDeletedEvent(org.ClerkID, org.Slug, now.Add(time.Minute))
	require.NoError(t, err)
	require.Equal(t, 200, s.post(t, "msg_pin_delete", body))
	var state workflows.OrganizationState
	require.Eventually(t, func() bool {
		v, err := s.temporal.QueryWorkflow(ctx, contract.Organization.WorkflowID(s.taskQueue, org.ClerkID), "", contract.StateQuery)
		return err == nil && v.Get(&state) == nil && state.SyncState == contract.SyncStateFailed
	}, time.Minute, 100*time.Millisecond)
	last := state.Failed[len(state.Failed)-1] // the seat's may be listed before it, in the same run
	require.Equal(t, "organization.deleted", last.Type)
	require.Contains(t, last.Error, "row kept")
	require.Contains(t, last.Error, `"workspaces"`, "the database's message names the product's table")
	require.Equal(t, 1, s.count(t, "select count(*) from clerksync.organization_tombstones"))

	member, err := clerkwebhook.MembershipEvent("organizationMembership.created", clerkwebhook.MembershipFields{
		ClerkID: "orgmem_pinned", UserID: "user_pinned", Role: "org:member", Organization: org, CreatedAt: now, UpdatedAt: now.Add(2 * time.Minute)})
	require.NoError(t, err)
	require.Equal(t, 200, s.post(t, "msg_pin_member", member))
	time.Sleep(time.Second) // long enough for the membership's run, which must not write
	require.Zero(t, s.count(t, "select count(*) from organization_memberships"), "the tombstone refuses later events")

	dropConstraint(t, s, "workspaces", "workspaces_organization_id_fkey")
	require.Eventually(t, func() bool { return s.count(t, "select count(*) from organizations") == 0 }, time.Minute, 100*time.Millisecond,
		"the removal retries until the constraint goes")
}

// dropConstraint drops a product table's constraint as an operator would,
// trying again when PostgreSQL picks it as a deadlock's victim: the worker's
// retried removal holds locks on the same tables.
func dropConstraint(t *testing.T, s *system, table, constraint string) {
	t.Helper()
	var last lastDiff
	require.Eventually(t, func() bool {
		_, err := s.db.Exec(context.Background(), "alter table "+table+" drop constraint "+constraint)
		if err != nil {
			last.set(err.Error())
		}
		return err == nil
	}, 30*time.Second, 100*time.Millisecond, "drop %s: %s", constraint, &last)
}
