package workflows

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/worker"
)

// TestReplay_RecordedHistories replays every workflow history recorded in
// testdata: the current code's (internal/systemtest's
// TestUserWorkflowHistory_Replays with -update-histories writes them) and,
// under testdata/<release>/, each release's, recorded by that release's own
// code and never rewritten (docs/upgrading.md says how). A change that would
// break workflows a deployed release started fails here with a
// nondeterminism error; guard such a change with workflow.GetVersion and
// keep the old histories. make test-upgrade checks the same against live
// runs of the release.
func TestReplay_RecordedHistories(t *testing.T) {
	t.Parallel()
	current, err := filepath.Glob(filepath.Join("testdata", "*.json"))
	require.NoError(t, err)
	released, err := filepath.Glob(filepath.Join("testdata", "v*", "*.json"))
	require.NoError(t, err)
	require.NotEmpty(t, current, "no recorded histories in testdata")
	require.NotEmpty(t, released, "no release's recorded histories in testdata/v*/")
	for _, f := range append(current, released...) {
		name, err := filepath.Rel("testdata", f)
		require.NoError(t, err)
		t.Run(name, func(t *testing.T) {
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
