package contract

import (
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
)

// Entity is a kind of Clerk object clerksync keeps: each has its own
// tombstones, and a user's or an organization's events run in a workflow
// of its own. Its string is part of recorded histories and of clerksync's
// bookkeeping (erasures), so it never changes.
type Entity string

// The entities.
const (
	User         Entity = "user"
	Organization Entity = "organization"
	// Membership is a user's membership of an organization, applied by
	// the organization's workflow.
	Membership Entity = "membership"
)

// Entities lists every entity, users first.
var Entities = []Entity{User, Organization, Membership}

// Workflow is the entity whose workflow applies e's events: e itself, or
// a membership's organization.
func (e Entity) Workflow() Entity {
	if e == Membership {
		return Organization
	}
	return e
}

// WorkflowType is the type the worker registers e's workflow under.
func (e Entity) WorkflowType() string {
	if e.Workflow() == Organization {
		return OrganizationWorkflowType
	}
	return UserWorkflowType
}

// WorkflowID is the workflow ID of the entity clerkID's workflow (a
// membership's: its organization's ID) in the deployment on taskQueue.
// One Clerk ID has one workflow ID there, so signal-with-start always
// reaches the same workflow.
func (e Entity) WorkflowID(taskQueue, clerkID string) string {
	if e.Workflow() == Organization {
		return IDPrefix(taskQueue) + "org/" + clerkID
	}
	return IDPrefix(taskQueue) + "user/" + clerkID
}

// SearchAttribute is the search attribute an operator finds e's workflow
// by: ClerkUserId or ClerkOrganizationId.
func (e Entity) SearchAttribute() temporal.SearchAttributeKeyKeyword {
	if e.Workflow() == Organization {
		return ClerkOrganizationIDKey
	}
	return ClerkUserIDKey
}

// StartOptions are the options every signal-with-start of e's workflow
// uses: its ID, and the search attributes an operator finds it by from its
// first moment.
func (e Entity) StartOptions(clerkID, taskQueue string) client.StartWorkflowOptions {
	return client.StartWorkflowOptions{
		ID:        e.WorkflowID(taskQueue, clerkID),
		TaskQueue: taskQueue,
		TypedSearchAttributes: temporal.NewSearchAttributes(
			e.SearchAttribute().ValueSet(clerkID),
			ClerkSyncStateKey.ValueSet(SyncStatePending),
		),
	}
}

// Start is the input a starter gives e's workflow it starts: UserStart or
// OrganizationStart.
func (e Entity) Start(clerkID string) any {
	if e.Workflow() == Organization {
		return OrganizationStart{ClerkID: clerkID}
	}
	return UserStart{ClerkID: clerkID}
}
