package activities

import (
	"context"
	"fmt"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/clerksync/clerksync/internal/store"
)

// TrialWorkflowType is the registered name of workflows.TrialWorkflow
// (activities cannot import workflows, which import activities).
const TrialWorkflowType = "TrialWorkflow"

// TrialInput starts a TrialWorkflow. The end is Clerk's created_at plus the
// period, so a replay or a late start computes the same answer.
type TrialInput struct {
	ClerkID        string        `json:"clerk_id"`
	ClerkCreatedAt time.Time     `json:"clerk_created_at"`
	Period         time.Duration `json:"period"`
}

// EndsAt is when the trial ends.
func (in TrialInput) EndsAt() time.Time { return in.ClerkCreatedAt.Add(in.Period) }

// StartTrialInput names the trial workflow to start and where.
type StartTrialInput struct {
	WorkflowID string     `json:"workflow_id"`
	TaskQueue  string     `json:"task_queue"`
	Trial      TrialInput `json:"trial"`
}

// StartTrial starts the user's TrialWorkflow unless one runs or ever ran:
// conflict policy USE_EXISTING makes a second start while it runs a no-op,
// and reuse policy REJECT_DUPLICATE refuses a start after it closed, so
// however often the signup reaches clerksync, a user gets one trial.
func (a *Activities) StartTrial(ctx context.Context, in StartTrialInput) error {
	if a.Temporal == nil {
		return temporal.NewNonRetryableApplicationError("start trial: no Temporal client", "Misconfigured", nil)
	}
	_, err := a.Temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:                       in.WorkflowID,
		TaskQueue:                in.TaskQueue,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
	}, TrialWorkflowType, in.Trial)
	if err != nil && !temporal.IsWorkflowExecutionAlreadyStartedError(err) {
		return fmt.Errorf("start %s: %w", in.WorkflowID, err)
	}
	return nil
}

// CreateTrialSubscription writes the trialing subscription, once.
func (a *Activities) CreateTrialSubscription(ctx context.Context, in TrialInput) (store.TrialOutcome, error) {
	outcome, err := a.Store.CreateTrialSubscription(ctx, in.ClerkID, in.EndsAt())
	if err != nil {
		return "", classify(err)
	}
	return outcome, nil
}

// ExpireTrial marks the trial expired unless the product moved it on.
func (a *Activities) ExpireTrial(ctx context.Context, clerkID string) (bool, error) {
	expired, err := a.Store.ExpireTrial(ctx, clerkID)
	if err != nil {
		return false, classify(err)
	}
	return expired, nil
}
