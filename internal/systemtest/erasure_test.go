package systemtest

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/api/workflowservice/v1"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/clerksync/clerksync/internal/clerkwebhook"
	"github.com/clerksync/clerksync/workflows"
)

// TestErasure_ADeletedUsersEarlierRunsLeaveTemporal: once a user's
// deletion has completed, no run of the user's workflow that carried the
// user's email or name is left in Temporal: the deleting run erased the
// signup's and the update's, found by workflow ID. A late update for the
// deleted user is still refused by the tombstone, and its run erases the
// deleting one in turn.
func TestErasure_ADeletedUsersEarlierRunsLeaveTemporal(t *testing.T) {
	t.Parallel()
	s := startSystem(t)
	const id = "user_erased"
	const email = "erasable.person@example.com"
	workflowID := workflows.UserWorkflowID(id)
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
	left := func() []string {
		var runIDs []string
		for _, e := range s.runs(t, workflowID, "") {
			runIDs = append(runIDs, e.GetExecution().GetRunId())
		}
		return runIDs
	}
	var runIDs []string
	require.Eventually(t, func() bool {
		runIDs = left()
		return len(runIDs) == 1 && len(s.runs(t, workflowID, " AND ExecutionStatus = 'Running'")) == 0
	}, erasureWait, 250*time.Millisecond, "the signup's and the update's runs are still in Temporal: %v", &runIDs)
	history, err := protojson.Marshal(s.history(t, workflowID, runIDs[0]))
	require.NoError(t, err)
	require.NotContains(t, string(history), email, "the run left holds the deletion, not the user's data")
	deletion := runIDs[0]

	late, err := clerkwebhook.UserEvent("user.updated", clerkwebhook.UserFields{ClerkID: id, Email: email, CreatedAt: created, UpdatedAt: created.Add(time.Hour)})
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, s.post(t, "msg_erase_late", late))
	require.Eventually(t, func() bool {
		runIDs = left()
		return len(runIDs) == 1 && runIDs[0] != deletion && len(s.runs(t, workflowID, " AND ExecutionStatus = 'Running'")) == 0
	}, erasureWait, 250*time.Millisecond, "the late update's run never erased the deleting run: %v", &runIDs)
	require.Zero(t, s.count(t, "select count(*) from users where clerk_id = '"+id+"'"), "the tombstone refused the late update")
	v, err := s.temporal.QueryWorkflow(context.Background(), workflowID, runIDs[0], workflows.StateQuery)
	require.NoError(t, err)
	var state workflows.UserState
	require.NoError(t, v.Get(&state))
	require.Equal(t, 1, state.ErasedRuns, "the late run erased the deleting one")
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
