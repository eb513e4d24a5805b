package workflows

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/testsuite"

	"github.com/clerksync/clerksync/activities"
	"github.com/clerksync/clerksync/internal/telemetry"
)

// TestBackfill_ASafetyStopIsCounted: a run that stops because
// CLERK_SECRET_KEY belongs to another Clerk instance than the one recorded
// says so in its result (naming the deployment's bookkeeping schema in the
// fix) and counts the stop on the worker's /metrics
// (clerksync_backfill_safety_stops_total{reason="instance"}), which the
// ClerksyncBackfillSafetyStop alert watches.
func TestBackfill_ASafetyStopIsCounted(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	handler, err := telemetry.TemporalMetrics(reg)
	require.NoError(t, err)
	var suite testsuite.WorkflowTestSuite
	suite.SetMetricsHandler(handler)
	env := suite.NewTestWorkflowEnvironment()
	var a *activities.Activities
	env.RegisterActivity(a)
	env.OnActivity(a.StartBackfill, mock.Anything, mock.Anything).Return(
		activities.StartBackfillResult{Instance: "ins_staging", Recorded: "ins_production", Schema: "app_sync"}, nil)
	env.ExecuteWorkflow(BackfillWorkflow, BackfillInput{Reconcile: true})
	require.True(t, env.IsWorkflowCompleted())
	require.NoError(t, env.GetWorkflowError())
	var p BackfillProgress
	require.NoError(t, env.GetWorkflowResult(&p))
	require.Equal(t, PhaseStopped, p.Phase)
	require.Contains(t, p.SafetyStop, "ins_staging")
	require.Contains(t, p.SafetyStop, "delete from app_sync.clerk_instance", "the bookkeeping schema the deployment has (CLERKSYNC_SCHEMA)")

	families, err := reg.Gather()
	require.NoError(t, err)
	var found bool
	for _, f := range families {
		if f.GetName() != "clerksync_backfill_safety_stops_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "reason" && l.GetValue() == "instance" && m.GetCounter().GetValue() == 1 {
					found = true
				}
			}
		}
	}
	require.True(t, found, "no clerksync_backfill_safety_stops_total{reason=instance} of 1 among %d metric families", len(families))
}
