// Package workflows holds clerksync's workflow definitions. Code here is
// deterministic: no clocks but workflow.Now, no goroutines but workflow.Go,
// no I/O, no map ranged for order. Everything that touches the world is an
// activity.
package workflows

import (
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/clerksync/clerksync/activities"
)

// Signal and query names: part of clerksync's interface with its starters and
// operators, so they never change.
const (
	// ClerkEventSignal carries one clerkevent.Event to a UserWorkflow or an
	// OrganizationWorkflow.
	ClerkEventSignal = "clerk-event"
	// EnsureSignal carries an EnsureRequest: the product asked for the user's
	// row before any webhook wrote it.
	EnsureSignal = "ensure"
	// StateQuery returns a UserWorkflow's UserState or an
	// OrganizationWorkflow's OrganizationState.
	StateQuery = "state"
)

// EnsureRequest is the payload of EnsureSignal.
type EnsureRequest struct {
	// RequestedAt is when the product asked, for the workflow's history.
	RequestedAt time.Time `json:"requested_at,omitzero"`
}

// lowestVersion is the version of a minimal row written by ensure: older than
// any data Clerk sends, so every webhook or fetched profile wins over it.
var lowestVersion = activities.MinimalVersion

// Search attributes (Keyword) that let an operator find any user's history in
// the Temporal UI: ClerkUserId = "user_..." or ClerkSyncState = "failed".
var (
	ClerkUserIDKey         = temporal.NewSearchAttributeKeyKeyword("ClerkUserId")
	ClerkOrganizationIDKey = temporal.NewSearchAttributeKeyKeyword("ClerkOrganizationId")
	ClerkSyncStateKey      = temporal.NewSearchAttributeKeyKeyword("ClerkSyncState")
)

// SearchAttributeKeys lists every custom search attribute clerksync sets, for
// the worker to register at start-up.
var SearchAttributeKeys = []temporal.SearchAttributeKey{ClerkUserIDKey, ClerkSyncStateKey, ClerkOrganizationIDKey}

// Values of ClerkSyncState: pending from a run's start, then what it ended
// with (or failed while a deleted user's row removal is retrying).
const (
	SyncStatePending = "pending"
	SyncStateSynced  = "synced"
	SyncStateDeleted = "deleted"
	SyncStateFailed  = "failed"
)

// UserWorkflowStartOptions are the options every signal-with-start of a
// UserWorkflow uses: its ID, and the search attributes an operator finds it
// by from its first moment.
func UserWorkflowStartOptions(clerkID, taskQueue string) client.StartWorkflowOptions {
	return client.StartWorkflowOptions{
		ID:        UserWorkflowID(clerkID),
		TaskQueue: taskQueue,
		TypedSearchAttributes: temporal.NewSearchAttributes(
			ClerkUserIDKey.ValueSet(clerkID),
			ClerkSyncStateKey.ValueSet(SyncStatePending),
		),
	}
}

// UserWorkflowID is the workflow ID of the user's entity workflow. One Clerk
// user has one ID, so signal-with-start always reaches the same workflow.
func UserWorkflowID(clerkID string) string { return "user/" + clerkID }

// OrganizationWorkflowStartOptions are the options every signal-with-start
// of an OrganizationWorkflow uses, as UserWorkflowStartOptions for users.
func OrganizationWorkflowStartOptions(orgID, taskQueue string) client.StartWorkflowOptions {
	return client.StartWorkflowOptions{
		ID:        OrganizationWorkflowID(orgID),
		TaskQueue: taskQueue,
		TypedSearchAttributes: temporal.NewSearchAttributes(
			ClerkOrganizationIDKey.ValueSet(orgID),
			ClerkSyncStateKey.ValueSet(SyncStatePending),
		),
	}
}

// OrganizationWorkflowID is the workflow ID of an organization's entity
// workflow, which applies the organization's events and its memberships'.
func OrganizationWorkflowID(orgID string) string { return "org/" + orgID }
