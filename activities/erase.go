package activities

import (
	"context"
	"errors"
	"fmt"
	"strings"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/activity"
)

// EraseHistoryInput names a deleted user's or organization's entity
// workflow and the run that asks for the erasure, which stays: Temporal
// cannot delete a run while it runs.
type EraseHistoryInput struct {
	// Entity is "user" or "organization", for the metric.
	Entity     string `json:"entity"`
	WorkflowID string `json:"workflow_id"`
	KeepRunID  string `json:"keep_run_id"`
}

// EraseHistoryResult says how many closed runs were deleted.
type EraseHistoryResult struct {
	Erased int `json:"erased,omitempty"`
	// Off: the worker keeps histories (ERASE_DELETED_HISTORIES=false).
	Off bool `json:"off,omitempty"`
}

// EraseHistory deletes from Temporal every closed run of a deleted user's
// (or organization's) workflow but the asking one, so no email or name of
// the deleted user stays in Temporal beyond the run that recorded the
// deletion. The runs are found by workflow ID alone (never by a query that
// carries personal data); a run already gone counts as erased. Any other
// failure is retried by the workflow's policy.
func (a *Activities) EraseHistory(ctx context.Context, in EraseHistoryInput) (EraseHistoryResult, error) {
	if a.KeepHistories {
		return EraseHistoryResult{Off: true}, nil
	}
	if a.Temporal == nil {
		return EraseHistoryResult{}, errors.New("erase history: no Temporal client")
	}
	if strings.ContainsAny(in.WorkflowID, `'"\`) {
		return EraseHistoryResult{}, invalid(fmt.Errorf("erase history: workflow ID %q", in.WorkflowID))
	}
	namespace := activity.GetInfo(ctx).Namespace
	var res EraseHistoryResult
	var token []byte
	for {
		page, err := a.Temporal.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
			Namespace: namespace, NextPageToken: token,
			Query: fmt.Sprintf("WorkflowId = '%s' AND ExecutionStatus != 'Running'", in.WorkflowID),
		})
		if err != nil {
			return res, fmt.Errorf("erase history of %s: list runs: %w", in.WorkflowID, err)
		}
		for _, e := range page.GetExecutions() {
			run := e.GetExecution()
			if run.GetRunId() == in.KeepRunID {
				continue
			}
			_, err := a.Temporal.WorkflowService().DeleteWorkflowExecution(ctx, &workflowservice.DeleteWorkflowExecutionRequest{
				Namespace:         namespace,
				WorkflowExecution: &commonpb.WorkflowExecution{WorkflowId: run.GetWorkflowId(), RunId: run.GetRunId()},
			})
			var gone *serviceerror.NotFound
			if err != nil && !errors.As(err, &gone) {
				return res, fmt.Errorf("erase history of %s: delete run %s: %w", in.WorkflowID, run.GetRunId(), err)
			}
			res.Erased++
			a.Metrics.erased(in.Entity, 1)
		}
		if token = page.GetNextPageToken(); len(token) == 0 {
			return res, nil
		}
	}
}
