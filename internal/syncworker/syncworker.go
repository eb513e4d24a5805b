// Package syncworker registers clerksync's workflows and activities on a
// Temporal worker: the one list of what a clerksync worker runs, shared by the
// worker binary and the end-to-end tests.
package syncworker

import (
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"

	"github.com/clerksync/clerksync/activities"
	"github.com/clerksync/clerksync/internal/store"
	"github.com/clerksync/clerksync/workflows"
)

// New returns a worker for taskQueue with every workflow and activity
// registered; start it with Start or Run. clerkUsers may be nil when no
// CLERK_SECRET_KEY is set: ensure's profile fetch then fails and retries
// until one is.
func New(c client.Client, taskQueue string, st *store.Store, clerkUsers activities.ClerkUsers) worker.Worker {
	w := worker.New(c, taskQueue, worker.Options{
		// On SIGTERM, running activities get this long to finish before the
		// worker stops; whatever is cut short is retried by Temporal.
		WorkerStopTimeout: 15 * time.Second,
	})
	w.RegisterWorkflow(workflows.UserWorkflow)
	w.RegisterWorkflow(workflows.TrialWorkflow)
	w.RegisterActivity(&activities.Activities{Store: st, Clerk: clerkUsers, Temporal: c})
	return w
}
