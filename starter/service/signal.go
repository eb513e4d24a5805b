package service

import (
	"context"
	"fmt"

	"go.temporal.io/sdk/client"

	"github.com/clerksync/clerksync/internal/clerkevent"
	"github.com/clerksync/clerksync/workflows"
)

// userWorkflows signals users' entity workflows, starting them when needed.
type userWorkflows struct {
	client    client.Client
	taskQueue string
}

// SignalEvent delivers ev to user/<clerk_id> by signal-with-start: one call
// that starts the workflow if it is not running and signals it either way, so
// the first event for a user and the hundredth take the same path.
func (u userWorkflows) SignalEvent(ctx context.Context, ev clerkevent.Event) (string, error) {
	opts := workflows.UserWorkflowStartOptions(ev.ClerkID, u.taskQueue)
	id := opts.ID
	in := workflows.UserWorkflowInput{ClerkID: ev.ClerkID}
	if _, err := u.client.SignalWithStartWorkflow(ctx, id, workflows.ClerkEventSignal, ev, opts, workflows.UserWorkflow, in); err != nil {
		return "", fmt.Errorf("signal-with-start %s: %w", id, err)
	}
	return id, nil
}
