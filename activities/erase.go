package activities

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/activity"

	"github.com/clerksync/clerksync/ensure/contract"
	"github.com/clerksync/clerksync/internal/store"
)

const (
	// erasureSettle is how long an erasure request waits before its
	// entity's runs are listed: Temporal's visibility shows a run a moment
	// after it starts or closes (about a second on SQL visibility and
	// Elasticsearch), and a run it does not show yet would be missed.
	erasureSettle = 5 * time.Second
	// erasurePage is how many pending erasures one query reads.
	erasurePage = 100
)

// RequestErasureInput names a deleted user or organization whose run is
// ending: its history is to be erased with the earlier ones.
type RequestErasureInput struct {
	// Entity is contract.User or contract.Organization.
	Entity  contract.Entity `json:"entity"`
	ClerkID string          `json:"clerk_id"`
}

// RequestErasure records that a run of a deleted user's or organization's
// workflow is ending, so the erasure sweep (EraseDeletedHistories) deletes
// it once it has closed, with every other run of the entity. A no-op when
// the worker keeps histories (ERASE_DELETED_HISTORIES=false).
func (a *Activities) RequestErasure(ctx context.Context, in RequestErasureInput) error {
	if a.KeepHistories {
		return nil
	}
	return a.classify(ctx, a.Store.RequestErasure(ctx, in.Entity, in.ClerkID))
}

// ErasureResult says what one erasure sweep did.
type ErasureResult struct {
	// Erased counts the deleted users and organizations none of whose runs
	// is left in Temporal; Runs the runs the sweep deleted.
	Erased int `json:"erased,omitempty"`
	Runs   int `json:"runs,omitempty"`
	// Waiting counts those with a run still running: the next sweep
	// erases them once it has closed.
	Waiting int `json:"waiting,omitempty"`
	// Off: the worker keeps histories (ERASE_DELETED_HISTORIES=false).
	Off bool `json:"off,omitempty"`
}

// EraseDeletedHistories deletes from Temporal every closed run of each
// deleted user's and organization's workflow whose deletion (or a later
// run) asked for it, so no email or name of a deleted user stays in
// Temporal. The runs are found by workflow ID alone, never by a query that
// carries personal data. An entity with a run still running waits for the
// next sweep, as does one whose erasure failed: the failures are returned
// together, after every other entity was tried, and the activity is
// retried.
func (a *Activities) EraseDeletedHistories(ctx context.Context) (ErasureResult, error) {
	if a.KeepHistories {
		return ErasureResult{Off: true}, nil
	}
	if a.Temporal == nil {
		return ErasureResult{}, errors.New("erase deleted histories: no Temporal client")
	}
	var (
		res  ErasureResult
		errs []error
	)
	for _, entity := range []contract.Entity{contract.User, contract.Organization} {
		var after store.Erasure
		for {
			page, err := a.Store.PendingErasures(ctx, entity, erasureSettle, after, erasurePage)
			if err != nil {
				return res, errors.Join(append(errs, a.classify(ctx, err))...)
			}
			for _, er := range page.Erasures {
				if err := a.erase(ctx, er, page.AsOf, &res); err != nil {
					a.Metrics.erasureFailed(string(er.Entity))
					errs = append(errs, err)
				}
				activity.RecordHeartbeat(ctx, res)
			}
			if len(page.Erasures) < erasurePage {
				break
			}
			after = page.Erasures[len(page.Erasures)-1]
		}
	}
	return res, errors.Join(errs...)
}

// erase deletes every closed run of er's workflow and, when none is left
// running, marks er done as of asOf.
func (a *Activities) erase(ctx context.Context, er store.Erasure, asOf time.Time, res *ErasureResult) error {
	taskQueue := activity.GetInfo(ctx).TaskQueue
	workflowID, legacyID := er.Entity.WorkflowID(taskQueue, er.ClerkID), er.Entity.WorkflowID("", er.ClerkID)
	if strings.ContainsAny(workflowID, `'"\`) {
		// Not a Clerk ID: nothing clerksync started can carry it.
		return a.Store.MarkErased(ctx, er, asOf)
	}
	// Only this deployment's runs: its task queue's, under its IDs and,
	// on a task queue that v0.1.0 ran with the IDs it gave every
	// deployment, under those.
	query := fmt.Sprintf("WorkflowId IN ('%s', '%s') AND TaskQueue = '%s'", workflowID, legacyID, strings.ReplaceAll(taskQueue, "'", ""))
	deleted, running, err := a.deleteClosedRuns(ctx, query)
	res.Runs += deleted
	a.Metrics.erased(string(er.Entity), deleted)
	if err != nil {
		return fmt.Errorf("erase history of %s: %w", workflowID, err)
	}
	if running {
		res.Waiting++
		return nil
	}
	if err := a.Store.MarkErased(ctx, er, asOf); err != nil {
		return err
	}
	res.Erased++
	return nil
}

// deleteClosedRuns deletes every closed run that query lists and reports
// how many it deleted and whether a run is still running. A run already
// gone counts as deleted.
func (a *Activities) deleteClosedRuns(ctx context.Context, query string) (deleted int, running bool, err error) {
	namespace := activity.GetInfo(ctx).Namespace
	var token []byte
	for {
		page, err := a.Temporal.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
			Namespace: namespace, NextPageToken: token, Query: query,
		})
		if err != nil {
			return deleted, running, fmt.Errorf("list runs: %w", err)
		}
		for _, e := range page.GetExecutions() {
			if e.GetStatus() == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
				running = true
				continue
			}
			run := e.GetExecution()
			_, err := a.Temporal.WorkflowService().DeleteWorkflowExecution(ctx, &workflowservice.DeleteWorkflowExecutionRequest{
				Namespace:         namespace,
				WorkflowExecution: &commonpb.WorkflowExecution{WorkflowId: run.GetWorkflowId(), RunId: run.GetRunId()},
			})
			var gone *serviceerror.NotFound
			if err != nil && !errors.As(err, &gone) {
				return deleted, running, fmt.Errorf("delete run %s: %w", run.GetRunId(), err)
			}
			deleted++
		}
		if token = page.GetNextPageToken(); len(token) == 0 {
			return deleted, running, nil
		}
	}
}
