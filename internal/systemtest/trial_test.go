package systemtest

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/clerksync/clerksync/internal/clerkwebhook"
	"github.com/clerksync/clerksync/internal/config"
	"github.com/clerksync/clerksync/internal/testsupport/clerkfake"
	"github.com/clerksync/clerksync/workflows"
)

// TestTrial_OneTrialPerUserExpiringWhileTheWorkerIsDown: the signup reaches
// clerksync four times (user.created three times, and an ensure), yet the
// user gets one subscription, written in the transaction that first writes
// the user's data. The trial ends while no
// worker runs; the expiry Schedule's run waits for a worker and expires it
// when one is back.
func TestTrial_OneTrialPerUserExpiringWhileTheWorkerIsDown(t *testing.T) {
	t.Parallel()
	const period = 4 * time.Second
	s := startSystem(t, func(c *config.Config) { c.TrialPeriod = period })
	const id = "user_trial"
	created := time.Now().Truncate(time.Millisecond)
	s.clerk.PutUser(clerkfake.User{ID: id, Email: "trial@example.com", CreatedAt: created, UpdatedAt: created})
	body, err := clerkwebhook.UserEvent("user.created", clerkwebhook.UserFields{
		ClerkID: id, Email: "trial@example.com", CreatedAt: created, UpdatedAt: created,
	})
	require.NoError(t, err)
	for i := range 3 {
		require.Equal(t, http.StatusOK, s.post(t, fmt.Sprintf("msg_trial_%d", i), body))
	}
	code, u := s.ensureCall(t, s.token(t, id))
	require.Equal(t, http.StatusOK, code)
	require.NotEmpty(t, u.ID)
	require.Eventually(t, func() bool {
		return s.count(t, "select count(*) from subscriptions where status = 'trialing' and plan = 'trial'") == 1
	}, 30*time.Second, 50*time.Millisecond)
	sub, err := s.store.TrialByClerkID(context.Background(), id)
	require.NoError(t, err)
	require.True(t, created.Add(period).Equal(*sub.TrialEndsAt), "ends at Clerk's created_at + TRIAL_PERIOD")

	s.stopWorker()
	time.Sleep(time.Until(created.Add(period + 2*time.Second))) // the trial ends, the schedule fires, nobody polls
	require.Equal(t, 1, s.count(t, "select count(*) from subscriptions where status = 'trialing'"))
	s.startWorker()
	require.Eventually(t, func() bool {
		return s.count(t, "select count(*) from subscriptions where status = 'expired'") == 1
	}, 30*time.Second, 100*time.Millisecond, "the trial never expired")
	require.Equal(t, 1, s.count(t, "select count(*) from subscriptions"))

	desc, err := s.temporal.ScheduleClient().GetHandle(context.Background(), workflows.TrialExpiryScheduleID(s.taskQueue)).Describe(context.Background())
	require.NoError(t, err)
	require.NotEmpty(t, desc.Info.RecentActions, "operators see the schedule's runs")
}

// TestTrial_NoneForAnOldUserAndGoneWithADeletedOne: a user whose trial would
// have ended before clerksync first saw it gets none; a deleted user's trial
// goes with the row.
func TestTrial_NoneForAnOldUserAndGoneWithADeletedOne(t *testing.T) {
	t.Parallel()
	s := startSystem(t)
	old := time.Now().Add(-30 * 24 * time.Hour).Truncate(time.Millisecond)
	body, err := clerkwebhook.UserEvent("user.created", clerkwebhook.UserFields{ClerkID: "user_trial_old", CreatedAt: old, UpdatedAt: old})
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, s.post(t, "msg_old", body))

	const id = "user_trial_deleted"
	created := time.Now().Truncate(time.Millisecond)
	body, err = clerkwebhook.UserEvent("user.created", clerkwebhook.UserFields{ClerkID: id, CreatedAt: created, UpdatedAt: created})
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, s.post(t, "msg_td_created", body))
	require.Eventually(t, func() bool { return s.count(t, "select count(*) from users") == 2 },
		30*time.Second, 100*time.Millisecond)
	require.Equal(t, 1, s.count(t, "select count(*) from subscriptions"), "the new user's trial only")

	deleted, err := clerkwebhook.DeletedEvent(id, time.Now())
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, s.post(t, "msg_td_deleted", deleted))
	require.Eventually(t, func() bool { return s.count(t, "select count(*) from subscriptions") == 0 },
		30*time.Second, 100*time.Millisecond, "the subscription goes with the user's cascade")
}
