package workflows

import (
	"go.temporal.io/sdk/workflow"

	"github.com/clerksync/clerksync/activities"
)

// TrialExpiryScheduleID names the Schedule that runs TrialExpiryWorkflow on
// a task queue: one per clerksync deployment.
func TrialExpiryScheduleID(taskQueue string) string { return "trial-expiry/" + taskQueue }

// TrialExpiryWorkflow expires every trial that has ended, in SQL, and
// returns how many it expired. One Temporal Schedule starts it every
// TRIAL_EXPIRY_INTERVAL, instead of a workflow and a timer per user: a
// trial costs Temporal nothing while it runs, and the Schedule catches up
// after a worker outage like any schedule.
func TrialExpiryWorkflow(ctx workflow.Context) (int, error) {
	ctx = workflow.WithLocalActivityOptions(ctx, writeOptions)
	var a *activities.Activities
	var expired int
	err := workflow.ExecuteLocalActivity(ctx, a.ExpireDueTrials).Get(ctx, &expired)
	return expired, err
}
