package main

import (
	"context"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/temporalproto"
	"go.temporal.io/sdk/worker"

	"github.com/clerksync/clerksync/internal/clerkwebhook"
	"github.com/clerksync/clerksync/internal/testenv"
	"github.com/clerksync/clerksync/workflows"
)

var updateHistories = flag.Bool("update-histories", false,
	"write the recorded UserWorkflow history to workflows/testdata, where the replay test keeps old histories valid")

// historyFile is where -update-histories writes. Name a new file when
// UserWorkflow changes shape (keeping the old ones: they are what running
// workflows look like), e.g. user_workflow_v3_<change>.json.
const historyFile = "user_workflow_v2_trials.json"

// TestUserWorkflowHistory_Replays records a real UserWorkflow history through
// the whole stack (create, redelivery, update, stale update, delete, late
// update) and replays it against the current code. With -update-histories it
// also saves it for workflows' replay test, which then guards every later
// change of UserWorkflow against breaking running workflows.
func TestUserWorkflowHistory_Replays(t *testing.T) {
	t.Parallel()
	s := startSystem(t)
	const id = "user_history"
	base := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	event := func(typ string, version int) []byte {
		b, err := clerkwebhook.UserEvent(typ, clerkwebhook.UserFields{
			ClerkID: id, Email: "h@example.com", FirstName: "v" + string(rune('0'+version)),
			CreatedAt: base, UpdatedAt: base.Add(time.Duration(version) * time.Second),
		})
		require.NoError(t, err)
		return b
	}
	deleted, err := clerkwebhook.DeletedEvent(id, base.Add(time.Minute))
	require.NoError(t, err)
	// Each step waits a little so the history holds separate workflow tasks,
	// as deliveries spread over time produce.
	for _, d := range []testenv.Delivery{
		{MsgID: "msg_h1", Body: event("user.created", 1)},
		{MsgID: "msg_h1", Body: event("user.created", 1)},
		{MsgID: "msg_h3", Body: event("user.updated", 3)},
		{MsgID: "msg_h2", Body: event("user.updated", 2)},
		{MsgID: "msg_hdel", Body: deleted},
		{MsgID: "msg_h4", Body: event("user.updated", 4)},
	} {
		require.Equal(t, 200, s.post(t, d.MsgID, d.Body))
		time.Sleep(300 * time.Millisecond)
	}

	ctx := context.Background()
	run := s.temporal.GetWorkflow(ctx, workflows.UserWorkflowID(id), "")
	waitCtx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	require.NoError(t, run.Get(waitCtx, nil), "the workflow completes after its idle timeout")

	history := &historypb.History{}
	it := s.temporal.GetWorkflowHistory(ctx, run.GetID(), run.GetRunID(), false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		ev, err := it.Next()
		require.NoError(t, err)
		history.Events = append(history.Events, ev)
	}

	replayer := worker.NewWorkflowReplayer()
	replayer.RegisterWorkflow(workflows.UserWorkflow)
	replayer.RegisterWorkflow(workflows.TrialWorkflow)
	require.NoError(t, replayer.ReplayWorkflowHistory(nil, history))

	if *updateHistories {
		b, err := temporalproto.CustomJSONMarshalOptions{Indent: "  "}.Marshal(history)
		require.NoError(t, err)
		path := filepath.Join("..", "workflows", "testdata", historyFile)
		require.NoError(t, os.WriteFile(path, b, 0o644))
		t.Logf("wrote %s (%d events)", path, len(history.Events))
	}
}
