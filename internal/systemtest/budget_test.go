package systemtest

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/api/workflowservice/v1"

	"github.com/clerksync/clerksync/ensure/contract"
	"github.com/clerksync/clerksync/internal/clerkwebhook"
	"github.com/clerksync/clerksync/internal/testsupport/clerkfake"
)

// Temporal's work per event, in history events across every execution that
// carries the user's ClerkUserId. Each workflow start, signal, task, marker
// and search attribute upsert is an event (and, on Temporal Cloud, most are
// billed actions). The README's budget table quotes these.
const (
	signupBudget = 10 // signal-with-start (2), one workflow task (3), the write (1), ClerkSyncState (1), completion (1)
	updateBudget = 10
	deleteBudget = 10
	// ensureThenWebhookBudget: the ensure's run writes the minimal row, then
	// fetches the profile as a scheduled activity (its own task and three
	// activity events) and writes it; the webhook that follows starts a run
	// of its own.
	ensureThenWebhookBudget = 25
)

// TestBudget_HistoryEventsPerSync asserts the budgets against the real dev
// server, with the project's default settings.
func TestBudget_HistoryEventsPerSync(t *testing.T) {
	t.Parallel()
	s := startSystem(t)
	created := time.Now().Truncate(time.Millisecond)
	event := func(id, typ string, version int) []byte {
		b, err := clerkwebhook.UserEvent(typ, clerkwebhook.UserFields{
			ClerkID: id, Email: "b@example.com", CreatedAt: created, UpdatedAt: created.Add(time.Duration(version) * time.Second),
		})
		require.NoError(t, err)
		return b
	}

	const id = "user_budget"
	spent := func(name string, budget int, act func()) {
		t.Helper()
		s.spent(t, id, name, budget, act)
	}
	spent("signup", signupBudget, func() { require.Equal(t, http.StatusOK, s.post(t, "msg_b1", event(id, "user.created", 0))) })
	require.Equal(t, 1, s.count(t, "select count(*) from subscriptions"), "the signup's trial came in the same write")
	spent("update", updateBudget, func() { require.Equal(t, http.StatusOK, s.post(t, "msg_b2", event(id, "user.updated", 1))) })
	deleted, err := clerkwebhook.DeletedEvent(id, time.Now())
	require.NoError(t, err)
	spent("delete", deleteBudget, func() { require.Equal(t, http.StatusOK, s.post(t, "msg_b3", deleted)) })

	const ensured = "user_budget_ensured"
	s.clerk.PutUser(clerkfake.User{ID: ensured, Email: "b@example.com", CreatedAt: created, UpdatedAt: created})
	code, _ := s.ensureCall(t, s.token(t, ensured))
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, http.StatusOK, s.post(t, "msg_b4", event(ensured, "user.created", 0)))
	require.Eventually(t, func() bool { return s.runsOf(t, ensured) >= 1 && s.running(t, ensured) == 0 }, time.Minute, 50*time.Millisecond)
	n := s.historyEventsOf(t, ensured)
	t.Logf("ensure then its webhook: %d history events (budget %d)", n, ensureThenWebhookBudget)
	require.LessOrEqual(t, n, ensureThenWebhookBudget)
}

// spent runs act, waits for the entity's new run to complete and asserts
// the history events it added (total counts those before) against budget.
// spent runs act and counts the history events of the runs it started (a
// deletion's run erases the earlier ones, so totals would not do).
func (s *system) spent(t *testing.T, id string, name string, budget int, act func()) {
	t.Helper()
	before := map[string]bool{}
	for _, e := range s.executionsOf(t, id, "") {
		before[e.GetExecution().GetRunId()] = true
	}
	act()
	var started []*workflowpb.WorkflowExecutionInfo
	require.Eventually(t, func() bool {
		started = started[:0]
		for _, e := range s.executionsOf(t, id, "") {
			if !before[e.GetExecution().GetRunId()] {
				started = append(started, e)
			}
		}
		return len(started) > 0 && s.running(t, id) == 0
	}, time.Minute, 50*time.Millisecond)
	n := 0
	for _, e := range started {
		n += len(s.history(t, e.GetExecution().GetWorkflowId(), e.GetExecution().GetRunId()).Events)
	}
	t.Logf("%s: %d history events (budget %d)", name, n, budget)
	require.LessOrEqual(t, n, budget, name)
}

// TestBudget_HistoryEventsPerOrganizationEvent: an organization's and a
// membership's events cost what a user's do.
func TestBudget_HistoryEventsPerOrganizationEvent(t *testing.T) {
	t.Parallel()
	s := startSystem(t)
	now := time.Now().Truncate(time.Millisecond)
	const id = "org_budget"
	org := clerkwebhook.OrganizationFields{ClerkID: id, Name: "Budget", Slug: "budget", CreatedAt: now, UpdatedAt: now}
	member := clerkwebhook.MembershipFields{ClerkID: "orgmem_budget", UserID: "user_budget_member", Role: "org:member",
		Organization: org, CreatedAt: now, UpdatedAt: now.Add(time.Second)}
	for _, step := range []struct {
		name string
		body func() ([]byte, error)
	}{
		{"organization.created", func() ([]byte, error) { return clerkwebhook.OrganizationEvent("organization.created", org) }},
		{"organizationMembership.created", func() ([]byte, error) {
			return clerkwebhook.MembershipEvent("organizationMembership.created", member)
		}},
		{"organizationMembership.deleted", func() ([]byte, error) {
			return clerkwebhook.MembershipEvent("organizationMembership.deleted", member)
		}},
		{"organization.deleted", func() ([]byte, error) { return clerkwebhook.OrganizationDeletedEvent(id, "budget", now) }},
	} {
		body, err := step.body()
		require.NoError(t, err)
		s.spent(t, id, step.name, updateBudget, func() { require.Equal(t, http.StatusOK, s.post(t, "msg_"+step.name, body)) })
	}
	require.Zero(t, s.count(t, "select count(*) from organizations"))
}

// runsOf counts the executions carrying the user's ClerkUserId.
func (s *system) runsOf(t *testing.T, clerkID string) int {
	t.Helper()
	return len(s.executionsOf(t, clerkID, ""))
}

// running counts the user's running executions.
func (s *system) running(t *testing.T, clerkID string) int {
	t.Helper()
	return len(s.executionsOf(t, clerkID, " AND ExecutionStatus = 'Running'"))
}

// historyEventsOf sums the history events of every execution carrying the
// user's ClerkUserId.
func (s *system) historyEventsOf(t *testing.T, clerkID string) int {
	t.Helper()
	total := 0
	for _, e := range s.executionsOf(t, clerkID, "") {
		total += len(s.history(t, e.GetExecution().GetWorkflowId(), e.GetExecution().GetRunId()).Events)
	}
	return total
}

// executionsOf lists the executions carrying the Clerk ID: a user's
// ClerkUserId, or an organization's ClerkOrganizationId (org_...).
func (s *system) executionsOf(t *testing.T, clerkID, and string) []*workflowpb.WorkflowExecutionInfo {
	t.Helper()
	key := contract.ClerkUserIDKey.GetName()
	if strings.HasPrefix(clerkID, "org_") {
		key = contract.ClerkOrganizationIDKey.GetName()
	}
	resp, err := s.temporal.ListWorkflow(context.Background(), &workflowservice.ListWorkflowExecutionsRequest{
		Query: fmt.Sprintf("%s = '%s'%s", key, clerkID, and),
	})
	require.NoError(t, err)
	return resp.GetExecutions()
}
