// Package activities holds clerksync's Temporal activities: the only code
// through which a workflow reaches PostgreSQL, the Clerk Backend API or
// Temporal's client.
//
// Every activity is idempotent and commutative with its siblings: the SQL in
// internal/store enforces last-writer-wins on Clerk's updated_at and refuses
// tombstoned users, so a retry, a duplicate and a late event all converge.
package activities

import (
	"context"
	"fmt"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/clerksync/clerksync/internal/clerkapi"
	"github.com/clerksync/clerksync/internal/clerkevent"
	"github.com/clerksync/clerksync/internal/errreport"
	"github.com/clerksync/clerksync/internal/store"
)

// ErrTypeInvalidUserData is the ApplicationError type of a write that retrying
// cannot fix (PostgreSQL refused the data itself). Workflows record such an
// event as failed for the user and move on to its next events.
const ErrTypeInvalidUserData = "InvalidUserData"

// Activities holds what the activities share. Register a *Activities with the
// worker; workflows call its methods through a nil *Activities.
type Activities struct {
	Store *store.Store
	// Clerk is the Clerk Backend API (the profile fetch, backfill and
	// reconciliation), paced by CLERK_API_RPS; nil when no
	// CLERK_SECRET_KEY is configured.
	Clerk *clerkapi.Client
	// BackfillWindows is how many created_at windows of Clerk's user
	// listing BackfillPages reads side by side (BACKFILL_WINDOWS); 0 or 1
	// reads it in one.
	BackfillWindows int
	// TrialPeriod is a new user's trial (TRIAL_PERIOD), read by the worker
	// so every starter of workflows (the ensure package included) gets the
	// same one.
	TrialPeriod time.Duration
	// Metrics count what the activities did; nil counts nothing.
	Metrics *Metrics
	// Temporal tells a backfill run which other runs are still running
	// (nil keeps every other run's seen set), and deletes a deleted
	// user's closed runs (EraseDeletedHistories).
	Temporal client.Client
	// KeepHistories keeps a deleted user's or organization's closed runs
	// in Temporal (ERASE_DELETED_HISTORIES=false), for teams that keep
	// them for audit.
	KeepHistories bool
}

// UpsertUserResult is what UpsertUser did.
type UpsertUserResult struct {
	// UserID is the local users.id; empty when Tombstoned.
	UserID  string       `json:"user_id,omitempty"`
	Outcome WriteOutcome `json:"outcome"`
	// TrialEndsAt is set when this write also gave the user its trial.
	TrialEndsAt time.Time `json:"trial_ends_at,omitzero"`
	// RowKept: the write met the user's tombstone beside its row, whose
	// removal a product's foreign key refused (the database's message); the
	// workflow retries it with RemoveDeletedUser. A row it could remove is
	// gone and leaves RowKept empty.
	RowKept string `json:"row_kept,omitempty"`
}

// DeleteUserInput names the user to delete and when Clerk deleted it.
type DeleteUserInput struct {
	ClerkID   string    `json:"clerk_id"`
	DeletedAt time.Time `json:"deleted_at"`
}

// RemovalResult says what removing a deleted object's row did (a user's,
// an organization's or a membership's). The tombstone always commits
// first; RowKept is the database's refusal to remove the row (a product
// table referencing users(id) without ON DELETE CASCADE), after which
// RemoveDeletedUser retries the removal until the product fixes its schema.
type RemovalResult struct {
	// Removed: a row was removed (false when the delete overtook the create,
	// a retry already removed it, or the row was kept).
	Removed bool `json:"removed"`
	// RowKept is the database's message when it refused to remove the row.
	RowKept string `json:"row_kept,omitempty"`
}

// UpsertUser writes the user's row if u is newer than the stored version and
// the user was never deleted, and in the same transaction gives a new user
// its trial.
func (a *Activities) UpsertUser(ctx context.Context, u clerkevent.User) (UpsertUserResult, error) {
	if err := validUser(u); err != nil {
		return UpsertUserResult{}, a.Metrics.failed("upsert_user", err)
	}
	res, err := a.Store.UpsertUser(ctx, u, a.TrialPeriod)
	if err != nil {
		return UpsertUserResult{}, a.Metrics.failed("upsert_user", a.classify(ctx, err))
	}
	out := UpsertUserResult{UserID: res.UserID, Outcome: WriteOutcome(res.Outcome), TrialEndsAt: res.TrialEndsAt, RowKept: res.RowKept}
	a.Metrics.userWritten(out)
	return out, nil
}

// DeleteUser tombstones the user, so no later event brings it back, then
// removes its row (dependent rows cascade). A removal the database refuses is
// reported in the result, not retried here: the deletion has already taken
// effect for clerksync, and the workflow shows the refusal to operators
// while RemoveDeletedUser retries.
func (a *Activities) DeleteUser(ctx context.Context, in DeleteUserInput) (RemovalResult, error) {
	res, err := a.deleteUser(ctx, in)
	if err != nil {
		return res, a.Metrics.failed("delete_user", err)
	}
	a.Metrics.deleted(res)
	return res, nil
}

func (a *Activities) deleteUser(ctx context.Context, in DeleteUserInput) (RemovalResult, error) {
	if err := clerkevent.ValidateClerkID(in.ClerkID); err != nil {
		return RemovalResult{}, invalid(fmt.Errorf("delete user: %w", err))
	}
	if err := a.Store.TombstoneUser(ctx, in.ClerkID, in.DeletedAt); err != nil {
		return RemovalResult{}, a.classify(ctx, err)
	}
	return rowRemoval(a.Store.RemoveUserRow(ctx, in.ClerkID))
}

// rowRemoval is what removing a deleted object's row did: removed, or kept
// by a product's foreign key (the database's message, redacted, in RowKept,
// for the workflow to show while it retries). Any other error is returned
// to be retried.
func rowRemoval(removed bool, err error) (RemovalResult, error) {
	switch {
	case store.IsRefusal(err):
		return RemovalResult{RowKept: store.Redact(err).Error()}, nil
	case err != nil:
		return RemovalResult{}, err
	}
	return RemovalResult{Removed: removed}, nil
}

// RemoveDeletedUser removes a tombstoned user's row. Every failure is
// retried, a refusal included: the product fixes its schema, and the next
// attempt lands.
func (a *Activities) RemoveDeletedUser(ctx context.Context, clerkID string) (RemovalResult, error) {
	if err := clerkevent.ValidateClerkID(clerkID); err != nil {
		return RemovalResult{}, invalid(fmt.Errorf("remove deleted user: %w", err))
	}
	removed, err := a.Store.RemoveUserRow(ctx, clerkID)
	if err != nil {
		return RemovalResult{}, err
	}
	return RemovalResult{Removed: removed}, nil
}

func validUser(u clerkevent.User) error {
	if err := clerkevent.ValidateClerkID(u.ClerkID); err != nil {
		return invalid(fmt.Errorf("upsert user: %w", err))
	}
	if u.ClerkUpdatedAt.IsZero() {
		return invalid(fmt.Errorf("upsert user %s: no clerk_updated_at to order it by", u.ClerkID))
	}
	return nil
}

// conflictAttempts bounds how often a scheduled write retries a
// conflict (store.Conflict: a unique value another row holds) before its
// event fails, on top of the local activity's budget: about 30 seconds in
// all, time for the other user's event that frees the value to land.
// The user's next event tries again.
const conflictAttempts = 5

// classify marks errors that no retry can fix as non-retryable, with what
// refused them (a store.Refusal, as the error's details); everything else
// is retried. A conflict is retried by the local activity and by the first
// conflictAttempts attempts of a scheduled one, then failed the same way.
func (a *Activities) classify(ctx context.Context, err error) error {
	// A table changed under its SQL (a product migration): the next
	// attempt builds the SQL from the table as it is, or fails naming what
	// no longer fits.
	a.Store.ForgetIfStale(err)
	switch a.Store.Classify(err) {
	case store.Refused:
		return dataRefused(err)
	case store.Conflict:
		if info := activity.GetInfo(ctx); !info.IsLocalActivity && info.Attempt >= conflictAttempts {
			return dataRefused(err)
		}
	case store.Transient:
		// Past its local budget a write retries as a scheduled activity
		// for as long as it takes; once it has failed there a few times,
		// someone should know (a Sentry report, with SENTRY_DSN), once.
		if info := activity.GetInfo(ctx); !info.IsLocalActivity && info.Attempt == writeReportAttempt {
			activity.GetLogger(ctx).Warn(errreport.WriteKeepsFailing, "attempt", info.Attempt, "error", store.Redact(err))
		}
	}
	return err
}

// writeReportAttempt is the attempt of a scheduled write whose transient
// failure is logged (and reported): seconds past the write's 15-second
// local budget.
const writeReportAttempt = 3

// Refusal names what refused an event's write, as a failed write's
// ApplicationError carries it (its details) for the workflow to show:
// PostgreSQL's SQLSTATE and the constraint, table and column it named. It
// holds no value of the row.
type Refusal struct {
	SQLState   string `json:"sqlstate"`
	Constraint string `json:"constraint,omitempty"`
	Table      string `json:"table,omitempty"`
	Column     string `json:"column,omitempty"`
}

// dataRefused is err as the non-retryable error of an event PostgreSQL
// refused, carrying its Refusal.
func dataRefused(err error) error {
	r, _ := store.RefusalOf(err)
	return temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeInvalidUserData, err, Refusal(r))
}

func invalid(err error) error {
	return temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeInvalidUserData, err)
}
