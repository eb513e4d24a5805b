package service

import (
	"context"
	"fmt"

	"go.temporal.io/sdk/client"

	"github.com/clerksync/clerksync/ensure/contract"
	"github.com/clerksync/clerksync/internal/clerkevent"
)

// entityWorkflows signals the entity workflows, starting them when needed.
type entityWorkflows struct {
	client    client.Client
	taskQueue string
}

// SignalEvent delivers ev by signal-with-start (one call that starts the
// workflow if it is not running and signals it either way, so the first
// event and the hundredth take the same path) to its entity's workflow:
// user/<clerk_id> for a user event, org/<org_id> for an organization or
// membership event.
func (e entityWorkflows) SignalEvent(ctx context.Context, ev clerkevent.Event) (string, error) {
	entity, id := ev.Target()
	opts := entity.StartOptions(id, e.taskQueue)
	if _, err := e.client.SignalWithStartWorkflow(ctx, opts.ID, contract.ClerkEventSignal, ev, opts, entity.WorkflowType(), entity.Start(id)); err != nil {
		return "", fmt.Errorf("signal-with-start %s: %w", opts.ID, err)
	}
	return opts.ID, nil
}
