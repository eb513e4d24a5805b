// Package workflows holds clerksync's workflow definitions. Code here is
// deterministic: no clocks but workflow.Now, no goroutines but workflow.Go,
// no I/O, no map ranged for order. Everything that touches the world is an
// activity.
package workflows

import (
	"github.com/clerksync/clerksync/ensure/contract"
)

// Signal and query names, the search attributes and the start options are
// clerksync's contract with its starters (ensure/contract, which a product's
// backend links without the worker); they are repeated here under the names
// the workflows have always used.
const (
	ClerkEventSignal = contract.ClerkEventSignal
	EnsureSignal     = contract.EnsureSignal
	StateQuery       = contract.StateQuery
)

// EnsureRequest is the payload of EnsureSignal.
type EnsureRequest = contract.EnsureRequest

// Search attributes (Keyword) and the values of ClerkSyncState.
var (
	ClerkUserIDKey         = contract.ClerkUserIDKey
	ClerkOrganizationIDKey = contract.ClerkOrganizationIDKey
	ClerkSyncStateKey      = contract.ClerkSyncStateKey
	SearchAttributeKeys    = contract.SearchAttributeKeys
)

// Values of ClerkSyncState.
const (
	SyncStatePending = contract.SyncStatePending
	SyncStateSynced  = contract.SyncStateSynced
	SyncStateDeleted = contract.SyncStateDeleted
	SyncStateFailed  = contract.SyncStateFailed
)

// Workflow IDs and start options.
var (
	UserWorkflowID                   = contract.UserWorkflowID
	OrganizationWorkflowID           = contract.OrganizationWorkflowID
	UserWorkflowStartOptions         = contract.UserWorkflowStartOptions
	OrganizationWorkflowStartOptions = contract.OrganizationWorkflowStartOptions
)
