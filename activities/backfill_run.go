package activities

import (
	"context"
	"errors"
	"fmt"
	"strings"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/activity"

	"github.com/clerksync/clerksync/internal/clerkapi"
)

// SeenSetKey names the seen set of one backfill or reconciliation run: its
// workflow ID and the ID of its first run, which continue-as-new keeps. A
// run that failed, was cancelled or was terminated leaves its set under its
// own key, so the next run of the same name starts from nothing.
func SeenSetKey(workflowID, firstRunID string) string { return workflowID + "@" + firstRunID }

// StartBackfillInput names the run that starts.
type StartBackfillInput struct {
	// Run is the run's SeenSetKey.
	Run string `json:"run"`
}

// StartBackfillResult is which Clerk instance the run reads and which one
// the database was filled from.
type StartBackfillResult struct {
	// Instance is the Clerk instance CLERK_SECRET_KEY belongs to (GET
	// /v1/instance); Recorded the one the database is kept in step with:
	// the same, or the run must refuse to touch it.
	Instance string `json:"instance"`
	Recorded string `json:"recorded"`
	// Schema is the bookkeeping schema that records the instance
	// (CLERKSYNC_SCHEMA), for the run's message when the two differ; empty
	// in results of releases before it was added.
	Schema string `json:"schema,omitempty"`
	// Forgotten counts the ended runs whose seen sets were dropped.
	Forgotten int           `json:"forgotten,omitempty"`
	Stats     BackfillStats `json:"stats"`
}

// StartBackfill begins a backfill or reconciliation run: it asks Clerk
// which instance CLERK_SECRET_KEY belongs to and records it as the
// database's instance if none is recorded yet, and drops the seen sets that
// runs no longer running left behind.
func (a *Activities) StartBackfill(ctx context.Context, in StartBackfillInput) (StartBackfillResult, error) {
	if a.Clerk == nil {
		return StartBackfillResult{}, noClerkKey("backfill")
	}
	var res StartBackfillResult
	id, err := a.Clerk.InstanceID(ctx, &res.Stats, func() { activity.RecordHeartbeat(ctx) })
	if err != nil {
		// Unwrapped: Temporal reads a non-retryable error only at the top.
		return res, err
	}
	if id == "" {
		return res, clerkapi.Misconfigured(errors.New("read clerk instance: GET /v1/instance answered no instance ID"))
	}
	res.Instance = id
	recorded, err := a.Store.RecordClerkInstance(ctx, id)
	if err != nil {
		return res, err
	}
	res.Recorded, res.Schema = recorded, a.Store.Schema()
	res.Forgotten, err = a.forgetEndedRuns(ctx, in.Run)
	return res, err
}

// forgetEndedRuns drops the seen sets of every run but current that is not
// running any more: each would otherwise hide from a later run of the same
// name the users it did not see.
func (a *Activities) forgetEndedRuns(ctx context.Context, current string) (int, error) {
	if a.Temporal == nil {
		return 0, nil
	}
	runs, err := a.Store.SeenRuns(ctx)
	if err != nil {
		return 0, err
	}
	forgotten := 0
	for _, run := range runs {
		if run == current {
			continue
		}
		running, err := a.stillRunning(ctx, run)
		if err != nil {
			return forgotten, err
		}
		if running {
			continue
		}
		if err := a.Store.ForgetRun(ctx, run); err != nil {
			return forgotten, err
		}
		forgotten++
	}
	return forgotten, nil
}

// stillRunning reports whether the run whose SeenSetKey is key is running:
// its workflow ID's current execution is running and began with the same
// first run.
func (a *Activities) stillRunning(ctx context.Context, key string) (bool, error) {
	i := strings.LastIndex(key, "@")
	if i < 0 {
		return false, nil // not a SeenSetKey: nothing runs under it
	}
	workflowID, firstRunID := key[:i], key[i+1:]
	desc, err := a.Temporal.DescribeWorkflowExecution(ctx, workflowID, "")
	var notFound *serviceerror.NotFound
	switch {
	case errors.As(err, &notFound):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("describe %s: %w", workflowID, err)
	}
	info := desc.GetWorkflowExecutionInfo()
	if info.GetStatus() != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
		return false, nil
	}
	// A server that does not report the first run ID keeps the set: a
	// running run must never lose it.
	return info.GetFirstRunId() == "" || info.GetFirstRunId() == firstRunID, nil
}
