package workflows

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/clerksync/clerksync/activities"
	"github.com/clerksync/clerksync/ensure/contract"
	"github.com/clerksync/clerksync/internal/clerkevent"
)

const testClerkID = "user_2abc"

// writeTime is how long a mocked write takes in workflow time; events sent
// meanwhile queue up as signals do behind a real write.
const writeTime = 5 * time.Second

var (
	a     *activities.Activities
	epoch = time.UnixMilli(1_700_000_000_000).UTC()
)

// bundle is a test environment whose activity mocks record what the workflow
// wrote, in order.
type bundle struct {
	// erased are the erasures a run asked for.
	erased   []activities.RequestErasureInput
	env      *testsuite.TestWorkflowEnvironment
	upserted []time.Time // versions passed to UpsertUser
	deleted  int
}

// newEnv returns a test environment that logs only warnings and errors.
func newEnv() *testsuite.TestWorkflowEnvironment {
	var s testsuite.WorkflowTestSuite
	s.SetLogger(log.NewStructuredLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))))
	env := s.NewTestWorkflowEnvironment()
	return env
}

func setup(t *testing.T) *bundle {
	t.Helper()
	return setupWith(t, activities.RemovalResult{Removed: true})
}

// setupWith is setup whose DeleteUser answers deleted.
func setupWith(t *testing.T, deleted activities.RemovalResult) *bundle {
	t.Helper()
	b := &bundle{env: newEnv()}
	b.env.RegisterActivity(a)
	b.env.OnActivity(a.UpsertUser, mock.Anything, mock.Anything).Return(
		func(_ context.Context, u clerkevent.User) (activities.UpsertUserResult, error) {
			b.upserted = append(b.upserted, u.ClerkUpdatedAt)
			return activities.UpsertUserResult{UserID: "uuid-1", Outcome: activities.Updated}, nil
		}).After(writeTime).Maybe()
	b.env.OnActivity(a.DeleteUser, mock.Anything, mock.Anything).Return(
		func(_ context.Context, _ activities.DeleteUserInput) (activities.RemovalResult, error) {
			b.deleted++
			return deleted, nil
		}).After(writeTime).Maybe()
	b.env.OnActivity(a.RequestErasure, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.RequestErasureInput) error {
			b.erased = append(b.erased, in)
			return nil
		}).Maybe()
	return b
}

// at sends ev to the workflow after d of workflow time. A UserWorkflow is
// started by signal-with-start, so every test sends its first event at 0;
// later ones arrive while a write is in progress, or after the run ended.
func (b *bundle) at(d time.Duration, ev clerkevent.Event) {
	b.env.RegisterDelayedCallback(func() { b.env.SignalWorkflow(contract.ClerkEventSignal, ev) }, d)
}

func (b *bundle) run(t *testing.T, in UserWorkflowInput) {
	t.Helper()
	if in.ClerkID == "" {
		in.ClerkID = testClerkID
	}
	b.env.ExecuteWorkflow(UserWorkflow, in)
	require.True(t, b.env.IsWorkflowCompleted())
}

func (b *bundle) state(t *testing.T) UserState {
	t.Helper()
	return queryState(t, b.env)
}

// queryState asks the test workflow for its UserState.
func queryState(t *testing.T, env *testsuite.TestWorkflowEnvironment) UserState {
	t.Helper()
	v, err := env.QueryWorkflow(contract.StateQuery)
	require.NoError(t, err)
	var s UserState
	require.NoError(t, v.Get(&s))
	return s
}

func update(svixID string, version int) clerkevent.Event {
	return clerkevent.Event{
		ID: svixID, Type: clerkevent.UserUpdated, ClerkID: testClerkID,
		User: &clerkevent.User{ClerkID: testClerkID, ClerkUpdatedAt: epoch.Add(time.Duration(version) * time.Second)},
	}
}

func deletion(svixID string) clerkevent.Event {
	return clerkevent.Event{ID: svixID, Type: clerkevent.UserDeleted, ClerkID: testClerkID}
}

func v(version int) time.Time { return epoch.Add(time.Duration(version) * time.Second) }

func TestUserWorkflow_WritesOnlyNewestOfEventsQueuedBehindAWrite(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.at(0, update("msg_1", 1)) // written from 0s to 5s
	b.at(1*time.Second, update("msg_4", 4))
	b.at(2*time.Second, update("msg_2", 2))
	b.at(3*time.Second, update("msg_3", 3))
	b.run(t, UserWorkflowInput{})
	require.NoError(t, b.env.GetWorkflowError())
	require.Equal(t, []time.Time{v(1), v(4)}, b.upserted)
	require.Equal(t, v(4), b.state(t).Version)
}

func TestUserWorkflow_DropsStaleVersionsArrivingLate(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.at(0, update("msg_1", 1))
	b.at(1*time.Second, update("msg_3", 3))
	b.at(7*time.Second, update("msg_2", 2))  // reordered by Svix: older than what is applied
	b.at(8*time.Second, update("msg_3b", 3)) // same version and content, new message: still stale
	b.run(t, UserWorkflowInput{})
	require.NoError(t, b.env.GetWorkflowError())
	require.Equal(t, []time.Time{v(1), v(3)}, b.upserted)
}

func TestUserWorkflow_DropsRedeliveredMessages(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.at(0, update("msg_1", 1))
	b.at(1*time.Second, update("msg_1", 1))
	b.at(2*time.Second, update("msg_2", 2))
	b.at(3*time.Second, update("msg_2", 2))
	b.run(t, UserWorkflowInput{})
	require.Equal(t, []time.Time{v(1), v(2)}, b.upserted)
	require.Equal(t, []string{"msg_1", "msg_2"}, b.state(t).RecentEventIDs)
}

func TestUserWorkflow_DeleteIsFinal(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.at(0, update("msg_1", 1))              // written from 0s to 5s
	b.at(1*time.Second, deletion("msg_del")) // deleted from 5s to 10s
	b.at(7*time.Second, update("msg_9", 9))  // late update, even with a newer version
	b.at(8*time.Second, deletion("msg_del2"))
	b.run(t, UserWorkflowInput{})
	require.NoError(t, b.env.GetWorkflowError())
	require.Equal(t, []time.Time{v(1)}, b.upserted)
	require.Equal(t, 1, b.deleted)
	s := b.state(t)
	require.True(t, s.Deleted)
	require.Equal(t, contract.SyncStateDeleted, s.SyncState)
	require.Equal(t, []activities.RequestErasureInput{{Entity: contract.User, ClerkID: testClerkID}}, b.erased,
		"the run that deleted the user asks, once, for its runs to be erased")
}

func TestUserWorkflow_DeleteWinsOverUpdatesArrivingTogether(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.at(0, update("msg_1", 1)) // written from 0s to 5s
	b.at(1*time.Second, update("msg_5", 5))
	b.at(2*time.Second, deletion("msg_del"))
	b.at(3*time.Second, update("msg_6", 6))
	b.run(t, UserWorkflowInput{})
	require.Equal(t, []time.Time{v(1)}, b.upserted)
	require.Equal(t, 1, b.deleted)
}

func TestUserWorkflow_TombstonedUpsertMarksUserDeleted(t *testing.T) {
	t.Parallel()
	env := newEnv()
	env.RegisterActivity(a)
	env.OnActivity(a.RequestErasure, mock.Anything, mock.Anything).Return(nil).Maybe()
	calls := 0
	env.OnActivity(a.UpsertUser, mock.Anything, mock.Anything).Return(
		func(_ context.Context, _ clerkevent.User) (activities.UpsertUserResult, error) {
			calls++
			return activities.UpsertUserResult{Outcome: activities.Tombstoned}, nil
		}).After(writeTime)
	env.RegisterDelayedCallback(func() { env.SignalWorkflow(contract.ClerkEventSignal, update("msg_1", 1)) }, 0)
	env.RegisterDelayedCallback(func() { env.SignalWorkflow(contract.ClerkEventSignal, update("msg_2", 2)) }, time.Second)
	env.ExecuteWorkflow(UserWorkflow, UserWorkflowInput{ClerkID: testClerkID})
	require.NoError(t, env.GetWorkflowError())
	require.Equal(t, 1, calls, "a user the database knows as deleted gets no more writes")
}

// TestUserWorkflow_CompletesWhenDrained: a run lives only as long as it has
// work, and ends with the outcome in ClerkSyncState.
func TestUserWorkflow_CompletesWhenDrained(t *testing.T) {
	t.Parallel()
	b := setup(t)
	start := b.env.Now()
	b.at(0, update("msg_1", 1))
	b.run(t, UserWorkflowInput{})
	require.NoError(t, b.env.GetWorkflowError())
	require.Equal(t, []time.Time{v(1)}, b.upserted)
	require.Less(t, b.env.Now().Sub(start), writeTime+2*time.Second, "no idle wait after the write")
	require.Equal(t, contract.SyncStateSynced, b.state(t).SyncState)
}

func TestUserWorkflow_ContinuesAsNewCarryingState(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.at(0, update("msg_1", 1)) // written from 0s to 5s
	b.at(1*time.Second, update("msg_2", 2))
	b.at(2*time.Second, update("msg_3", 3))
	b.run(t, UserWorkflowInput{MaxEventsPerRun: 2})
	err := b.env.GetWorkflowError()
	var can *workflow.ContinueAsNewError
	require.True(t, errors.As(err, &can), "want continue-as-new, got %v", err)
	var next UserWorkflowInput
	require.NoError(t, converter.GetDefaultDataConverter().FromPayloads(can.Input, &next))
	require.Equal(t, testClerkID, next.ClerkID)
	require.Equal(t, 2, next.MaxEventsPerRun)
	require.Equal(t, v(3), next.State.Version)
	require.Equal(t, []string{"msg_1", "msg_2", "msg_3"}, next.State.RecentEventIDs)
	require.Equal(t, []time.Time{v(1), v(3)}, b.upserted)
}

func TestUserWorkflow_ContinuedRunRemembersVersionAndMessages(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.at(0, update("msg_2", 2)) // redelivery from the previous run
	b.at(0, update("msg_1", 1)) // stale against the carried version
	b.at(0, update("msg_3", 3))
	b.run(t, UserWorkflowInput{State: UserState{Version: v(2), RecentEventIDs: []string{"msg_2"}}})
	require.NoError(t, b.env.GetWorkflowError())
	require.Equal(t, []time.Time{v(3)}, b.upserted)
}

func TestUserWorkflow_PermanentFailureDoesNotBlockLaterEvents(t *testing.T) {
	t.Parallel()
	env := newEnv()
	env.RegisterActivity(a)
	env.OnActivity(a.RequestErasure, mock.Anything, mock.Anything).Return(nil).Maybe()
	var written []time.Time
	env.OnActivity(a.UpsertUser, mock.Anything, mock.Anything).Return(
		func(_ context.Context, u clerkevent.User) (activities.UpsertUserResult, error) {
			if u.ClerkUpdatedAt.Equal(v(1)) {
				return activities.UpsertUserResult{}, temporal.NewNonRetryableApplicationError(
					"invalid byte sequence", activities.ErrTypeInvalidUserData, nil)
			}
			written = append(written, u.ClerkUpdatedAt)
			return activities.UpsertUserResult{UserID: "uuid-1", Outcome: activities.Updated}, nil
		}).After(writeTime)
	env.RegisterDelayedCallback(func() { env.SignalWorkflow(contract.ClerkEventSignal, update("msg_1", 1)) }, 0)
	env.RegisterDelayedCallback(func() { env.SignalWorkflow(contract.ClerkEventSignal, update("msg_2", 2)) }, time.Second)
	env.ExecuteWorkflow(UserWorkflow, UserWorkflowInput{ClerkID: testClerkID})
	require.NoError(t, env.GetWorkflowError())
	require.Equal(t, []time.Time{v(2)}, written)
	s := queryState(t, env)
	require.Equal(t, contract.SyncStateFailed, s.SyncState, "the run that had a failure ends failed, for operators to find")
	require.Len(t, s.Failed, 1)
	require.Equal(t, "msg_1", s.Failed[0].EventID)
	require.Contains(t, s.Failed[0].Error, "invalid byte sequence")
}

func TestUserWorkflow_RemembersBoundedNumberOfMessageIDs(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for i := 1; i <= recentEventIDs+10; i++ {
		b.at(time.Duration(i-1)*time.Second, update(fmt.Sprintf("msg_%d", i), i))
	}
	b.run(t, UserWorkflowInput{})
	ids := b.state(t).RecentEventIDs
	require.Len(t, ids, recentEventIDs)
	require.Equal(t, fmt.Sprintf("msg_%d", recentEventIDs+10), ids[len(ids)-1])
	require.Equal(t, "msg_11", ids[0])
}

// TestUserWorkflow_ResentFailedEventApplies: an event that failed for good
// is forgotten, so a Svix Resend of the same message (after the cause is
// fixed) applies instead of being dropped as a duplicate.
func TestUserWorkflow_ResentFailedEventApplies(t *testing.T) {
	t.Parallel()
	env := newEnv()
	env.RegisterActivity(a)
	env.OnActivity(a.RequestErasure, mock.Anything, mock.Anything).Return(nil).Maybe()
	var written []time.Time
	calls := 0
	env.OnActivity(a.UpsertUser, mock.Anything, mock.Anything).Return(
		func(_ context.Context, u clerkevent.User) (activities.UpsertUserResult, error) {
			calls++
			if calls == 1 {
				return activities.UpsertUserResult{}, temporal.NewNonRetryableApplicationError(
					"value too long", activities.ErrTypeInvalidUserData, nil)
			}
			written = append(written, u.ClerkUpdatedAt)
			return activities.UpsertUserResult{UserID: "uuid-1", Outcome: activities.Updated}, nil
		}).After(writeTime)
	env.RegisterDelayedCallback(func() { env.SignalWorkflow(contract.ClerkEventSignal, update("msg_1", 1)) }, 0)
	env.RegisterDelayedCallback(func() { env.SignalWorkflow(contract.ClerkEventSignal, update("msg_1", 1)) }, time.Second) // resent while the first attempt fails
	env.ExecuteWorkflow(UserWorkflow, UserWorkflowInput{ClerkID: testClerkID})
	require.NoError(t, env.GetWorkflowError())
	require.Equal(t, []time.Time{v(1)}, written, "the resend applied")
}

// TestUserWorkflow_EqualVersionsKeepTheGreaterHashInEveryOrder: two
// different payloads with the same updated_at end on the same row whichever
// arrives first.
func TestUserWorkflow_EqualVersionsKeepTheGreaterHashInEveryOrder(t *testing.T) {
	t.Parallel()
	named := func(id, first string) clerkevent.Event {
		ev := update(id, 1)
		ev.User.FirstName = &first
		return ev
	}
	x, y := named("msg_x", "Ada"), named("msg_y", "Grace")
	winner := "Ada"
	if y.User.ContentHash() > x.User.ContentHash() {
		winner = "Grace"
	}
	for _, order := range [][2]clerkevent.Event{{x, y}, {y, x}} {
		env := newEnv()
		env.RegisterActivity(a)
		env.OnActivity(a.RequestErasure, mock.Anything, mock.Anything).Return(nil).Maybe()
		var last string
		env.OnActivity(a.UpsertUser, mock.Anything, mock.Anything).Return(
			func(_ context.Context, u clerkevent.User) (activities.UpsertUserResult, error) {
				last = *u.FirstName
				return activities.UpsertUserResult{UserID: "uuid-1", Outcome: activities.Updated}, nil
			}).After(writeTime)
		env.RegisterDelayedCallback(func() { env.SignalWorkflow(contract.ClerkEventSignal, order[0]) }, 0)
		env.RegisterDelayedCallback(func() { env.SignalWorkflow(contract.ClerkEventSignal, order[1]) }, time.Second)
		env.ExecuteWorkflow(UserWorkflow, UserWorkflowInput{ClerkID: testClerkID})
		require.NoError(t, env.GetWorkflowError())
		require.Equal(t, winner, last, "order %s then %s", order[0].ID, order[1].ID)
	}
}

// TestUserWorkflow_RefusedRowRemovalShowsFailedAndRetries: the database
// refuses to remove a deleted user's row (a product foreign key without ON
// DELETE CASCADE). The deletion still takes effect (later events are
// dropped), the user shows failed with the database's message, and the
// removal retries until it lands; then the run asks for its erasure.
func TestUserWorkflow_RefusedRowRemovalShowsFailedAndRetries(t *testing.T) {
	t.Parallel()
	const refusal = `ERROR: update or delete on table "users" violates foreign key constraint "orders_user_id_fkey" (SQLSTATE 23503)`
	b := setupWith(t, activities.RemovalResult{RowKept: refusal})
	removals := 0
	b.env.OnActivity(a.RemoveDeletedUser, mock.Anything, mock.Anything).Return(
		func(context.Context, string) (activities.RemovalResult, error) {
			removals++
			if removals < 5 {
				return activities.RemovalResult{}, errors.New(refusal)
			}
			return activities.RemovalResult{Removed: true}, nil
		})
	b.at(0, update("msg_1", 1))              // written from 0s to 5s
	b.at(1*time.Second, deletion("msg_del")) // from 5s to 10s; then the removal retries
	b.at(12*time.Second, update("msg_9", 9)) // arrives while the row is kept
	var during UserState
	b.env.RegisterDelayedCallback(func() { during = b.state(t) }, 13*time.Second)
	b.run(t, UserWorkflowInput{})
	require.NoError(t, b.env.GetWorkflowError())
	require.Equal(t, []time.Time{v(1)}, b.upserted, "no write after the deletion")
	require.Len(t, b.erased, 1, "once the removal has landed, the run asks for its erasure, the failure it showed with it")
	require.True(t, during.Deleted)
	require.Equal(t, contract.SyncStateFailed, during.SyncState)
	require.Contains(t, during.Failed[0].Error, "SQLSTATE 23503")
	require.Equal(t, 5, removals)
	require.Equal(t, contract.SyncStateDeleted, b.state(t).SyncState)
}
