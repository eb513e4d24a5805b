package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/clerksync/clerksync/internal/config"
	"github.com/clerksync/clerksync/internal/syncworker"
	"github.com/clerksync/clerksync/internal/testsupport/clerkfake"
	"github.com/clerksync/clerksync/internal/testsupport/testenv"
)

// TestBackfillCommands: `starter backfill` follows its run to a summary,
// `starter reconcile` reports the safety stop and fails, and `starter
// schedule` creates, lists and deletes the reconciliation Schedule.
func TestBackfillCommands(t *testing.T) {
	st, _ := testenv.Store(t)
	tc := testenv.Temporal(t)
	fake := clerkfake.Start(t)
	taskQueue := "cli-" + strings.ToLower(t.Name())
	cfg := config.Config{ClerkAPIURL: fake.URL(), ClerkSecretKey: clerkfake.SecretKey}
	w := syncworker.New(tc, syncworker.Options{TaskQueue: taskQueue, Store: st, Clerk: cfg.ClerkClient()})
	require.NoError(t, w.Start())
	t.Cleanup(w.Stop)
	t.Setenv("TEMPORAL_ADDRESS", testenv.TemporalAddress(t))
	t.Setenv("TEMPORAL_TASK_QUEUE", taskQueue)

	created := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	for i := range 1200 {
		fake.PutUser(clerkfake.User{ID: fmt.Sprintf("user_cli%04d", i), CreatedAt: created.Add(time.Duration(i) * time.Millisecond), UpdatedAt: created})
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx := context.Background()
	var out bytes.Buffer
	require.NoError(t, run(ctx, []string{"backfill", "--name", "cli"}, &out, logger))
	require.Contains(t, out.String(), "backfill/cli done")
	require.Contains(t, out.String(), "1200 users listed; 1200 created")
	require.Equal(t, 1200, countRows(t, st.Pool(), "users"))

	for i := range 1000 {
		fake.DeleteUser(fmt.Sprintf("user_cli%04d", i))
	}
	out.Reset()
	err := run(ctx, []string{"reconcile", "--name", "cli-reconcile"}, &out, logger)
	require.ErrorContains(t, err, "nothing was removed")
	require.Contains(t, out.String(), "safety stop: 1000 local users are not in Clerk's listing")
	require.Equal(t, 1200, countRows(t, st.Pool(), "users"))

	out.Reset()
	require.NoError(t, run(ctx, []string{"schedule", "reconcile", "--every", "1h"}, &out, logger))
	require.NoError(t, run(ctx, []string{"schedule", "reconcile", "--every", "2h"}, &out, logger), "idempotent")
	out.Reset()
	require.Eventually(t, func() bool {
		out.Reset()
		return run(ctx, []string{"schedule", "list"}, &out, logger) == nil && strings.Contains(out.String(), "reconcile/"+taskQueue)
	}, 30*time.Second, 200*time.Millisecond, "schedule list: %s", &out)
	require.NoError(t, run(ctx, []string{"schedule", "delete", "reconcile"}, &out, logger))
}
