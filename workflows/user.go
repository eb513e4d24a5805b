package workflows

import (
	"fmt"
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
	// State is carried over from the previous run by continue-as-new.
	State UserState `json:"state"`
}

// UserState is what a UserWorkflow knows of its user. PostgreSQL stays the
// source of truth (a new run starts empty and the SQL still converges); the
// state only saves writes that would lose anyway. The StateQuery returns it.
type UserState struct {
	// Version is the clerk_updated_at of the newest data written.
	Version time.Time `json:"version,omitzero"`
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
// delete as final. It completes after IdleTimeout without events, once every
// signal is drained, and continues as new when its history grows long.
func UserWorkflow(ctx workflow.Context, in UserWorkflowInput) error {
	if in.IdleTimeout <= 0 {
		in.IdleTimeout = DefaultIdleTimeout
	}
	if in.MaxEventsPerRun <= 0 {
		in.MaxEventsPerRun = defaultMaxEventsPerRun
	}
	u := newUserSync(ctx, in)
	if err := workflow.SetQueryHandler(ctx, StateQuery, func() (UserState, error) { return u.state, nil }); err != nil {
		return fmt.Errorf("register %s query: %w", StateQuery, err)
	}
	events := workflow.GetSignalChannel(ctx, ClerkEventSignal)
	actx := workflow.WithActivityOptions(ctx, userActivityOptions)
	for {
		u.drain(events)
		if len(u.pending) > 0 {
			if err := u.applyPending(actx); err != nil {
				return err
			}
			continue
		}
		if u.received >= in.MaxEventsPerRun || workflow.GetInfo(ctx).GetContinueAsNewSuggested() {
			next := in
			next.State = u.state
			return workflow.NewContinueAsNewError(ctx, UserWorkflow, next)
		}
		if !u.awaitEvent(ctx, events, in.IdleTimeout) {
			// Idle. A signal may have raced the timer: drain once more, and
			// complete only with nothing left (Temporal also refuses to
			// complete a run that has unhandled signals).
			u.drain(events)
			if len(u.pending) == 0 {
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
}

func newUserSync(ctx workflow.Context, in UserWorkflowInput) *userSync {
	u := &userSync{
		clerkID: in.ClerkID,
		state:   in.State,
		seen:    make(map[string]bool, len(in.State.RecentEventIDs)),
		logger:  workflow.GetLogger(ctx),
	}
	for _, id := range in.State.RecentEventIDs {
		u.seen[id] = true
	}
	return u
}

// drain takes every signal already delivered, without blocking.
func (u *userSync) drain(events workflow.ReceiveChannel) {
	var ev clerkevent.Event
	for events.ReceiveAsync(&ev) {
		u.accept(ev)
		ev = clerkevent.Event{}
	}
}

// awaitEvent blocks until a signal arrives (true) or idle passes (false).
func (u *userSync) awaitEvent(ctx workflow.Context, events workflow.ReceiveChannel, idle time.Duration) bool {
	timerCtx, cancelTimer := workflow.WithCancel(ctx)
	defer cancelTimer()
	got := false
	workflow.NewSelector(ctx).
		AddReceive(events, func(c workflow.ReceiveChannel, _ bool) {
			var ev clerkevent.Event
			c.Receive(ctx, &ev)
			u.accept(ev)
			got = true
		}).
		AddFuture(workflow.NewTimer(timerCtx, idle), func(workflow.Future) {}).
		Select(ctx)
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
		if ev.User != nil && (newest == nil || ev.User.ClerkUpdatedAt.After(newest.User.ClerkUpdatedAt)) {
			newest = ev
		}
	}
	if newest == nil {
		return nil
	}
	if !newest.User.ClerkUpdatedAt.After(u.state.Version) {
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
		u.state.Deleted = true
		u.state.UserID = ""
		return u.setSyncState(ctx, SyncStateDeleted)
	case store.Inserted, store.Updated:
		u.state.Version = ev.User.ClerkUpdatedAt
	}
	if res.UserID != "" {
		u.state.UserID = res.UserID
	}
	return u.setSyncState(ctx, SyncStateSynced)
}

func (u *userSync) deleteUser(ctx workflow.Context, ev clerkevent.Event) error {
	in := activities.DeleteUserInput{ClerkID: u.clerkID, DeletedAt: ev.OccurredAt}
	if in.DeletedAt.IsZero() {
		in.DeletedAt = workflow.Now(ctx)
	}
	var a *activities.Activities
	if err := workflow.ExecuteActivity(ctx, a.DeleteUser, in).Get(ctx, nil); err != nil {
		return u.recordFailure(ctx, ev, err)
	}
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
	u.logger.Error("Event could not be applied", "event_id", ev.ID, "type", ev.Type, "error", err)
	u.state.Failed = append(u.state.Failed, f)
	if n := len(u.state.Failed); n > maxFailedEvents {
		u.state.Failed = append([]FailedEvent(nil), u.state.Failed[n-maxFailedEvents:]...)
	}
	return u.setSyncState(ctx, SyncStateFailed)
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
