package workflows

import (
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/clerksync/clerksync/activities"
)

// ErasureScheduleID names the Schedule that runs ErasureWorkflow on a task
// queue: one per clerksync deployment that erases deleted users' histories
// (ERASE_DELETED_HISTORIES).
func ErasureScheduleID(taskQueue string) string { return "erasure/" + taskQueue }

// erasureOptions let a sweep of many deletions (a reconciliation's) run
// long while it shows it is alive, and retry what Temporal refused.
var erasureOptions = workflow.ActivityOptions{
	StartToCloseTimeout: time.Hour,
	HeartbeatTimeout:    time.Minute,
	RetryPolicy:         retryForever,
}

// ErasureWorkflow deletes from Temporal every closed run of each deleted
// user's and organization's workflow that asked for it (its deletion, and
// every later run refused by the tombstone), once none of the entity's
// runs is running, and returns what it did. One Temporal Schedule starts it
// every ERASURE_INTERVAL: a run cannot delete itself, so the run that
// records a deletion is erased by the next sweep after it closes.
func ErasureWorkflow(ctx workflow.Context) (activities.ErasureResult, error) {
	ctx = workflow.WithActivityOptions(ctx, erasureOptions)
	var a *activities.Activities
	var res activities.ErasureResult
	err := workflow.ExecuteActivity(ctx, a.EraseDeletedHistories).Get(ctx, &res)
	return res, err
}
