package workflows

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/worker"
)

// TestReplay_RecordedHistories replays every workflow history recorded in
// testdata (by internal/systemtest's TestUserWorkflowHistory_Replays with
// -update-histories). A change that would break workflows already running in
// production fails here with a nondeterminism error; guard such a change with
// workflow.GetVersion and keep the old histories.
func TestReplay_RecordedHistories(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob(filepath.Join("testdata", "*.json"))
	require.NoError(t, err)
	require.NotEmpty(t, files, "no recorded histories in testdata")
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			t.Parallel()
			replayer := worker.NewWorkflowReplayer()
			replayer.RegisterWorkflow(UserWorkflow)
			replayer.RegisterWorkflow(OrganizationWorkflow)
			replayer.RegisterWorkflow(TrialExpiryWorkflow)
			replayer.RegisterWorkflow(BackfillWorkflow)
			require.NoError(t, replayer.ReplayWorkflowHistoryFromJSONFile(nil, f))
		})
	}
}
