package workflows

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"

	"github.com/clerksync/clerksync/activities"
	"github.com/clerksync/clerksync/internal/clerkevent"
	"github.com/clerksync/clerksync/internal/store"
)

// trialBundle runs a TrialWorkflow whose activities record their calls.
type trialBundle struct {
	created, expireCalls int
	expireAnswer         bool
}

func runTrial(t *testing.T, createdAgo time.Duration, expireAnswer bool, cancelAfter time.Duration) (*trialBundle, TrialOutcome, error, time.Duration) {
	t.Helper()
	env := newEnv()
	env.RegisterActivity(a)
	b := &trialBundle{expireAnswer: expireAnswer}
	env.OnActivity(a.CreateTrialSubscription, mock.Anything, mock.Anything).Return(
		func(context.Context, activities.TrialInput) (store.TrialOutcome, error) {
			b.created++
			return store.TrialCreated, nil
		}).Maybe()
	env.OnActivity(a.ExpireTrial, mock.Anything, mock.Anything).Return(
		func(context.Context, string) (bool, error) {
			b.expireCalls++
			return b.expireAnswer, nil
		}).Maybe()
	if cancelAfter > 0 {
		env.RegisterDelayedCallback(env.CancelWorkflow, cancelAfter)
	}
	start := env.Now()
	env.ExecuteWorkflow(TrialWorkflow, activities.TrialInput{
		ClerkID: testClerkID, ClerkCreatedAt: start.Add(-createdAgo), Period: 14 * 24 * time.Hour,
	})
	require.True(t, env.IsWorkflowCompleted())
	var outcome TrialOutcome
	err := env.GetWorkflowError()
	if err == nil {
		require.NoError(t, env.GetWorkflowResult(&outcome))
	}
	return b, outcome, err, env.Now().Sub(start)
}

func TestTrial_ExpiresAtTheEnd(t *testing.T) {
	t.Parallel()
	b, outcome, err, took := runTrial(t, 24*time.Hour, true, 0)
	require.NoError(t, err)
	require.Equal(t, TrialExpired, outcome)
	require.Equal(t, 1, b.created)
	require.Equal(t, 1, b.expireCalls)
	require.Equal(t, 13*24*time.Hour, took.Round(time.Minute), "the end is Clerk's created_at plus the period")
}

func TestTrial_UpgradedSubscriptionIsLeftAlone(t *testing.T) {
	t.Parallel()
	_, outcome, err, _ := runTrial(t, 0, false, 0)
	require.NoError(t, err)
	require.Equal(t, TrialLeftAlone, outcome)
}

func TestTrial_CancelledByDeletionBeforeTheEnd(t *testing.T) {
	t.Parallel()
	b, _, err, _ := runTrial(t, 0, true, 3*24*time.Hour)
	require.True(t, temporal.IsCanceledError(err), "got %v", err)
	require.Equal(t, 1, b.created)
	require.Zero(t, b.expireCalls, "a cancelled trial is never expired")
}

func TestTrial_OldUserGetsNoTrial(t *testing.T) {
	t.Parallel()
	b, outcome, err, _ := runTrial(t, 15*24*time.Hour, true, 0)
	require.NoError(t, err)
	require.Equal(t, TrialTooLate, outcome)
	require.Zero(t, b.created)
}

func TestUserWorkflow_StartsTrialOnceWithClerkCreatedAt(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var starts []activities.StartTrialInput
	b.env.OnActivity(a.StartTrial, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.StartTrialInput) error {
			starts = append(starts, in)
			return nil
		})
	created := epoch.Add(-time.Hour)
	withCreated := func(ev clerkevent.Event) clerkevent.Event {
		ev.User.ClerkCreatedAt = created
		return ev
	}
	b.at(1*time.Second, withCreated(update("msg_1", 1)))
	b.at(10*time.Second, withCreated(update("msg_2", 2)))
	b.run(t, UserWorkflowInput{TrialPeriod: 72 * time.Hour})
	require.NoError(t, b.env.GetWorkflowError())
	require.Len(t, starts, 1)
	require.Equal(t, "trial/"+testClerkID, starts[0].WorkflowID)
	require.Equal(t, activities.TrialInput{ClerkID: testClerkID, ClerkCreatedAt: created, Period: 72 * time.Hour}, starts[0].Trial)
	require.True(t, b.state(t).TrialRequested)
}
