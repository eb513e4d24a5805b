package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// TrialPlan is the plan of the trial subscription every new user gets.
const TrialPlan = "trial"

// Subscription is a row of the subscriptions table.
type Subscription struct {
	ID          string     `json:"id" db:"id"`
	Plan        string     `json:"plan" db:"plan"`
	Status      string     `json:"status" db:"status"`
	TrialEndsAt *time.Time `json:"trial_ends_at" db:"trial_ends_at"`
	CreatedAt   time.Time  `json:"created_at" db:"created_at"`
	UpdatedAt   time.Time  `json:"updated_at" db:"updated_at"`
}

// TrialByClerkID returns the user's trial subscription, or nil when the user
// has none (no row, or no trial).
func (s *Store) TrialByClerkID(ctx context.Context, clerkID string) (*Subscription, error) {
	rows, err := s.pool.Query(ctx, `
select s.id, s.plan, s.status, s.trial_ends_at, s.created_at, s.updated_at
from subscriptions s join users u on u.id = s.user_id
where u.clerk_id = $1 and s.plan = $2`, clerkID, TrialPlan)
	if err != nil {
		return nil, fmt.Errorf("look up trial of %s: %w", clerkID, err)
	}
	sub, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[Subscription])
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("look up trial of %s: %w", clerkID, err)
	}
	return &sub, nil
}

// ExpireDueTrials marks trialing subscriptions whose trial has ended as
// expired, at most limit of them, and reports how many it expired. A
// subscription the product has moved on (active, canceled) is left alone.
// The statement is bounded so a backlog (the schedule paused for a week) is
// worked off in short transactions: call it again while it returns limit.
func (s *Store) ExpireDueTrials(ctx context.Context, limit int) (int, error) {
	tag, err := s.pool.Exec(ctx, `
update subscriptions set status = 'expired', updated_at = now()
where id in (
    select id from subscriptions
    where status = 'trialing' and plan = $1 and trial_ends_at <= now()
    order by trial_ends_at
    limit $2
    for update skip locked
)`, TrialPlan, limit)
	if err != nil {
		return 0, fmt.Errorf("expire due trials: %w", err)
	}
	return int(tag.RowsAffected()), nil
}

// grantTrialSQL gives the user ($1, its row $2) a trialing subscription
// ending at $4, once per user, ever: not if it was granted before
// (user_state.trial_granted_at, kept even if the product deletes the
// subscription row), not if the trial would already have ended (an old user
// seen for the first time), and the unique (user_id, plan) index makes a
// second row impossible anyway. It returns the end when it granted one, no
// row otherwise.
const grantTrialSQL = `
with granted as (
    update clerksync.user_state set trial_granted_at = now()
    where clerk_id = $1 and trial_granted_at is null and $4::timestamptz > now()
    returning clerk_id
)
insert into subscriptions (user_id, plan, status, trial_ends_at)
select $2, $3, 'trialing', $4 from granted
on conflict (user_id, plan) do nothing
returning trial_ends_at`
