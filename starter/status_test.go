package main

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/clerksync/clerksync/internal/clerkwebhook"
)

func TestStatus_ShowsRowWorkflowStateAndTrial(t *testing.T) {
	t.Parallel()
	s := startSystem(t)
	ctx := context.Background()
	const id = "user_status"

	got, err := lookupStatus(ctx, s.store, s.temporal, id)
	require.NoError(t, err)
	require.Equal(t, userStatus{ClerkID: id}, got, "an unknown user has nothing")

	now := time.Now().Truncate(time.Millisecond)
	body, err := clerkwebhook.UserEvent("user.created", clerkwebhook.UserFields{ClerkID: id, Email: "s@example.com", CreatedAt: now, UpdatedAt: now})
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, s.post(t, "msg_status", body))
	require.Eventually(t, func() bool {
		got, err = lookupStatus(ctx, s.store, s.temporal, id)
		return err == nil && got.Row != nil && got.User != nil && got.User.Status == "Completed"
	}, 30*time.Second, 100*time.Millisecond)
	require.Equal(t, "s@example.com", *got.Row.Email)
	require.NotNil(t, got.User.State, got.User.StateError)
	require.Equal(t, got.Row.ID, got.User.State.UserID)
	require.Equal(t, "synced", got.User.State.SyncState)
	require.NotNil(t, got.Trial)
	require.Equal(t, "trialing", got.Trial.Status)
	require.WithinDuration(t, now.Add(s.trialPeriod), *got.Trial.TrialEndsAt, time.Millisecond)

	deleted, err := clerkwebhook.DeletedEvent(id, time.Now())
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, s.post(t, "msg_status_del", deleted))
	require.Eventually(t, func() bool {
		got, err = lookupStatus(ctx, s.store, s.temporal, id)
		return err == nil && got.Deleted
	}, 30*time.Second, 100*time.Millisecond)
	require.Nil(t, got.Row)
	require.Nil(t, got.Trial, "the trial went with the user's row")
}
