package main

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"

	"github.com/clerksync/clerksync/internal/clerkfake"
	"github.com/clerksync/clerksync/internal/clerkwebhook"
	"github.com/clerksync/clerksync/internal/config"
	"github.com/clerksync/clerksync/workflows"
)

// TestTrial_OneTrialPerUserExpiringThroughAWorkerRestart: the signup reaches
// clerksync four times (user.created three times, and an ensure), yet the user
// gets one subscription and one trial workflow; the trial expires on its
// durable timer although the worker was stopped and started during it.
func TestTrial_OneTrialPerUserExpiringThroughAWorkerRestart(t *testing.T) {
	t.Parallel()
	const period = 8 * time.Second
	s := startSystem(t, func(c *config.Config) { c.TrialPeriod = period })
	const id = "user_trial"
	created := time.Now().Truncate(time.Millisecond)
	s.clerk.PutUser(clerkfake.User{ID: id, Email: "trial@example.com", CreatedAt: created, UpdatedAt: created})
	body, err := clerkwebhook.UserEvent("user.created", clerkwebhook.UserFields{
		ClerkID: id, Email: "trial@example.com", CreatedAt: created, UpdatedAt: created,
	})
	require.NoError(t, err)
	for i := range 3 {
		require.Equal(t, http.StatusOK, s.post(t, fmt.Sprintf("msg_trial_%d", i), body))
	}
	code, _ := s.ensureCall(t, s.token(t, id))
	require.Equal(t, http.StatusOK, code)

	ctx := context.Background()
	require.Eventually(t, func() bool {
		return s.count(t, "select count(*) from subscriptions where status = 'trialing' and plan = 'trial'") == 1
	}, 30*time.Second, 100*time.Millisecond)
	desc, err := s.temporal.DescribeWorkflowExecution(ctx, workflows.TrialWorkflowID(id), "")
	require.NoError(t, err)
	require.Equal(t, enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING, desc.GetWorkflowExecutionInfo().GetStatus())

	// An operator lists the users in trial, and until when.
	require.Eventually(t, func() bool {
		resp, err := s.temporal.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
			Query: fmt.Sprintf("WorkflowType = 'TrialWorkflow' AND ClerkUserId = '%s' AND ClerkTrialEndsAt > '%s'",
				id, created.Add(period-time.Second).UTC().Format(time.RFC3339)),
		})
		return err == nil && len(resp.GetExecutions()) == 1
	}, 10*time.Second, 100*time.Millisecond)

	s.restart() // the worker goes away during the trial and comes back

	var outcome workflows.TrialOutcome
	waitCtx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	require.NoError(t, s.temporal.GetWorkflow(ctx, workflows.TrialWorkflowID(id), "").Get(waitCtx, &outcome))
	require.Equal(t, workflows.TrialExpired, outcome)
	require.Equal(t, 1, s.count(t, "select count(*) from subscriptions"))
	require.Equal(t, 1, s.count(t, "select count(*) from subscriptions where status = 'expired'"))
	n, err := s.temporal.CountWorkflow(ctx, &workflowservice.CountWorkflowExecutionsRequest{
		Query: fmt.Sprintf("WorkflowId = '%s'", workflows.TrialWorkflowID(id)),
	})
	require.NoError(t, err)
	require.EqualValues(t, 1, n.GetCount(), "one trial workflow, ever")
}

// TestTrial_DeletionCancelsTheTrial: a user deleted during the trial loses
// the subscription with the row and the trial workflow ends.
func TestTrial_DeletionCancelsTheTrial(t *testing.T) {
	t.Parallel()
	s := startSystem(t)
	const id = "user_trial_deleted"
	created := time.Now().Truncate(time.Millisecond)
	body, err := clerkwebhook.UserEvent("user.created", clerkwebhook.UserFields{ClerkID: id, CreatedAt: created, UpdatedAt: created})
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, s.post(t, "msg_td_created", body))
	require.Eventually(t, func() bool { return s.count(t, "select count(*) from subscriptions") == 1 },
		30*time.Second, 100*time.Millisecond)

	deleted, err := clerkwebhook.DeletedEvent(id, time.Now())
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, s.post(t, "msg_td_deleted", deleted))
	require.Eventually(t, func() bool {
		desc, err := s.temporal.DescribeWorkflowExecution(context.Background(), workflows.TrialWorkflowID(id), "")
		return err == nil && desc.GetWorkflowExecutionInfo().GetStatus() == enumspb.WORKFLOW_EXECUTION_STATUS_CANCELED
	}, 30*time.Second, 100*time.Millisecond)
	require.Zero(t, s.count(t, "select count(*) from subscriptions"), "the subscription went with the user's cascade")
}
