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
		return err == nil && got.Row != nil && got.Trial != nil && got.User.State != nil && got.User.State.UserID != ""
	}, 30*time.Second, 100*time.Millisecond)
	require.Equal(t, "s@example.com", *got.Row.Email)
	require.Equal(t, "Running", got.User.Status)
	require.Equal(t, got.Row.ID, got.User.State.UserID)
	require.Equal(t, "synced", got.User.State.SyncState)
	require.Equal(t, "Running", got.Trial.Status)

	deleted, err := clerkwebhook.DeletedEvent(id, time.Now())
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, s.post(t, "msg_status_del", deleted))
	require.Eventually(t, func() bool {
		got, err = lookupStatus(ctx, s.store, s.temporal, id)
		return err == nil && got.Deleted && got.Trial.Status == "Canceled"
	}, 30*time.Second, 100*time.Millisecond)
	require.Nil(t, got.Row)
}
