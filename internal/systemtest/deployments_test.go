package systemtest

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/clerksync/clerksync/ensure/contract"
	"github.com/clerksync/clerksync/internal/clerkwebhook"
	"github.com/clerksync/clerksync/internal/config"
)

// TestDeployments_ShareANamespaceWithoutTouchingEachOther: production on
// the default task queue (v0.1.0's workflow IDs) and staging on a task
// queue of its own, each with its database, on one Temporal namespace.
// The same Clerk user's webhooks, sent to both, reach both databases (each
// deployment its own workflow); a deletion sent to production only leaves
// staging's row, and production's erasure sweep deletes production's runs
// of the user, never staging's.
func TestDeployments_ShareANamespaceWithoutTouchingEachOther(t *testing.T) {
	t.Parallel()
	erasing := func(queue string) func(*config.Config) {
		return func(c *config.Config) {
			c.TaskQueue, c.EraseDeletedHistories, c.ErasureInterval = queue, true, time.Second
		}
	}
	production := startSystem(t, erasing(contract.DefaultTaskQueue))
	staging := startSystem(t, erasing("staging-beside-production"))
	const id = "user_two_deployments"
	prodID, stagingID := contract.User.WorkflowID(production.taskQueue, id), contract.User.WorkflowID(staging.taskQueue, id)
	require.Equal(t, "user/"+id, prodID, "the default task queue keeps v0.1.0's workflow IDs")
	require.NotEqual(t, prodID, stagingID)

	created := time.Now().Truncate(time.Millisecond)
	body, err := clerkwebhook.UserEvent("user.created", clerkwebhook.UserFields{ClerkID: id, Email: "both@example.com",
		CreatedAt: created, UpdatedAt: created})
	require.NoError(t, err)
	for _, s := range []*system{production, staging} {
		require.Equal(t, http.StatusOK, s.post(t, "msg_two_deployments", body))
	}
	for _, s := range []*system{production, staging} {
		require.Eventually(t, func() bool { return s.count(t, "select count(*) from users where clerk_id = '"+id+"'") == 1 },
			30*time.Second, 50*time.Millisecond, "the user never reached %s's database", s.taskQueue)
	}
	require.Eventually(t, func() bool { return len(staging.runs(t, stagingID, " AND ExecutionStatus = 'Completed'")) == 1 },
		30*time.Second, 50*time.Millisecond)

	deleted, err := clerkwebhook.DeletedEvent(id, time.Now())
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, production.post(t, "msg_two_deployments_del", deleted))
	production.requireNoRunLeft(t, prodID, "production's")
	require.Equal(t, 1, staging.count(t, "select count(*) from users where clerk_id = '"+id+"'"), "staging's row went with production's deletion")
	// Production's sweep ran (its runs are gone) and a few more times since:
	// staging's run is still listed, on staging's task queue.
	time.Sleep(3 * time.Second)
	left := staging.runs(t, stagingID, "")
	require.Len(t, left, 1, "production's erasure deleted staging's run")
	require.Equal(t, staging.taskQueue, left[0].GetTaskQueue())
}
