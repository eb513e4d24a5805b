package workflows

import (
	"fmt"

	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/clerksync/clerksync/activities"
	"github.com/clerksync/clerksync/ensure/contract"
	"github.com/clerksync/clerksync/internal/clerkevent"
)

// OrganizationWorkflowInput starts (or continues) an OrganizationWorkflow.
type OrganizationWorkflowInput struct {
	ClerkID string `json:"clerk_id"`
	// MaxEventsPerRun forces continue-as-new after this many signals.
	MaxEventsPerRun int `json:"max_events_per_run,omitempty"`
	// State is carried over from the previous run by continue-as-new.
	State OrganizationState `json:"state"`
}

// OrganizationState is what an OrganizationWorkflow knows; PostgreSQL stays
// the source of truth. The contract.StateQuery returns it.
type OrganizationState struct {
	// Deleted is final: Clerk never reuses an organization ID.
	Deleted bool `json:"deleted,omitempty"`
	// SyncState is the ClerkSyncState search attribute's value.
	SyncState string `json:"sync_state,omitempty"`
	// RecentEventIDs are the latest Svix message IDs seen, oldest first.
	RecentEventIDs []string `json:"recent_event_ids,omitempty"`
	// Failed lists the latest events that could never apply, oldest first.
	Failed []FailedEvent `json:"failed,omitempty"`
}

// orgSync is one run's working state.
type orgSync struct {
	entitySync
	state OrganizationState

	events workflow.ReceiveChannel
	// retrying counts the writes retrying in the background (retryHeld);
	// each sends its outcome on retried.
	retrying int
	retried  workflow.Channel
}

// OrganizationWorkflow is the entity workflow of one Clerk organization, ID
// org/<org_id>, fed by signal-with-start with the organization's events and
// its memberships' events. It has UserWorkflow's shape: it drains its
// signals, writes each event with a local activity, sets ClerkSyncState
// and completes, so one event costs one workflow task. Redeliveries (same
// Svix ID) are dropped; everything else is written, since the SQL keeps
// every row right in any order: last-writer-wins on Clerk's updated_at,
// deletions final, a membership of a deleted organization or user never
// written, a member without a row given a minimal one.
func OrganizationWorkflow(ctx workflow.Context, in OrganizationWorkflowInput) error {
	if in.MaxEventsPerRun <= 0 {
		in.MaxEventsPerRun = defaultMaxEventsPerRun
	}
	o := &orgSync{state: in.State}
	o.entitySync = newEntitySync(log.With(workflow.GetLogger(ctx), "organization_id", in.ClerkID), contract.Organization, in.ClerkID,
		&o.state.SyncState, &o.state.RecentEventIDs, &o.state.Failed)
	if err := workflow.SetQueryHandler(ctx, contract.StateQuery, func() (OrganizationState, error) { return o.state, nil }); err != nil {
		return fmt.Errorf("register %s query: %w", contract.StateQuery, err)
	}
	o.events = workflow.GetSignalChannel(ctx, contract.ClerkEventSignal)
	o.retried = workflow.NewChannel(ctx)
	ctx = workflow.WithLocalActivityOptions(ctx, writeOptions)
	for {
		var ev clerkevent.Event
		applied := false
		for o.events.ReceiveAsync(&ev) {
			o.received++
			applied = true
			if err := o.apply(ctx, ev); err != nil {
				return err
			}
			ev = clerkevent.Event{}
		}
		var retryErr error
		for o.retried.ReceiveAsync(&retryErr) {
			applied = true
			o.retrying--
			if retryErr != nil {
				return retryErr // retried forever: only a cancellation ends one
			}
		}
		if applied {
			continue // signals that arrived meanwhile are taken before completing
		}
		if o.retrying > 0 {
			// A write a product's foreign key holds retries in the
			// background while the organization's other events apply.
			sel := workflow.NewSelector(ctx)
			sel.AddReceive(o.events, func(workflow.ReceiveChannel, bool) {})
			sel.AddReceive(o.retried, func(workflow.ReceiveChannel, bool) {})
			sel.Select(ctx)
			continue
		}
		return o.finishRun(ctx, o.state.Deleted, true, in.MaxEventsPerRun, func() error {
			next := in
			next.State = o.state
			return workflow.NewContinueAsNewError(ctx, OrganizationWorkflow, next)
		})
	}
}

// retryHeld shows a write that a product's foreign key holds back (a
// deleted organization's, membership's or member's row it keeps, or a
// rejoin waiting for the older membership's row) as failed, with the
// database's message, and retries it (activity, with arg) in the
// background until the product fixes its schema, while the organization's
// other events keep applying. The tombstones already keep every later
// event out of what was deleted. Once the retry lands the run ends as its
// other events say; the failure stays listed.
func (o *orgSync) retryHeld(ctx workflow.Context, ev clerkevent.Event, rowKept string, activity, arg any) error {
	o.noteOnly(FailedEvent{EventID: ev.ID, Type: string(ev.Type), Error: "row kept: " + rowKept})
	if err := o.setSyncState(ctx, contract.SyncStateFailed); err != nil {
		return err
	}
	o.retrying++
	actx := workflow.WithActivityOptions(ctx, activityOptions)
	workflow.Go(actx, func(gctx workflow.Context) {
		err := workflow.ExecuteActivity(gctx, activity, arg).Get(gctx, nil)
		o.retried.Send(gctx, err)
	})
	return nil
}

// apply writes one event. Events for a deleted organization are dropped,
// but for membership deletions: the SQL would refuse them anyway.
func (o *orgSync) apply(ctx workflow.Context, ev clerkevent.Event) error {
	if ev.OrganizationID != o.clerkID {
		o.logger.Error("Dropped event for another organization", "svix_id", ev.ID, "event_organization_id", ev.OrganizationID)
		return nil
	}
	if !o.fresh(ev) {
		return nil
	}
	// After the organization's deletion only a membership's deletion is
	// written: its tombstone records it, though the row went with the
	// organization.
	if o.state.Deleted && ev.Type != clerkevent.MembershipDeleted {
		return nil
	}
	var a *activities.Activities
	var err error
	switch ev.Type {
	case clerkevent.OrganizationDeleted:
		in := activities.DeleteOrganizationInput{ClerkID: o.clerkID, DeletedAt: ev.OccurredAt}
		if in.DeletedAt.IsZero() {
			in.DeletedAt = workflow.Now(ctx)
		}
		var res activities.RemovalResult
		if err = write(ctx, a.DeleteOrganization, in, &res); err == nil {
			o.state.Deleted = true
			if res.RowKept != "" {
				return o.retryHeld(ctx, ev, res.RowKept, a.RemoveDeletedOrganization, o.clerkID)
			}
		}
	case clerkevent.OrganizationCreated, clerkevent.OrganizationUpdated:
		var res activities.OrganizationWriteResult
		if err = write(ctx, a.UpsertOrganization, *ev.Organization, &res); err == nil {
			return o.written(ctx, ev, res)
		}
	case clerkevent.MembershipCreated, clerkevent.MembershipUpdated:
		var res activities.OrganizationWriteResult
		if err = write(ctx, a.UpsertMembership, *ev.Membership, &res); err == nil {
			return o.written(ctx, ev, res)
		}
	case clerkevent.MembershipDeleted:
		in := activities.DeleteMembershipInput{Membership: *ev.Membership, DeletedAt: ev.OccurredAt}
		if in.DeletedAt.IsZero() {
			in.DeletedAt = workflow.Now(ctx)
		}
		var res activities.RemovalResult
		if err = write(ctx, a.DeleteMembership, in, &res); err == nil && res.RowKept != "" {
			return o.retryHeld(ctx, ev, res.RowKept, a.RemoveDeletedMembership, in)
		}
	default:
		o.logger.Error("Dropped event of a type organizations do not take", "svix_id", ev.ID, "type", ev.Type)
		return nil
	}
	if err == nil {
		return nil
	}
	if temporal.IsCanceledError(err) {
		return err
	}
	// Writes retry everything else until it lands: this is data
	// PostgreSQL refuses.
	o.refused(failedEvent(ev, err))
	return nil
}

// written takes what an organization or membership write did: the
// organization's deletion it met is final for this workflow, and a row it
// found kept by a product's foreign key is retried in the background (the
// removal of a deleted membership's, organization's or member's row, or a
// rejoin that waits for its older membership's row).
func (o *orgSync) written(ctx workflow.Context, ev clerkevent.Event, res activities.OrganizationWriteResult) error {
	if res.Outcome == activities.Tombstoned && (ev.Organization != nil || res.Refused == contract.Organization) {
		o.state.Deleted = true
	}
	if res.RowKept == "" {
		return nil
	}
	var a *activities.Activities
	if res.Outcome == activities.Held {
		return o.retryHeld(ctx, ev, res.RowKept, a.WriteHeldMembership, *ev.Membership)
	}
	switch res.Kept {
	case contract.Membership:
		return o.retryHeld(ctx, ev, res.RowKept, a.RemoveDeletedMembership, activities.DeleteMembershipInput{Membership: *ev.Membership})
	case contract.User:
		return o.retryHeld(ctx, ev, res.RowKept, a.RemoveDeletedUser, ev.Membership.UserID)
	}
	return o.retryHeld(ctx, ev, res.RowKept, a.RemoveDeletedOrganization, o.clerkID)
}
