// Package syncworker registers clerksync's workflows and activities on a
// Temporal worker and sets up the trial-expiry and erasure Schedules: the one list of
// what a clerksync worker runs, shared by the worker binary and the
// end-to-end tests.
package syncworker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/clerk/clerk-sdk-go/v2"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/clerksync/clerksync/activities"
	"github.com/clerksync/clerksync/ensure/contract"
	"github.com/clerksync/clerksync/internal/clerkapi"
	"github.com/clerksync/clerksync/internal/config"
	"github.com/clerksync/clerksync/internal/store"
	"github.com/clerksync/clerksync/internal/temporalclient"
	"github.com/clerksync/clerksync/workflows"
)

// DefaultWorkflowPollers is the default of Options.WorkflowPollers
// (WORKER_WORKFLOW_POLLERS). Every sync is one short workflow task, so the
// worker's rate is bounded by how many it polls at once: on 2 cores the
// SDK's default of 2 processed fewer signups per second than 16 in four of
// six rounds of the last three make bench runs (up to 40% fewer), about as
// many in one and more in one (docs/benchmarks.md).
const DefaultWorkflowPollers = config.DefaultWorkflowPollers

// Options say what a worker needs.
type Options struct {
	TaskQueue string
	Store     *store.Store
	// Clerk reaches the Clerk Backend API (ensure's profile fetch, backfill);
	// nil when no CLERK_SECRET_KEY is set, and those then fail visibly.
	Clerk *clerk.ClientConfig
	// ClerkRPS paces every Clerk API request of the worker (CLERK_API_RPS);
	// 0 lifts the limit.
	ClerkRPS float64
	// BackfillWindows is how many windows of Clerk's user listing a run
	// reads side by side (BACKFILL_WINDOWS); 0 or 1 reads it in one.
	BackfillWindows int
	// TrialPeriod is a new user's trial (TRIAL_PERIOD).
	TrialPeriod time.Duration
	// WorkflowPollers is how many workflow task polls run at once
	// (DefaultWorkflowPollers when 0).
	WorkflowPollers int
	// Metrics count what the activities write; nil counts nothing.
	Metrics *activities.Metrics
	// KeepHistories keeps a deleted user's runs in Temporal
	// (ERASE_DELETED_HISTORIES=false).
	KeepHistories bool
}

// New returns a worker with every workflow and activity registered; start
// it with Start or Run.
func New(c client.Client, o Options) worker.Worker {
	if o.WorkflowPollers <= 0 {
		o.WorkflowPollers = DefaultWorkflowPollers
	}
	w := worker.New(c, o.TaskQueue, worker.Options{
		// On SIGTERM, running activities get this long to finish before the
		// worker stops; whatever is cut short is retried by Temporal.
		WorkerStopTimeout:                15 * time.Second,
		MaxConcurrentWorkflowTaskPollers: o.WorkflowPollers,
		// No database message quoting a user's data reaches Temporal.
		Interceptors: []interceptor.WorkerInterceptor{&activities.RedactingInterceptor{}},
	})
	RegisterWorkflows(w)
	a := &activities.Activities{Store: o.Store, TrialPeriod: o.TrialPeriod, Metrics: o.Metrics, Temporal: c, KeepHistories: o.KeepHistories,
		BackfillWindows: o.BackfillWindows}
	if o.Clerk != nil {
		a.Clerk = clerkapi.New(o.Clerk, o.ClerkRPS)
	}
	w.RegisterActivity(a)
	return w
}

// WorkflowRegistry is where workflows are registered: a worker.Worker, or a
// worker.WorkflowReplayer that replays their histories.
type WorkflowRegistry interface {
	RegisterWorkflow(w any)
	RegisterWorkflowWithOptions(w any, options workflow.RegisterOptions)
}

// RegisterWorkflows registers every clerksync workflow on r under the type
// name its runs are started with, so a replayer replays exactly what a
// worker runs.
func RegisterWorkflows(r WorkflowRegistry) {
	// The entity workflows are started by name (ensure/contract), from
	// processes that do not link this package.
	r.RegisterWorkflowWithOptions(workflows.UserWorkflow, workflow.RegisterOptions{Name: contract.UserWorkflowType})
	r.RegisterWorkflowWithOptions(workflows.OrganizationWorkflow, workflow.RegisterOptions{Name: contract.OrganizationWorkflowType})
	r.RegisterWorkflow(workflows.TrialExpiryWorkflow)
	r.RegisterWorkflow(workflows.ErasureWorkflow)
	r.RegisterWorkflow(workflows.BackfillWorkflow)
}

// EnsureTrialExpirySchedule creates the Schedule that runs
// TrialExpiryWorkflow on taskQueue every interval, or updates its interval
// if it exists: idempotent, so every worker calls it at start-up. Runs do
// not overlap; a run missed while no worker polled is made up when one
// does.
func EnsureTrialExpirySchedule(ctx context.Context, c client.Client, taskQueue string, every time.Duration) error {
	return ensureSchedule(ctx, c, workflows.TrialExpiryScheduleID(taskQueue), workflows.TrialExpiryWorkflow, taskQueue, every)
}

// EnsureErasureSchedule creates the Schedule that runs ErasureWorkflow on
// taskQueue every interval, or updates its interval if it exists, as
// EnsureTrialExpirySchedule does.
func EnsureErasureSchedule(ctx context.Context, c client.Client, taskQueue string, every time.Duration) error {
	return ensureSchedule(ctx, c, workflows.ErasureScheduleID(taskQueue), workflows.ErasureWorkflow, taskQueue, every)
}

// RemoveErasureSchedule deletes the erasure Schedule of taskQueue, if
// there is one: a worker that keeps histories (ERASE_DELETED_HISTORIES=false)
// removes the one a worker set up while erasure was on.
func RemoveErasureSchedule(ctx context.Context, c client.Client, taskQueue string) error {
	id := workflows.ErasureScheduleID(taskQueue)
	err := c.ScheduleClient().GetHandle(ctx, id).Delete(ctx)
	var notFound *serviceerror.NotFound
	if err != nil && !errors.As(err, &notFound) {
		return fmt.Errorf("remove schedule %s: %w", id, err)
	}
	return nil
}

// ensureSchedule makes Schedule id run wf on taskQueue every interval, the
// workflow ID the Schedule's own.
func ensureSchedule(ctx context.Context, c client.Client, id string, wf any, taskQueue string, every time.Duration) error {
	return temporalclient.EnsureSchedule(ctx, c, id, every, &client.ScheduleWorkflowAction{ID: id, Workflow: wf, TaskQueue: taskQueue})
}
