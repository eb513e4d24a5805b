package workflows

import (
	"fmt"
	"time"

	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/clerksync/clerksync/activities"
	"github.com/clerksync/clerksync/ensure/contract"
	"github.com/clerksync/clerksync/internal/clerkevent"
)

// writeOptions run every database write as a local activity first: inside
// the workflow task that received the event, so a sync costs Temporal one
// workflow task and one marker instead of a scheduled activity's round
// trips. Its budget is short: a local activity that keeps retrying keeps
// its workflow task open, heartbeating it into the history (three events
// every eight seconds), and the run answers no query meanwhile. A write
// still failing after it goes on as a scheduled activity (write), whose
// retries cost the history nothing. Only data PostgreSQL refuses (a
// non-retryable ApplicationError) ends a write without it landing: a
// finite budget there would turn a database outage into users who
// silently never get a row.
var writeOptions = workflow.LocalActivityOptions{
	StartToCloseTimeout:    10 * time.Second,
	ScheduleToCloseTimeout: writeBudget,
	RetryPolicy:            retryForever,
}

// writeBudget is how long a write retries as a local activity before it
// goes on as a scheduled one: long enough for a blip (a failover, a lock
// held for a moment), short enough that the run heartbeats its task at
// most twice.
const writeBudget = 15 * time.Second

// activityOptions run the calls that may take long as scheduled
// activities: the Clerk API (down for an hour, the user's webhooks keep
// applying meanwhile) and the removal of a deleted user's row that a
// product's foreign key holds back until the product fixes its schema.
var activityOptions = workflow.ActivityOptions{
	StartToCloseTimeout: 10 * time.Second,
	RetryPolicy:         retryForever,
}

// retryForever: unlimited attempts, backoff from 0.5 s up to 10 s.
var retryForever = &temporal.RetryPolicy{
	InitialInterval:    500 * time.Millisecond,
	BackoffCoefficient: 2,
	MaximumInterval:    10 * time.Second,
	MaximumAttempts:    0, // unlimited
}

const (
	// defaultMaxEventsPerRun bounds one run's history even on a server that
	// never suggests continue-as-new.
	defaultMaxEventsPerRun = 1000
	// recentEventIDs is how many Svix message IDs a run remembers to drop
	// redeliveries; older duplicates still lose on version in the SQL.
	recentEventIDs = 256
	// maxFailedEvents bounds the failures kept for operators in UserState.
	maxFailedEvents = 20
)

// UserWorkflowInput starts (or continues) a UserWorkflow.
type UserWorkflowInput struct {
	ClerkID string `json:"clerk_id"`
	// MaxEventsPerRun forces continue-as-new after this many signals even if
	// Temporal has not suggested it.
	MaxEventsPerRun int `json:"max_events_per_run,omitempty"`
	// State is carried over from the previous run by continue-as-new.
	State UserState `json:"state"`
}

// UserState is what a UserWorkflow knows of its user. PostgreSQL stays the
// source of truth (a new run starts empty and the SQL still converges); the
// state only saves writes that would lose anyway. The contract.StateQuery returns it.
type UserState struct {
	// Version is the clerk_updated_at of the newest data written.
	Version time.Time `json:"version,omitzero"`
	// ContentHash is that data's clerkevent.User.ContentHash, the tie-break
	// between two payloads of the same Version.
	ContentHash string `json:"content_hash,omitempty"`
	// UserID is the local users.id once known.
	UserID string `json:"user_id,omitempty"`
	// Deleted is final: Clerk never reuses a user ID.
	Deleted bool `json:"deleted,omitempty"`
	// SyncState is the ClerkSyncState search attribute's value.
	SyncState string `json:"sync_state,omitempty"`
	// RecentEventIDs are the latest Svix message IDs seen, oldest first.
	RecentEventIDs []string `json:"recent_event_ids,omitempty"`
	// Failed lists the latest events that could never apply, oldest first.
	Failed []FailedEvent `json:"failed,omitempty"`
	// TrialEndsAt is set when a write of this workflow gave the user its
	// trial.
	TrialEndsAt time.Time `json:"trial_ends_at,omitzero"`
	// ProfileUnavailable: fetching the profile from Clerk failed for good (a
	// 404, a missing or refused key); the minimal row stays as it is until a
	// webhook brings the user's data, and ensure does not fetch again.
	ProfileUnavailable bool `json:"profile_unavailable,omitempty"`
}

// FailedEvent is an event whose write PostgreSQL refused for good.
type FailedEvent struct {
	EventID string    `json:"event_id,omitempty"`
	Type    string    `json:"type"`
	Version time.Time `json:"version,omitzero"`
	Error   string    `json:"error"`
	// SQLState and Constraint name what refused the write, when PostgreSQL
	// did (23514 and the product's CHECK, 23505 and its unique index).
	SQLState   string `json:"sqlstate,omitempty"`
	Constraint string `json:"constraint,omitempty"`
	Table      string `json:"table,omitempty"`
}

// UserWorkflow is the entity workflow of one Clerk user, ID user/<clerk_id>,
// started and fed by signal-with-start. It lives only as long as it has
// work: it writes what its signals imply and completes once drained, so a
// signup or an update costs Temporal one workflow task (see the budget in
// docs/reliability.md) and the next event starts a new run.
//
// Svix delivers at least once and in no order, so a run drops redeliveries
// (same Svix ID) and versions older than the newest applied, writes only the
// newest of what is waiting, and treats a delete as final; the SQL enforces
// the same rules across runs. An ensure for a user without a row writes a
// minimal row at once, then fetches the full profile from Clerk in the
// background, so webhook events keep applying while the Clerk API is down.
func UserWorkflow(ctx workflow.Context, in UserWorkflowInput) error {
	if in.MaxEventsPerRun <= 0 {
		in.MaxEventsPerRun = defaultMaxEventsPerRun
	}
	u := newUserSync(ctx, in)
	if err := workflow.SetQueryHandler(ctx, contract.StateQuery, func() (UserState, error) { return u.state, nil }); err != nil {
		return fmt.Errorf("register %s query: %w", contract.StateQuery, err)
	}
	u.events = workflow.GetSignalChannel(ctx, contract.ClerkEventSignal)
	u.ensures = workflow.GetSignalChannel(ctx, contract.EnsureSignal)
	actx := workflow.WithActivityOptions(ctx, activityOptions)
	actx = workflow.WithLocalActivityOptions(actx, writeOptions)
	for {
		if err := u.drain(actx); err != nil {
			return err
		}
		switch {
		case len(u.pending) > 0:
			if err := u.applyPending(actx); err != nil {
				return err
			}
			continue
		case u.ensureWanted:
			if err := u.ensure(actx); err != nil {
				return err
			}
			continue
		case u.fetching:
			u.await(actx)
			continue
		}
		return u.finishRun(actx, u.state.Deleted, u.state.UserID != "", in.MaxEventsPerRun, func() error {
			next := in
			next.State = u.state
			return workflow.NewContinueAsNewError(ctx, UserWorkflow, next)
		})
	}
}

// userSync is one run's working state.
type userSync struct {
	entitySync
	state   UserState
	pending []clerkevent.Event

	events, ensures workflow.ReceiveChannel
	// ensureWanted: an ensure arrived and is not handled yet.
	ensureWanted bool
	// fetching: a FetchClerkUser runs in the background; its outcome
	// arrives on fetched.
	fetching    bool
	fetched     workflow.Channel
	cancelFetch workflow.CancelFunc
}

func newUserSync(ctx workflow.Context, in UserWorkflowInput) *userSync {
	u := &userSync{state: in.State, fetched: workflow.NewBufferedChannel(ctx, 1)}
	// Every line names the user, as the starter's do.
	u.entitySync = newEntitySync(log.With(workflow.GetLogger(ctx), "clerk_id", in.ClerkID), contract.User, in.ClerkID,
		&u.state.SyncState, &u.state.RecentEventIDs, &u.state.Failed)
	return u
}

// drain takes every signal and fetch outcome already delivered, without
// blocking.
func (u *userSync) drain(ctx workflow.Context) error {
	var ev clerkevent.Event
	for u.events.ReceiveAsync(&ev) {
		u.accept(ev)
		ev = clerkevent.Event{}
	}
	var req contract.EnsureRequest
	for u.ensures.ReceiveAsync(&req) {
		u.received++
		u.ensureWanted = true
	}
	var out fetchOutcome
	if u.fetched.ReceiveAsync(&out) {
		return u.fetchDone(ctx, out)
	}
	return nil
}

// await blocks until a signal or the fetch's outcome arrives; drain takes it.
func (u *userSync) await(ctx workflow.Context) {
	sel := workflow.NewSelector(ctx)
	for _, c := range []workflow.ReceiveChannel{u.events, u.ensures, u.fetched} {
		sel.AddReceive(c, func(workflow.ReceiveChannel, bool) {})
	}
	sel.Select(ctx)
}

func (u *userSync) accept(ev clerkevent.Event) {
	u.received++
	if ev.ClerkID != u.clerkID {
		u.logger.Error("Dropped event for another user", "svix_id", ev.ID, "event_clerk_id", ev.ClerkID)
		return
	}
	if u.fresh(ev) {
		u.pending = append(u.pending, ev)
	}
}

// applyPending writes what the waiting events imply: a delete wins over any
// update, otherwise only the newest version is written, since every older one
// would lose to it anyway.
func (u *userSync) applyPending(ctx workflow.Context) error {
	batch := u.pending
	u.pending = nil
	if u.state.Deleted {
		u.logger.Info("Dropped events for a deleted user", "count", len(batch))
		return nil
	}
	var newest *clerkevent.Event
	for i := range batch {
		ev := &batch[i]
		if ev.Type == clerkevent.UserDeleted {
			return u.deleteUser(ctx, *ev)
		}
		if ev.User != nil && (newest == nil || ev.User.NewerThan(newest.User.ClerkUpdatedAt, newest.User.ContentHash())) {
			newest = ev
		}
	}
	if newest == nil {
		return nil
	}
	if !newest.User.NewerThan(u.state.Version, u.state.ContentHash) {
		u.logger.Info("Dropped stale events", "count", len(batch), "version", u.state.Version)
		return nil
	}
	return u.upsertUser(ctx, *newest)
}

func (u *userSync) upsertUser(ctx workflow.Context, ev clerkevent.Event) error {
	var a *activities.Activities
	var res activities.UpsertUserResult
	if err := write(ctx, a.UpsertUser, *ev.User, &res); err != nil {
		return u.recordFailure(ev, err)
	}
	switch res.Outcome {
	case activities.Tombstoned:
		// The write met the tombstone of a deletion whose row's removal may
		// never have run (the worker died between the two and this task
		// replayed); the activity removed a row it found, or says which one
		// a product's foreign key keeps.
		u.markDeleted()
		if res.RowKept != "" {
			return u.keepRemoving(ctx, ev, res.RowKept)
		}
		return nil
	case activities.Inserted, activities.Updated:
		u.state.Version, u.state.ContentHash = ev.User.ClerkUpdatedAt, ev.User.ContentHash()
		u.stopFetch() // the webhook's data is as good as what Clerk would answer
	}
	if res.UserID != "" {
		u.state.UserID = res.UserID
	}
	if !res.TrialEndsAt.IsZero() {
		u.state.TrialEndsAt = res.TrialEndsAt
	}
	return nil
}

func (u *userSync) deleteUser(ctx workflow.Context, ev clerkevent.Event) error {
	in := activities.DeleteUserInput{ClerkID: u.clerkID, DeletedAt: ev.OccurredAt}
	if in.DeletedAt.IsZero() {
		in.DeletedAt = workflow.Now(ctx)
	}
	var a *activities.Activities
	var res activities.RemovalResult
	if err := write(ctx, a.DeleteUser, in, &res); err != nil {
		return u.recordFailure(ev, err)
	}
	u.markDeleted()
	if res.RowKept == "" {
		return nil
	}
	return u.keepRemoving(ctx, ev, res.RowKept)
}

// keepRemoving retries the removal of a deleted user's row that a
// product's foreign key keeps (rowKept is the database's message). The
// tombstone is committed, so the deletion has taken effect for clerksync:
// no later event writes to this user. The row stays until the product lets
// it go; operators find the user failed, with the database's message, while
// the removal retries.
func (u *userSync) keepRemoving(ctx workflow.Context, ev clerkevent.Event, rowKept string) error {
	u.note(FailedEvent{EventID: ev.ID, Type: string(ev.Type), Error: "row kept: " + rowKept})
	if err := u.setSyncState(ctx, contract.SyncStateFailed); err != nil {
		return err
	}
	var a *activities.Activities
	if err := workflow.ExecuteActivity(ctx, a.RemoveDeletedUser, u.clerkID).Get(ctx, nil); err != nil {
		return u.recordFailure(ev, err)
	}
	return nil
}

func (u *userSync) markDeleted() {
	u.stopFetch()
	u.state.Deleted = true
	u.state.UserID = ""
}

// recordFailure keeps an event that can never apply visible to operators
// (the state query now, ClerkSyncState = "failed" when the run ends)
// without blocking the user's later events. Writes retry everything else
// forever, so the only errors that reach here are non-retryable ones and
// cancellation, which ends the workflow.
func (u *userSync) recordFailure(ev clerkevent.Event, err error) error {
	if temporal.IsCanceledError(err) {
		return err
	}
	f := failedEvent(ev, err)
	if ev.User != nil {
		f.Version = ev.User.ClerkUpdatedAt
	}
	u.refused(f)
	return nil
}
