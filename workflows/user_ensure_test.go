package workflows

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/clerksync/clerksync/activities"
	"github.com/clerksync/clerksync/ensure/contract"
	"github.com/clerksync/clerksync/internal/clerkevent"
)

// ensureBundle records the writes of an ensure scenario; fetch answers what
// the Clerk API would.
type ensureBundle struct {
	env      *testsuite.TestWorkflowEnvironment
	upserted []time.Time
	deleted  int
	fetches  int
}

func setupEnsure(t *testing.T, fetch func(attempt int) (activities.FetchClerkUserResult, error), fetchTime time.Duration) *ensureBundle {
	t.Helper()
	b := &ensureBundle{env: newEnv()}
	b.env.RegisterActivity(a)
	b.env.OnActivity(a.UpsertUser, mock.Anything, mock.Anything).Return(
		func(_ context.Context, u clerkevent.User) (activities.UpsertUserResult, error) {
			b.upserted = append(b.upserted, u.ClerkUpdatedAt)
			outcome := activities.Updated
			if len(b.upserted) == 1 {
				outcome = activities.Inserted
			}
			return activities.UpsertUserResult{UserID: "uuid-1", Outcome: outcome}, nil
		}).Maybe()
	b.env.OnActivity(a.DeleteUser, mock.Anything, mock.Anything).Return(
		func(context.Context, activities.DeleteUserInput) (activities.RemovalResult, error) {
			b.deleted++
			return activities.RemovalResult{}, nil
		}).Maybe()
	b.env.OnActivity(a.FetchClerkUser, mock.Anything, mock.Anything).Return(
		func(context.Context, string) (activities.FetchClerkUserResult, error) {
			b.fetches++
			return fetch(b.fetches)
		}).After(fetchTime).Maybe()
	b.env.OnActivity(a.RequestErasure, mock.Anything, mock.Anything).Return(nil).Maybe()
	return b
}

func (b *ensureBundle) ensureAt(d time.Duration) {
	b.env.RegisterDelayedCallback(func() { b.env.SignalWorkflow(contract.EnsureSignal, contract.EnsureRequest{}) }, d)
}

func fetchedUser(version int) (activities.FetchClerkUserResult, error) {
	return activities.FetchClerkUserResult{User: &clerkevent.User{ClerkID: testClerkID, ClerkUpdatedAt: v(version)}}, nil
}

func TestEnsure_WritesMinimalRowThenFetchedProfile(t *testing.T) {
	t.Parallel()
	b := setupEnsure(t, func(int) (activities.FetchClerkUserResult, error) { return fetchedUser(5) }, time.Second)
	b.ensureAt(0)
	b.ensureAt(500 * time.Millisecond) // a second ensure while fetching starts nothing new
	b.env.ExecuteWorkflow(UserWorkflow, UserWorkflowInput{ClerkID: testClerkID})
	require.NoError(t, b.env.GetWorkflowError())
	require.Equal(t, []time.Time{clerkevent.MinimalVersion, v(5)}, b.upserted, "minimal row first, at the lowest version")
	require.Equal(t, 1, b.fetches)
}

func TestEnsure_ClerkAPIDownDoesNotHoldBackWebhooks(t *testing.T) {
	t.Parallel()
	// The fetch takes an hour (Clerk down, retrying); a webhook meanwhile
	// applies at once, and the fetch it makes moot is cancelled.
	b := setupEnsure(t, func(int) (activities.FetchClerkUserResult, error) { return fetchedUser(1) }, time.Hour)
	b.ensureAt(0)
	start := b.env.Now()
	b.env.RegisterDelayedCallback(func() { b.env.SignalWorkflow(contract.ClerkEventSignal, update("msg_7", 7)) }, 10*time.Second)
	b.env.ExecuteWorkflow(UserWorkflow, UserWorkflowInput{ClerkID: testClerkID})
	require.NoError(t, b.env.GetWorkflowError())
	require.Equal(t, []time.Time{clerkevent.MinimalVersion, v(7)}, b.upserted, "the stale fetch result never overwrote the webhook's")
	require.Less(t, b.env.Now().Sub(start), time.Minute, "the run ended with the webhook, not with the hour-long fetch")
}

func TestEnsure_FetchRetriesUntilClerkRecovers(t *testing.T) {
	t.Parallel()
	b := setupEnsure(t, func(attempt int) (activities.FetchClerkUserResult, error) {
		if attempt < 4 {
			return activities.FetchClerkUserResult{}, temporal.NewApplicationError("clerk answered 500", "ClerkUnavailable")
		}
		return fetchedUser(3)
	}, 0)
	b.ensureAt(0)
	b.env.ExecuteWorkflow(UserWorkflow, UserWorkflowInput{ClerkID: testClerkID})
	require.NoError(t, b.env.GetWorkflowError())
	require.Equal(t, 4, b.fetches)
	require.Equal(t, []time.Time{clerkevent.MinimalVersion, v(3)}, b.upserted)
}

// TestEnsure_ClerkNotFoundKeepsMinimalRow: a 404 from Clerk is not a
// deletion (a worker with another instance's key gets 404 for everyone). The
// minimal row stays, the user shows failed with the likely cause, the fetch
// is not repeated, and the workflow completes.
func TestEnsure_ClerkNotFoundKeepsMinimalRow(t *testing.T) {
	t.Parallel()
	b := setupEnsure(t, func(int) (activities.FetchClerkUserResult, error) {
		return activities.FetchClerkUserResult{NotFound: true}, nil
	}, time.Second)
	b.ensureAt(0)
	b.ensureAt(500 * time.Millisecond) // another ensure does not fetch again
	b.env.ExecuteWorkflow(UserWorkflow, UserWorkflowInput{ClerkID: testClerkID})
	s := b.state(t)
	require.NoError(t, b.env.GetWorkflowError())
	require.Equal(t, []time.Time{clerkevent.MinimalVersion}, b.upserted)
	require.Zero(t, b.deleted, "nothing but a signed user.deleted deletes")
	require.Equal(t, 1, b.fetches)
	require.False(t, s.Deleted)
	require.Equal(t, contract.SyncStateFailed, s.SyncState)
	require.Len(t, s.Failed, 1)
	require.Contains(t, s.Failed[0].Error, "CLERK_SECRET_KEY may belong to another Clerk instance")
}

// TestEnsure_RefusedClerkKeyFailsVisiblyAndCompletes: a missing or refused
// key can never succeed; the workflow records it and completes instead of
// retrying for ever.
func TestEnsure_RefusedClerkKeyFailsVisiblyAndCompletes(t *testing.T) {
	t.Parallel()
	b := setupEnsure(t, func(int) (activities.FetchClerkUserResult, error) {
		return activities.FetchClerkUserResult{}, temporal.NewNonRetryableApplicationError(
			"Clerk refused CLERK_SECRET_KEY (HTTP 401)", activities.ErrTypeClerkMisconfigured, nil)
	}, 0)
	b.ensureAt(0)
	b.env.ExecuteWorkflow(UserWorkflow, UserWorkflowInput{ClerkID: testClerkID})
	require.True(t, b.env.IsWorkflowCompleted())
	s := b.state(t)
	require.NoError(t, b.env.GetWorkflowError())
	require.Equal(t, 1, b.fetches, "not retried")
	require.Equal(t, contract.SyncStateFailed, s.SyncState)
	require.Contains(t, s.Failed[0].Error, "HTTP 401")
}

func (b *ensureBundle) state(t *testing.T) UserState {
	t.Helper()
	return queryState(t, b.env)
}

func TestEnsure_DeletedUserGetsNoRow(t *testing.T) {
	t.Parallel()
	b := setupEnsure(t, func(int) (activities.FetchClerkUserResult, error) { return fetchedUser(1) }, 0)
	b.env.RegisterDelayedCallback(func() { b.env.SignalWorkflow(contract.ClerkEventSignal, deletion("msg_del")) }, 0)
	b.ensureAt(0)
	b.env.ExecuteWorkflow(UserWorkflow, UserWorkflowInput{ClerkID: testClerkID})
	require.NoError(t, b.env.GetWorkflowError())
	require.Empty(t, b.upserted)
	require.Zero(t, b.fetches)
}

func TestEnsure_ExistingRowIsNotFetchedAgain(t *testing.T) {
	t.Parallel()
	b := setupEnsure(t, func(int) (activities.FetchClerkUserResult, error) { return fetchedUser(1) }, 0)
	b.env.RegisterDelayedCallback(func() { b.env.SignalWorkflow(contract.ClerkEventSignal, update("msg_2", 2)) }, 0)
	b.ensureAt(0)
	b.env.ExecuteWorkflow(UserWorkflow, UserWorkflowInput{ClerkID: testClerkID})
	require.NoError(t, b.env.GetWorkflowError())
	require.Equal(t, []time.Time{v(2)}, b.upserted)
	require.Zero(t, b.fetches)
}
