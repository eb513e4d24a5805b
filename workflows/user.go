package workflows

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/clerksync/clerksync/activities"
	"github.com/clerksync/clerksync/internal/clerkevent"
	"github.com/clerksync/clerksync/internal/store"
)

// userActivityOptions: a write retries until it lands. A finite retry budget
// (MaximumAttempts or a ScheduleToCloseTimeout) would turn a database outage
// longer than the budget into users who silently never get a row; only data
// PostgreSQL refuses (a non-retryable ApplicationError) ends the retries.
// StartToCloseTimeout bounds how long a write lost with a crashed worker
// waits before it is retried; a healthy write takes milliseconds. The backoff
// stays at or under 10 s so users converge soon after PostgreSQL returns.
var userActivityOptions = workflow.ActivityOptions{
	StartToCloseTimeout: 10 * time.Second,
	RetryPolicy: &temporal.RetryPolicy{
		InitialInterval:    500 * time.Millisecond,
		BackoffCoefficient: 2,
		MaximumInterval:    10 * time.Second,
		MaximumAttempts:    0, // unlimited
	},
}

// minimalRowOptions run ensure's minimal-row write as a local activity, with
// the same unlimited retries as every other write. A local activity's retries
// end at its ScheduleToCloseTimeout, which defaults to its StartToCloseTimeout
// (10 s): a database outage longer than that would fail the ensure for good.
// unboundedRetries is as close to "never" as a duration gets.
var minimalRowOptions = workflow.LocalActivityOptions{
	StartToCloseTimeout:    userActivityOptions.StartToCloseTimeout,
	ScheduleToCloseTimeout: unboundedRetries,
	RetryPolicy:            userActivityOptions.RetryPolicy,
}

// unboundedRetries is the ScheduleToCloseTimeout of writes that must retry
// until the database takes them: a century.
const unboundedRetries = 100 * 365 * 24 * time.Hour

const (
	// defaultMaxEventsPerRun bounds one run's history even on a server that
	// never suggests continue-as-new.
	defaultMaxEventsPerRun = 1000
	// recentEventIDs is how many Svix message IDs a workflow remembers to drop
	// redeliveries; older duplicates still lose on version.
	recentEventIDs = 256
	// maxFailedEvents bounds the failures kept for operators in UserState.
	maxFailedEvents = 20
)

// UserWorkflowInput starts (or continues) a UserWorkflow.
type UserWorkflowInput struct {
	ClerkID string `json:"clerk_id"`
	// IdleTimeout is how long to wait for another event before completing.
	IdleTimeout time.Duration `json:"idle_timeout,omitempty"`
	// MaxEventsPerRun forces continue-as-new after this many signals even if
	// Temporal has not suggested it.
	MaxEventsPerRun int `json:"max_events_per_run,omitempty"`
	// TrialPeriod is the length of the user's trial (TRIAL_PERIOD).
	TrialPeriod time.Duration `json:"trial_period,omitempty"`
	// State is carried over from the previous run by continue-as-new.
	State UserState `json:"state"`
}

// UserState is what a UserWorkflow knows of its user. PostgreSQL stays the
// source of truth (a new run starts empty and the SQL still converges); the
// state only saves writes that would lose anyway. The StateQuery returns it.
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
	// TrialRequested: the user's TrialWorkflow was started (or found).
	TrialRequested bool `json:"trial_requested,omitempty"`
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
}

// UserWorkflow is the entity workflow of one Clerk user, ID user/<clerk_id>,
// started and fed by signal-with-start. Svix delivers at least once and in no
// order, so it drops redeliveries (same Svix ID) and versions older than the
// newest applied, writes only the newest of what is waiting, and treats a
// delete as final. An ensure for a user without a row writes a minimal row at
// once, then fetches the full profile from Clerk in the background, so webhook
// events keep applying while the Clerk API is down. It completes after
// IdleTimeout without events, once every signal is drained and no fetch is in
// flight, and continues as new when its history grows long.
func UserWorkflow(ctx workflow.Context, in UserWorkflowInput) error {
	if in.IdleTimeout <= 0 {
		in.IdleTimeout = DefaultIdleTimeout
	}
	if in.MaxEventsPerRun <= 0 {
		in.MaxEventsPerRun = defaultMaxEventsPerRun
	}
	if in.TrialPeriod <= 0 {
		in.TrialPeriod = DefaultTrialPeriod
	}
	u := newUserSync(ctx, in)
	if err := workflow.SetQueryHandler(ctx, StateQuery, func() (UserState, error) { return u.state, nil }); err != nil {
		return fmt.Errorf("register %s query: %w", StateQuery, err)
	}
	u.events = workflow.GetSignalChannel(ctx, ClerkEventSignal)
	u.ensures = workflow.GetSignalChannel(ctx, EnsureSignal)
	actx := workflow.WithActivityOptions(ctx, userActivityOptions)
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
		}
		if !u.fetching && (u.received >= in.MaxEventsPerRun || workflow.GetInfo(ctx).GetContinueAsNewSuggested()) {
			next := in
			next.State = u.state
			return workflow.NewContinueAsNewError(ctx, UserWorkflow, next)
		}
		if !u.await(actx, in.IdleTimeout) {
			// Idle. A signal may have raced the timer: drain once more, and
			// complete only with nothing left (Temporal also refuses to
			// complete a run that has unhandled signals).
			if err := u.drain(actx); err != nil {
				return err
			}
			if len(u.pending) == 0 && !u.ensureWanted {
				return nil
			}
		}
	}
}

// userSync is one run's working state.
type userSync struct {
	clerkID  string
	state    UserState
	seen     map[string]bool // membership only, never ranged
	pending  []clerkevent.Event
	received int
	logger   log.Logger

	trialPeriod time.Duration

	events, ensures workflow.ReceiveChannel
	// ensureWanted: an ensure arrived and is not handled yet.
	ensureWanted bool
	// fetching: a FetchClerkUser runs in the background; its outcome
	// arrives on fetched.
	fetching    bool
	fetched     workflow.Channel
	cancelFetch workflow.CancelFunc
}

// fetchOutcome is what the background fetch hands the main loop.
type fetchOutcome struct {
	result activities.FetchClerkUserResult
	err    error
}

func newUserSync(ctx workflow.Context, in UserWorkflowInput) *userSync {
	u := &userSync{
		clerkID: in.ClerkID,
		state:   in.State,
		seen:    make(map[string]bool, len(in.State.RecentEventIDs)),
		logger:  workflow.GetLogger(ctx),
		fetched: workflow.NewBufferedChannel(ctx, 1),

		trialPeriod: in.TrialPeriod,
	}
	for _, id := range in.State.RecentEventIDs {
		u.seen[id] = true
	}
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
	var req EnsureRequest
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

// await blocks until a signal or a fetch outcome arrives (true), or, with no
// fetch in flight, until idle passes (false). What arrived is left for drain.
func (u *userSync) await(ctx workflow.Context, idle time.Duration) bool {
	timerCtx, cancelTimer := workflow.WithCancel(ctx)
	defer cancelTimer()
	got := true
	sel := workflow.NewSelector(ctx)
	for _, c := range []workflow.ReceiveChannel{u.events, u.ensures, u.fetched} {
		sel.AddReceive(c, func(workflow.ReceiveChannel, bool) {})
	}
	if !u.fetching {
		sel.AddFuture(workflow.NewTimer(timerCtx, idle), func(workflow.Future) { got = false })
	}
	sel.Select(ctx)
	return got
}

func (u *userSync) accept(ev clerkevent.Event) {
	u.received++
	if ev.ClerkID != u.clerkID {
		u.logger.Error("Dropped event for another user", "event_id", ev.ID, "event_clerk_id", ev.ClerkID)
		return
	}
	if ev.ID != "" {
		if u.seen[ev.ID] {
			u.logger.Info("Dropped duplicate event", "event_id", ev.ID, "type", ev.Type)
			return
		}
		u.remember(ev.ID)
	}
	u.pending = append(u.pending, ev)
}

// forget drops a remembered Svix message ID.
func (u *userSync) forget(id string) {
	if id == "" || !u.seen[id] {
		return
	}
	delete(u.seen, id)
	u.state.RecentEventIDs = slices.DeleteFunc(u.state.RecentEventIDs, func(s string) bool { return s == id })
}

func (u *userSync) remember(id string) {
	u.seen[id] = true
	u.state.RecentEventIDs = append(u.state.RecentEventIDs, id)
	if n := len(u.state.RecentEventIDs); n > recentEventIDs {
		for _, old := range u.state.RecentEventIDs[:n-recentEventIDs] {
			delete(u.seen, old)
		}
		u.state.RecentEventIDs = append([]string(nil), u.state.RecentEventIDs[n-recentEventIDs:]...)
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
	var res store.UpsertResult
	err := workflow.ExecuteActivity(ctx, a.UpsertUser, *ev.User).Get(ctx, &res)
	if err != nil {
		return u.recordFailure(ctx, ev, err)
	}
	switch res.Outcome {
	case store.Tombstoned:
		return u.markDeleted(ctx)
	case store.Inserted, store.Updated:
		u.state.Version, u.state.ContentHash = ev.User.ClerkUpdatedAt, ev.User.ContentHash()
		u.stopFetch() // the webhook's data is as good as what Clerk would answer
	}
	if res.UserID != "" {
		u.state.UserID = res.UserID
	}
	if err := u.setSyncState(ctx, SyncStateSynced); err != nil {
		return err
	}
	return u.startTrial(ctx, ev.User.ClerkCreatedAt)
}

func (u *userSync) deleteUser(ctx workflow.Context, ev clerkevent.Event) error {
	in := activities.DeleteUserInput{ClerkID: u.clerkID, DeletedAt: ev.OccurredAt}
	if in.DeletedAt.IsZero() {
		in.DeletedAt = workflow.Now(ctx)
	}
	var a *activities.Activities
	var res activities.DeleteUserResult
	if err := workflow.ExecuteActivity(ctx, a.DeleteUser, in).Get(ctx, &res); err != nil {
		return u.recordFailure(ctx, ev, err)
	}
	u.cancelTrial(ctx)
	if res.RowKept == "" {
		return u.markDeleted(ctx)
	}
	// The tombstone is committed, so the deletion has taken effect for
	// clerksync: no later event writes to this user. The row stays until
	// the product lets it go; operators find the user failed, with the
	// database's message, meanwhile.
	u.stopFetch()
	u.state.Deleted, u.state.UserID = true, ""
	u.noteFailure(FailedEvent{EventID: ev.ID, Type: string(ev.Type), Error: "row kept: " + res.RowKept})
	if err := u.setSyncState(ctx, SyncStateFailed); err != nil {
		return err
	}
	// Retried like every write, until the product fixes its schema.
	if err := workflow.ExecuteActivity(ctx, a.RemoveDeletedUser, u.clerkID).Get(ctx, nil); err != nil {
		return u.recordFailure(ctx, ev, err)
	}
	return u.setSyncState(ctx, SyncStateDeleted)
}

// ensure writes a minimal row for a user who has none, so the product can
// proceed at once, then fetches the full profile in the background.
func (u *userSync) ensure(ctx workflow.Context) error {
	u.ensureWanted = false
	if u.state.Deleted {
		return nil
	}
	if u.state.UserID == "" {
		var a *activities.Activities
		var res store.UpsertResult
		minimal := clerkevent.User{ClerkID: u.clerkID, ClerkUpdatedAt: lowestVersion}
		// A local activity: a caller is waiting on this row, and running it in
		// the workflow task saves the round trips of a scheduled activity.
		lctx := workflow.WithLocalActivityOptions(ctx, minimalRowOptions)
		if err := workflow.ExecuteLocalActivity(lctx, a.UpsertUser, minimal).Get(lctx, &res); err != nil {
			return u.recordFailure(ctx, userEvent("ensure", u.clerkID), err)
		}
		if res.Outcome == store.Tombstoned {
			return u.markDeleted(ctx)
		}
		u.state.UserID = res.UserID
		if err := u.setSyncState(ctx, SyncStateSynced); err != nil {
			return err
		}
	}
	if u.state.Version.IsZero() && !u.fetching && !u.state.ProfileUnavailable {
		u.startFetch(ctx)
	}
	return nil
}

// startFetch runs FetchClerkUser beside the main loop: while Clerk's API is
// down it retries there, and webhook events keep applying meanwhile.
func (u *userSync) startFetch(ctx workflow.Context) {
	fetchCtx, cancel := workflow.WithCancel(ctx)
	u.fetching, u.cancelFetch = true, cancel
	workflow.Go(fetchCtx, func(gctx workflow.Context) {
		var a *activities.Activities
		var out fetchOutcome
		out.err = workflow.ExecuteActivity(gctx, a.FetchClerkUser, u.clerkID).Get(gctx, &out.result)
		u.fetched.SendAsync(out)
	})
}

// stopFetch cancels a fetch made moot: webhook data or a delete arrived.
func (u *userSync) stopFetch() {
	if u.fetching && u.cancelFetch != nil {
		u.cancelFetch()
	}
}

// fetchDone turns the fetched profile into an event, ordered by version
// with the webhooks like any other. A fetch that cannot succeed (Clerk does
// not know the user, the key is missing or refused) leaves the minimal row
// as it is and shows the user failed: a 404 is not a deletion, since a key of
// another Clerk instance gets one for every user, and only a signed
// user.deleted webhook deletes.
func (u *userSync) fetchDone(ctx workflow.Context, out fetchOutcome) error {
	u.fetching = false
	switch {
	case temporal.IsCanceledError(out.err):
		return nil
	case out.err != nil:
		u.state.ProfileUnavailable = true
		return u.recordFailure(ctx, userEvent("fetch", u.clerkID), out.err)
	case out.result.NotFound:
		u.state.ProfileUnavailable = true
		return u.recordFailure(ctx, userEvent("fetch", u.clerkID), errors.New(
			"Clerk answered 404 for this user: the worker's CLERK_SECRET_KEY may belong to another Clerk instance "+
				"than the one that signed the session token; the minimal row is kept, and a webhook or a backfill fills it"))
	case out.result.User != nil:
		u.pending = append(u.pending, clerkevent.Event{Type: clerkevent.UserUpdated, ClerkID: u.clerkID, User: out.result.User})
	}
	return nil
}

// userEvent names a step of the workflow's own (ensure, fetch, start-trial)
// in a FailedEvent.
func userEvent(step, clerkID string) clerkevent.Event {
	return clerkevent.Event{Type: clerkevent.Type(step), ClerkID: clerkID}
}

func (u *userSync) markDeleted(ctx workflow.Context) error {
	u.stopFetch()
	u.state.Deleted = true
	u.state.UserID = ""
	return u.setSyncState(ctx, SyncStateDeleted)
}

// recordFailure keeps an event that can never apply visible to operators
// (query, search attribute) without blocking the user's later events. The
// activities retry everything else forever, so the only errors that reach
// here are non-retryable ones and cancellation, which ends the workflow.
func (u *userSync) recordFailure(ctx workflow.Context, ev clerkevent.Event, err error) error {
	if temporal.IsCanceledError(err) {
		return err
	}
	f := FailedEvent{EventID: ev.ID, Type: string(ev.Type), Error: err.Error()}
	if ev.User != nil {
		f.Version = ev.User.ClerkUpdatedAt
	}
	u.noteFailure(f)
	// The event did not apply: forget its ID, so a Svix Resend of it (the
	// README's repair) is not dropped as a duplicate.
	u.forget(ev.ID)
	return u.setSyncState(ctx, SyncStateFailed)
}

// noteFailure keeps f for operators (the state query), the newest last.
func (u *userSync) noteFailure(f FailedEvent) {
	u.logger.Error("Event could not be applied", "event_id", f.EventID, "type", f.Type, "error", f.Error)
	u.state.Failed = append(u.state.Failed, f)
	if n := len(u.state.Failed); n > maxFailedEvents {
		u.state.Failed = append([]FailedEvent(nil), u.state.Failed[n-maxFailedEvents:]...)
	}
}

func (u *userSync) setSyncState(ctx workflow.Context, s string) error {
	if u.state.SyncState == s {
		return nil
	}
	u.state.SyncState = s
	if err := workflow.UpsertTypedSearchAttributes(ctx, ClerkSyncStateKey.ValueSet(s)); err != nil {
		return fmt.Errorf("set %s: %w", ClerkSyncStateKey.GetName(), err)
	}
	return nil
}
