package systemtest

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/api/serviceerror"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/api/workflowservice/v1"

	"github.com/clerksync/clerksync/ensure/contract"
	"github.com/clerksync/clerksync/internal/clerkwebhook"
	"github.com/clerksync/clerksync/internal/config"
	"github.com/clerksync/clerksync/internal/syncworker"
	"github.com/clerksync/clerksync/internal/testsupport/testenv"
	"github.com/clerksync/clerksync/workflows"
)

// TestErasure_NoRunOfADeletedUserIsLeftInTemporal: once a user's
// deletion has completed, the erasure sweep deletes every run of the
// user's workflow, the deleting one too, found by workflow ID. A late
// update for the deleted user is still refused by the tombstone, and the
// run it started is erased in turn. A deleted organization's runs go the
// same way.
func TestErasure_NoRunOfADeletedUserIsLeftInTemporal(t *testing.T) {
	t.Parallel()
	s := startSystem(t, func(c *config.Config) { c.EraseDeletedHistories, c.ErasureInterval = true, time.Second })
	const id = "user_erased"
	const email = "erasable.person@example.com"
	workflowID := contract.User.WorkflowID(s.taskQueue, id)
	created := time.Now().Truncate(time.Millisecond)
	for i, typ := range []string{"user.created", "user.updated"} {
		body, err := clerkwebhook.UserEvent(typ, clerkwebhook.UserFields{ClerkID: id, Email: email, FirstName: "Erasable",
			CreatedAt: created, UpdatedAt: created.Add(time.Duration(i) * time.Second)})
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, s.post(t, fmt.Sprintf("msg_erase_%d", i), body))
		require.Eventually(t, func() bool { return len(s.runs(t, workflowID, " AND ExecutionStatus = 'Completed'")) == i+1 },
			30*time.Second, 50*time.Millisecond)
	}
	deleted, err := clerkwebhook.DeletedEvent(id, time.Now())
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, s.post(t, "msg_erase_del", deleted))
	s.requireNoRunLeft(t, workflowID, "the signup's, the update's and the deletion's")

	late, err := clerkwebhook.UserEvent("user.updated", clerkwebhook.UserFields{ClerkID: id, Email: email, CreatedAt: created, UpdatedAt: created.Add(time.Hour)})
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, s.post(t, "msg_erase_late", late))
	require.Eventually(t, func() bool { return len(s.runs(t, workflowID, "")) > 0 }, 30*time.Second, 50*time.Millisecond,
		"the late update started no run")
	s.requireNoRunLeft(t, workflowID, "the late update's")
	require.Zero(t, s.count(t, "select count(*) from users where clerk_id = '"+id+"'"), "the tombstone refused the late update")
	erasure, err := s.store.ErasureOf(context.Background(), contract.User, id)
	require.NoError(t, err)
	require.False(t, erasure.Pending, "the erasure after the late run is recorded")

	// An organization's runs, its deletion's too.
	const orgID = "org_erased"
	org, err := clerkwebhook.OrganizationEvent("organization.created", clerkwebhook.OrganizationFields{ClerkID: orgID, Name: "Erasable Team",
		CreatedAt: created, UpdatedAt: created})
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, s.post(t, "msg_erase_org", org))
	require.Eventually(t, func() bool { return s.count(t, "select count(*) from organizations where clerk_id = '"+orgID+"'") == 1 },
		30*time.Second, 50*time.Millisecond)
	orgDeleted, err := clerkwebhook.OrganizationDeletedEvent(orgID, "", time.Now())
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, s.post(t, "msg_erase_org_del", orgDeleted))
	s.requireNoRunLeft(t, contract.Organization.WorkflowID(s.taskQueue, orgID), "the organization's")
}

// TestErasure_KeepingHistoriesRemovesTheSchedule: a worker that keeps
// histories removes the erasure Schedule a worker set up while erasure was
// on, and finds nothing to remove the next time.
func TestErasure_KeepingHistoriesRemovesTheSchedule(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tc := testenv.Temporal(t)
	const taskQueue = "erasure-off"
	require.NoError(t, syncworker.EnsureErasureSchedule(ctx, tc, taskQueue, time.Hour))
	handle := tc.ScheduleClient().GetHandle(ctx, workflows.ErasureScheduleID(taskQueue))
	_, err := handle.Describe(ctx)
	require.NoError(t, err)

	require.NoError(t, syncworker.RemoveErasureSchedule(ctx, tc, taskQueue))
	_, err = handle.Describe(ctx)
	var notFound *serviceerror.NotFound
	require.ErrorAs(t, err, &notFound)
	require.NoError(t, syncworker.RemoveErasureSchedule(ctx, tc, taskQueue), "nothing to remove")
}

// requireNoRunLeft waits until Temporal lists no run of workflowID (whose
// runs what names).
func (s *system) requireNoRunLeft(t *testing.T, workflowID, what string) {
	t.Helper()
	var left []string
	require.Eventually(t, func() bool {
		left = left[:0]
		for _, e := range s.runs(t, workflowID, "") {
			left = append(left, e.GetExecution().GetRunId()+" "+e.GetStatus().String())
		}
		return len(left) == 0
	}, erasureWait, 250*time.Millisecond, "%s runs of %s are still in Temporal: %v", what, workflowID, &left)
}

// erasureWait bounds how long a deleted run may still be listed: Temporal
// deletes a closed execution in a task of its own, which the dev server
// runs some 10-30 s after the request.
const erasureWait = 2 * time.Minute

// runs lists the runs of a workflow ID, by ID alone (and the extra
// condition and).
func (s *system) runs(t *testing.T, workflowID, and string) []*workflowpb.WorkflowExecutionInfo {
	t.Helper()
	resp, err := s.temporal.ListWorkflow(context.Background(), &workflowservice.ListWorkflowExecutionsRequest{
		Query: fmt.Sprintf("WorkflowId = '%s'%s", workflowID, and),
	})
	require.NoError(t, err)
	return resp.GetExecutions()
}
