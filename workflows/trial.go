package workflows

import (
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/clerksync/clerksync/activities"
	"github.com/clerksync/clerksync/internal/store"
)

// DefaultTrialPeriod is a new user's trial (TRIAL_PERIOD).
const DefaultTrialPeriod = 14 * 24 * time.Hour

// TrialWorkflowID is the workflow ID of the user's trial.
func TrialWorkflowID(clerkID string) string { return "trial/" + clerkID }

// TrialOutcome is how a TrialWorkflow ended.
type TrialOutcome string

// Trial outcomes.
const (
	// TrialTooLate: the trial would have ended before the user was first
	// seen (an old user found by a backfill); no subscription was written.
	TrialTooLate TrialOutcome = "too_late"
	// TrialNoUser: the user's row was gone (deleted) before the trial began.
	TrialNoUser TrialOutcome = "no_user"
	// TrialExpired: the trial ended and the subscription is now expired.
	TrialExpired TrialOutcome = "expired"
	// TrialLeftAlone: the product had moved the subscription on (active,
	// canceled); it was not touched.
	TrialLeftAlone TrialOutcome = "left_alone"
)

// TrialWorkflow sets up the user's trial subscription and expires it on a
// durable timer, ID trial/<clerk_id>. The end comes from Clerk's created_at,
// so it is the same however late or often the workflow starts, and the timer
// survives every restart. A user deletion cancels it (its row goes with the
// user's cascade). An operator finds users in trial with
// WorkflowType = 'TrialWorkflow' AND ExecutionStatus = 'Running', and until
// when by ClerkTrialEndsAt.
func TrialWorkflow(ctx workflow.Context, in activities.TrialInput) (TrialOutcome, error) {
	endsAt := in.EndsAt()
	if err := workflow.UpsertTypedSearchAttributes(ctx,
		ClerkUserIDKey.ValueSet(in.ClerkID), ClerkTrialEndsAtKey.ValueSet(endsAt)); err != nil {
		return "", fmt.Errorf("set search attributes: %w", err)
	}
	if !endsAt.After(workflow.Now(ctx)) {
		return TrialTooLate, nil
	}
	ctx = workflow.WithActivityOptions(ctx, userActivityOptions)
	var a *activities.Activities
	var created store.TrialOutcome
	if err := workflow.ExecuteActivity(ctx, a.CreateTrialSubscription, in).Get(ctx, &created); err != nil {
		return "", err
	}
	if created == store.TrialNoUser {
		return TrialNoUser, nil
	}
	if err := workflow.Sleep(ctx, endsAt.Sub(workflow.Now(ctx))); err != nil {
		return "", err // cancelled: the user was deleted
	}
	var expired bool
	if err := workflow.ExecuteActivity(ctx, a.ExpireTrial, in.ClerkID).Get(ctx, &expired); err != nil {
		return "", err
	}
	if !expired {
		return TrialLeftAlone, nil
	}
	return TrialExpired, nil
}

// startTrial asks for the user's trial once Clerk's created_at is known. The
// StartTrial activity is idempotent, so a repeat (a new run of this workflow,
// a retry) never makes a second trial.
func (u *userSync) startTrial(ctx workflow.Context, createdAt time.Time) error {
	if u.state.TrialRequested || createdAt.IsZero() {
		return nil
	}
	// Histories recorded before trials existed replay without this step.
	if workflow.GetVersion(ctx, "start-trial", workflow.DefaultVersion, 1) == workflow.DefaultVersion {
		return nil
	}
	var a *activities.Activities
	in := activities.StartTrialInput{
		WorkflowID: TrialWorkflowID(u.clerkID),
		TaskQueue:  workflow.GetInfo(ctx).TaskQueueName,
		Trial:      activities.TrialInput{ClerkID: u.clerkID, ClerkCreatedAt: createdAt, Period: u.trialPeriod},
	}
	if err := workflow.ExecuteActivity(ctx, a.StartTrial, in).Get(ctx, nil); err != nil {
		return u.recordFailure(ctx, userEvent("start-trial", u.clerkID), err)
	}
	u.state.TrialRequested = true
	return nil
}

// cancelTrial ends the user's trial workflow when the user is deleted.
func (u *userSync) cancelTrial(ctx workflow.Context) {
	if workflow.GetVersion(ctx, "cancel-trial", workflow.DefaultVersion, 1) == workflow.DefaultVersion {
		return
	}
	err := workflow.RequestCancelExternalWorkflow(ctx, TrialWorkflowID(u.clerkID), "").Get(ctx, nil)
	if err != nil && !temporal.IsCanceledError(err) {
		// Usually: no trial ever ran, or it already ended. Nothing to cancel.
		u.logger.Info("No trial to cancel", "error", err)
	}
}
