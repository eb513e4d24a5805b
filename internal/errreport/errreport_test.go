package errreport_test

import (
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/clerksync/clerksync/internal/errreport"
	"github.com/clerksync/clerksync/internal/testsupport/sentryfake"
)

// TestReporter_SendsWhatNeedsAPersonAndNothingElse: the records worth a
// report reach Sentry's envelope endpoint with their IDs as tags and a link
// to the workflow run; a burst of signature failures is one report a
// minute; every other record, and every attribute not on the allowed list
// (a remote address, a reason), stays out.
func TestReporter_SendsWhatNeedsAPersonAndNothingElse(t *testing.T) {
	t.Parallel()
	sentry := sentryfake.Start(t)
	base := slog.New(slog.NewJSONHandler(io.Discard, nil)).With("process", "worker")
	logger, flush, err := errreport.Wrap(base, errreport.Options{DSN: sentry.DSN(), Process: "worker", Release: "v0.2.0-dev",
		UIURL: "https://temporal.example.com/", Namespace: "default"})
	require.NoError(t, err)

	logger.Info("Webhook accepted", "svix_id", "msg_ok", "clerk_id", "user_ok")
	logger.With("WorkflowID", "user/user_failed", "RunID", "run-1").Error("Event could not be applied",
		"svix_id", "msg_failed", "type", "user.updated", "sqlstate", "23514", "constraint", "users_role_check", "table", "public.users",
		"error", "new row violates check constraint")
	logger.With("WorkflowID", "staging/user/user_wedged", "RunID", "run-2", "ActivityType", "UpsertUser").Warn(errreport.WriteKeepsFailing,
		"attempt", 3, "error", "app_users is being migrated")
	for i := range 25 {
		logger.Warn("Webhook refused", "status", 401, "outcome", "bad_signature", "reason", "no matching signature",
			"svix_id", "msg_forged", "remote", "203.0.113.7:4000", "n", i)
	}
	logger.Warn("Webhook refused", "status", 400, "outcome", "malformed", "reason", "x")
	flush()

	require.Eventually(t, func() bool { return len(sentry.Events()) >= 3 }, 10*time.Second, 50*time.Millisecond)
	time.Sleep(200 * time.Millisecond) // nothing more is coming
	events := sentry.Events()
	require.Len(t, events, 3, "%+v", events)
	byMessage := map[string]sentryfake.Event{}
	for _, ev := range events {
		byMessage[ev.Message] = ev
		require.NotContains(t, ev.Raw, "203.0.113.7", "an attribute not on the list")
		require.NotContains(t, ev.Raw, "no matching signature")
	}
	failed := byMessage["Event could not be applied"]
	require.Equal(t, "error", failed.Level)
	require.Equal(t, map[string]string{"clerk_id": "user_failed", "svix_id": "msg_failed", "event_type": "user.updated", "sqlstate": "23514",
		"constraint": "users_role_check", "table": "public.users", "workflow_id": "user/user_failed", "run_id": "run-1", "process": "worker"},
		failed.Tags)
	require.Equal(t, "https://temporal.example.com/namespaces/default/workflows/user%2Fuser_failed/run-1/history",
		failed.Contexts["clerksync"]["workflow"])

	wedged := byMessage[errreport.WriteKeepsFailing]
	require.Equal(t, "user_wedged", wedged.Tags["clerk_id"], "from the workflow ID")
	require.Equal(t, "UpsertUser", wedged.Tags["activity_type"])

	var burst *sentryfake.Event
	for _, ev := range events {
		if strings.HasPrefix(ev.Message, "Webhook signatures failing") {
			burst = &ev
		}
	}
	require.NotNil(t, burst, "25 failures in a minute: one report")
}

// TestWrap_WithoutADSNSendsNothing: no SENTRY_DSN, no reporter: the logger
// is the one given.
func TestWrap_WithoutADSNSendsNothing(t *testing.T) {
	t.Parallel()
	base := slog.New(slog.NewJSONHandler(io.Discard, nil))
	logger, flush, err := errreport.Wrap(base, errreport.Options{})
	require.NoError(t, err)
	require.Same(t, base, logger)
	flush()
}
