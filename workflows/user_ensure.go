package workflows

import (
	"errors"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/clerksync/clerksync/activities"
	"github.com/clerksync/clerksync/internal/clerkevent"
)

// The lazy path of UserWorkflow: an ensure for a user without a row.

// fetchOutcome is what the background fetch hands the main loop.
type fetchOutcome struct {
	result activities.FetchClerkUserResult
	err    error
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
		var res activities.UpsertUserResult
		minimal := clerkevent.User{ClerkID: u.clerkID, ClerkUpdatedAt: clerkevent.MinimalVersion}
		if err := write(ctx, a.UpsertUser, minimal, &res); err != nil {
			return u.recordFailure(userEvent("ensure", u.clerkID), err)
		}
		if res.Outcome == activities.Tombstoned {
			u.markDeleted()
			if res.RowKept != "" {
				return u.keepRemoving(ctx, userEvent("ensure", u.clerkID), res.RowKept)
			}
			return nil
		}
		u.state.UserID = res.UserID
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
func (u *userSync) fetchDone(_ workflow.Context, out fetchOutcome) error {
	u.fetching = false
	switch {
	case temporal.IsCanceledError(out.err):
		return nil
	case out.err != nil:
		u.state.ProfileUnavailable = true
		return u.recordFailure(userEvent("fetch", u.clerkID), out.err)
	case out.result.NotFound:
		u.state.ProfileUnavailable = true
		return u.recordFailure(userEvent("fetch", u.clerkID), errors.New(
			"clerk answered 404 for this user: the worker's CLERK_SECRET_KEY may belong to another Clerk instance "+
				"than the one that signed the session token; the minimal row is kept, and a webhook or a backfill fills it"))
	case out.result.User != nil:
		u.pending = append(u.pending, clerkevent.Event{Type: clerkevent.UserUpdated, ClerkID: u.clerkID, User: out.result.User})
	}
	return nil
}

// userEvent names a step of the workflow's own (ensure, fetch) in a
// FailedEvent.
func userEvent(step, clerkID string) clerkevent.Event {
	return clerkevent.Event{Type: clerkevent.Type(step), ClerkID: clerkID}
}
