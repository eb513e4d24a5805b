// Package contract is what a process that starts clerksync's workflows
// shares with the worker that runs them: workflow types and IDs, signal and
// query names, the payloads a starter sends and the search attributes a run
// is found by. It depends on the Temporal SDK alone, so that a product's
// backend can signal clerksync without linking the worker; the workflows
// package declares its workflows under these names.
package contract

import (
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
)

// Workflow types, as the worker registers them.
const (
	UserWorkflowType         = "UserWorkflow"
	OrganizationWorkflowType = "OrganizationWorkflow"
)

// Signal and query names: part of clerksync's interface with its starters
// and operators, so they never change.
const (
	// ClerkEventSignal carries one Clerk event to a UserWorkflow or an
	// OrganizationWorkflow.
	ClerkEventSignal = "clerk-event"
	// EnsureSignal carries an EnsureRequest: the product asked for the
	// user's row before any webhook wrote it.
	EnsureSignal = "ensure"
	// StateQuery returns a UserWorkflow's state or an
	// OrganizationWorkflow's.
	StateQuery = "state"
)

// DefaultTaskQueue is the task queue clerksync's worker polls unless
// TEMPORAL_TASK_QUEUE says otherwise.
const DefaultTaskQueue = "clerksync"

// EnsureRequest is the payload of EnsureSignal.
type EnsureRequest struct {
	// RequestedAt is when the product asked, for the workflow's history.
	RequestedAt time.Time `json:"requested_at,omitzero"`
}

// UserStart is the input a starter gives a UserWorkflow it starts: the
// first run's. (Later runs carry their state on by continue-as-new.)
type UserStart struct {
	ClerkID string `json:"clerk_id"`
}

// OrganizationStart is the input a starter gives an OrganizationWorkflow.
type OrganizationStart struct {
	ClerkID string `json:"clerk_id"`
}

// Search attributes (Keyword) that let an operator find any user's history
// in the Temporal UI: ClerkUserId = "user_..." or ClerkSyncState = "failed".
var (
	ClerkUserIDKey         = temporal.NewSearchAttributeKeyKeyword("ClerkUserId")
	ClerkOrganizationIDKey = temporal.NewSearchAttributeKeyKeyword("ClerkOrganizationId")
	ClerkSyncStateKey      = temporal.NewSearchAttributeKeyKeyword("ClerkSyncState")
)

// SearchAttributeKeys lists every custom search attribute clerksync sets,
// for the worker to register at start-up.
var SearchAttributeKeys = []temporal.SearchAttributeKey{ClerkUserIDKey, ClerkSyncStateKey, ClerkOrganizationIDKey}

// Values of ClerkSyncState: pending from a run's start, then what it ended
// with (or failed while a deleted user's row removal is retrying).
const (
	SyncStatePending = "pending"
	SyncStateSynced  = "synced"
	SyncStateDeleted = "deleted"
	SyncStateFailed  = "failed"
)

// IDPrefix is what the workflow IDs of the deployment on taskQueue start
// with. A deployment is its task queue: two deployments sharing a Temporal
// namespace (staging beside production) each poll their own, so with the
// task queue in their IDs neither signals, erases nor reads the other's
// workflows. The default task queue has no prefix, so a deployment on it
// keeps v0.1.0's IDs (user/<clerk_id>); any other is the task queue and a
// slash (staging/user/<clerk_id>).
func IDPrefix(taskQueue string) string {
	if taskQueue == "" || taskQueue == DefaultTaskQueue {
		return ""
	}
	return taskQueue + "/"
}

// UserWorkflowID is User.WorkflowID.
//
// Deprecated: use User.WorkflowID.
func UserWorkflowID(taskQueue, clerkID string) string { return User.WorkflowID(taskQueue, clerkID) }

// OrganizationWorkflowID is Organization.WorkflowID.
//
// Deprecated: use Organization.WorkflowID.
func OrganizationWorkflowID(taskQueue, orgID string) string {
	return Organization.WorkflowID(taskQueue, orgID)
}

// UserWorkflowStartOptions is User.StartOptions.
//
// Deprecated: use User.StartOptions.
func UserWorkflowStartOptions(clerkID, taskQueue string) client.StartWorkflowOptions {
	return User.StartOptions(clerkID, taskQueue)
}

// OrganizationWorkflowStartOptions is Organization.StartOptions.
//
// Deprecated: use Organization.StartOptions.
func OrganizationWorkflowStartOptions(orgID, taskQueue string) client.StartWorkflowOptions {
	return Organization.StartOptions(orgID, taskQueue)
}
