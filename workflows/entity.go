package workflows

import (
	"errors"
	"fmt"

	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/clerksync/clerksync/activities"
	"github.com/clerksync/clerksync/ensure/contract"
	"github.com/clerksync/clerksync/internal/clerkevent"
)

// entitySync is the spine UserWorkflow and OrganizationWorkflow share: one
// run of an entity workflow drops redeliveries by Svix ID, keeps the events
// that could never apply for operators (the state query, ClerkSyncState),
// and ends by setting its sync state and, when its history is long,
// continuing as new. Each workflow keeps only what is its own: how it
// orders and writes its events.
type entitySync struct {
	// entity and clerkID name whose workflow this is.
	entity  contract.Entity
	clerkID string
	ids     *recentIDs
	// syncState and failedEvents point into the workflow's own state, which
	// continue-as-new carries to the next run.
	syncState    *string
	failedEvents *[]FailedEvent
	// received counts the signals this run took.
	received int
	// failed: an event of this run could not apply; the run ends "failed".
	failed bool
	logger log.Logger
}

func newEntitySync(logger log.Logger, entity contract.Entity, clerkID string, syncState *string, recentEventIDs *[]string, failed *[]FailedEvent) entitySync {
	if *syncState == "" {
		*syncState = contract.SyncStatePending // as the start options set it
	}
	return entitySync{entity: entity, clerkID: clerkID, ids: newRecentIDs(recentEventIDs), syncState: syncState, failedEvents: failed, logger: logger}
}

// fresh reports whether ev is not a redelivery, and remembers its Svix ID.
func (e *entitySync) fresh(ev clerkevent.Event) bool {
	if ev.ID == "" {
		return true
	}
	if e.ids.seen(ev.ID) {
		e.logger.Info("Dropped duplicate event", "svix_id", ev.ID, "type", ev.Type)
		return false
	}
	e.ids.add(ev.ID)
	return true
}

// refused keeps an event PostgreSQL refused for good visible to operators
// and forgets its Svix ID, so a Resend of it after a fix (the runbook's
// repair) is not dropped as a duplicate.
func (e *entitySync) refused(f FailedEvent) {
	e.note(f)
	e.ids.forget(f.EventID)
}

// note keeps f for operators (the state query), the newest last, and makes
// the run end failed.
func (e *entitySync) note(f FailedEvent) {
	e.failed = true
	e.noteOnly(f)
}

// noteOnly keeps f for operators without making the run end failed: a
// write that will still land (a removal a product's foreign key holds).
func (e *entitySync) noteOnly(f FailedEvent) {
	e.logger.Error("Event could not be applied", "svix_id", f.EventID, "type", f.Type,
		"sqlstate", f.SQLState, "constraint", f.Constraint, "table", f.Table, "error", f.Error)
	failed := append(*e.failedEvents, f)
	if n := len(failed); n > maxFailedEvents {
		failed = append([]FailedEvent(nil), failed[n-maxFailedEvents:]...)
	}
	*e.failedEvents = failed
}

// setSyncState upserts ClerkSyncState when it changes: at most once per run
// in the usual case (pending at start, the outcome at the end).
func (e *entitySync) setSyncState(ctx workflow.Context, s string) error {
	if *e.syncState == s {
		return nil
	}
	*e.syncState = s
	if err := workflow.UpsertTypedSearchAttributes(ctx, contract.ClerkSyncStateKey.ValueSet(s)); err != nil {
		return fmt.Errorf("set %s: %w", contract.ClerkSyncStateKey.GetName(), err)
	}
	return nil
}

// finishRun ends a drained run as end does, in its final state, asking
// first, when its entity is deleted, for the erasure of its runs
// (requestErasure). written: the entity's row was written at some time.
func (e *entitySync) finishRun(ctx workflow.Context, deleted, written bool, maxEvents int, continueAsNew func() error) error {
	if deleted {
		if err := e.requestErasure(ctx, e.entity, e.clerkID); err != nil {
			return err
		}
	}
	return e.end(ctx, e.finalState(deleted, written), maxEvents, continueAsNew)
}

// finalState is the ClerkSyncState a drained run ends with: deleted,
// failed, synced once a row was written, or as it was (pending).
func (e *entitySync) finalState(deleted, written bool) string {
	switch {
	case deleted:
		return contract.SyncStateDeleted
	case e.failed:
		return contract.SyncStateFailed
	case written:
		return contract.SyncStateSynced
	}
	return *e.syncState
}

// end closes a drained run: it sets the final sync state and continues as
// new (continueAsNew's error) once the run took maxEvents signals or
// Temporal suggests it; otherwise the run completes. Temporal refuses to
// close a run that has signals it has not handled, so one arriving now
// starts over in the run's next workflow task and is not lost.
func (e *entitySync) end(ctx workflow.Context, final string, maxEvents int, continueAsNew func() error) error {
	if err := e.setSyncState(ctx, final); err != nil {
		return err
	}
	if e.received >= maxEvents || workflow.GetInfo(ctx).GetContinueAsNewSuggested() {
		return continueAsNew()
	}
	return nil
}

// requestErasure, in a run that ends with its entity deleted, asks the
// erasure sweep (ErasureWorkflow) to delete this run once it has closed,
// with every earlier one: the runs that hold a deleted user's email and
// name. A run cannot delete itself, and a late event refused by the
// tombstone still leaves a run, so every such run asks. (No GetVersion
// guards it: with no deployment yet, the recorded deletion histories were
// recorded again.)
func (e *entitySync) requestErasure(ctx workflow.Context, entity contract.Entity, clerkID string) error {
	var a *activities.Activities
	return workflow.ExecuteLocalActivity(ctx, a.RequestErasure, activities.RequestErasureInput{Entity: entity, ClerkID: clerkID}).Get(ctx, nil)
}

// writeFallback is the change (workflow.GetVersion) that moved a write
// still failing after writeBudget from its local activity to a scheduled
// one. Runs of v0.1.0 never recorded a write failing that way (their local
// activities retried until they landed), so they replay as they ran.
const writeFallback = "write-scheduled-after-budget"

// write runs a database write (an Activities method, its argument, where
// its result goes): as a local activity, within writeBudget, and when it
// still fails for a reason a retry may fix (PostgreSQL down or busy, a
// unique value another user still holds), as a scheduled activity that
// retries until it lands or PostgreSQL refuses the data for good. The run
// then waits without a workflow task open: it answers queries, and a day's
// outage costs its history a few events, not thousands.
func write(ctx workflow.Context, fn, arg, result any) error {
	err := workflow.ExecuteLocalActivity(workflow.WithLocalActivityOptions(ctx, writeOptions), fn, arg).Get(ctx, result)
	if err == nil || final(err) {
		return err
	}
	if workflow.GetVersion(ctx, writeFallback, workflow.DefaultVersion, 1) == workflow.DefaultVersion {
		return err // unreachable: see writeFallback
	}
	return workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, activityOptions), fn, arg).Get(ctx, result)
}

// final reports whether a write's error ends its retries: data PostgreSQL
// refuses for good, or the run's cancellation.
func final(err error) bool {
	var appErr *temporal.ApplicationError
	return temporal.IsCanceledError(err) || (errors.As(err, &appErr) && appErr.NonRetryable())
}

// failedEvent is the FailedEvent of ev, whose write failed with err: the
// error and, when PostgreSQL refused it, what refused it.
func failedEvent(ev clerkevent.Event, err error) FailedEvent {
	f := FailedEvent{EventID: ev.ID, Type: string(ev.Type), Error: err.Error()}
	var appErr *temporal.ApplicationError
	var r activities.Refusal
	if errors.As(err, &appErr) && appErr.HasDetails() && appErr.Details(&r) == nil {
		f.SQLState, f.Constraint, f.Table = r.SQLState, r.Constraint, r.Table
	}
	return f
}
