package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/clerksync/clerksync/internal/store/sqlgen"
)

// TrialPlan is the plan of the trial subscription every new user gets.
const TrialPlan = sqlgen.TrialPlan

// Subscription is a user's trial subscription row: the subscriptions
// table's, or the product's mapped one.
type Subscription struct {
	Status      string     `json:"status"`
	TrialEndsAt *time.Time `json:"trial_ends_at"`
	// Row is the row as JSON, by the table's own column names.
	Row json.RawMessage `json:"row"`
}

// TrialByClerkID returns the user's trial subscription, or nil when the user
// has none (no row, no trial, or trials off).
func (s *Store) TrialByClerkID(ctx context.Context, clerkID string) (*Subscription, error) {
	_, trials, err := s.tables(ctx)
	if err != nil || trials == nil {
		return nil, err
	}
	var sub Subscription
	err = s.db.QueryRow(ctx, trials.Lookup, clerkID).Scan(&sub.Status, &sub.TrialEndsAt, &sub.Row)
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
	_, trials, err := s.tables(ctx)
	if err != nil || trials == nil {
		return 0, err
	}
	tag, err := s.db.Exec(ctx, trials.Expire, limit)
	if err != nil {
		return 0, fmt.Errorf("expire due trials: %w", err)
	}
	return int(tag.RowsAffected()), nil
}
