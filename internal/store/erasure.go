package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/clerksync/clerksync/ensure/contract"
)

// Erasure is a deleted user or organization whose workflow runs are still
// to be deleted from Temporal.
type Erasure struct {
	// Entity is contract.User or contract.Organization: the entities with
	// a workflow of their own, whose histories are erased.
	Entity  contract.Entity
	ClerkID string
	// RequestedAt is when a deletion or a later run asked for it.
	RequestedAt time.Time
}

// ErasurePage is one page of pending erasures, in the order
// (RequestedAt, ClerkID) of one entity.
type ErasurePage struct {
	Erasures []Erasure
	// AsOf is the database's time when the page was read: no run that
	// asked for an erasure later is accounted for by it (MarkErased).
	AsOf time.Time
}

// erasureEntity returns the tombstones of the entity an Erasure names.
func erasureEntity(name contract.Entity) (entity, error) {
	for _, e := range entities {
		// Only a user's and an organization's runs are theirs: a
		// membership's events run in its organization's.
		if e.name == name && name.Workflow() == name {
			return e, nil
		}
	}
	return entity{}, fmt.Errorf("erasure of %q: not a user or an organization", name)
}

// RequestErasure records that a run of a deleted user's or organization's
// workflow has held events since its last erasure: a late event refused by
// the tombstone still leaves a run whose history holds it. A deletion's
// tombstone requests one by itself.
func (s *Store) RequestErasure(ctx context.Context, entityName contract.Entity, clerkID string) error {
	e, err := erasureEntity(entityName)
	if err != nil {
		return err
	}
	if _, err := s.db.Exec(ctx, s.bk.of[e.tombstones].requestErasure, clerkID); err != nil {
		return fmt.Errorf("request erasure of %s %s: %w", e.name, clerkID, err)
	}
	return nil
}

// PendingErasures returns up to limit of the entity's erasures that were
// requested at least settle ago and not done since, after the one after
// names (the zero Erasure: from the first). settle leaves the runs that
// asked time to show in Temporal's visibility, which lags behind the run.
func (s *Store) PendingErasures(ctx context.Context, entityName contract.Entity, settle time.Duration, after Erasure, limit int) (ErasurePage, error) {
	e, err := erasureEntity(entityName)
	if err != nil {
		return ErasurePage{}, err
	}
	rows, err := s.db.Query(ctx, s.bk.of[e.tombstones].pendingErasures, settle.Seconds(), after.RequestedAt, after.ClerkID, limit)
	if err != nil {
		return ErasurePage{}, fmt.Errorf("pending erasures of %ss: %w", e.name, err)
	}
	page := ErasurePage{AsOf: time.Now()}
	_, err = pgx.ForEachRow(rows, []any{&after.ClerkID, &after.RequestedAt, &page.AsOf}, func() error {
		page.Erasures = append(page.Erasures, Erasure{Entity: e.name, ClerkID: after.ClerkID, RequestedAt: after.RequestedAt})
		return nil
	})
	if err != nil {
		return ErasurePage{}, fmt.Errorf("pending erasures of %ss: %w", e.name, err)
	}
	return page, nil
}

// MarkErased records that every run of the erasure's entity that asked for
// it by asOf (an ErasurePage's) is deleted from Temporal. A run that asked
// later keeps the entity pending.
func (s *Store) MarkErased(ctx context.Context, er Erasure, asOf time.Time) error {
	e, err := erasureEntity(er.Entity)
	if err != nil {
		return err
	}
	if _, err := s.db.Exec(ctx, s.bk.of[e.tombstones].markErased,
		er.ClerkID, asOf); err != nil {
		return fmt.Errorf("mark %s %s erased: %w", e.name, er.ClerkID, err)
	}
	return nil
}

// ErasureState is where the erasure of a deleted user's or organization's
// runs stands, for operators (`starter status`).
type ErasureState struct {
	// RequestedAt is when the deletion or the latest run asked for it.
	RequestedAt time.Time `json:"requested_at"`
	// ErasedAt is when the sweep last found none of the runs running and
	// deleted the closed ones; nil before the first time.
	ErasedAt *time.Time `json:"erased_at"`
	// Pending: a run asked after that; the next sweep erases it.
	Pending bool `json:"pending"`
}

// ErasureOf returns the erasure state of a deleted user or organization,
// nil for one that has no tombstone.
func (s *Store) ErasureOf(ctx context.Context, entityName contract.Entity, clerkID string) (*ErasureState, error) {
	e, err := erasureEntity(entityName)
	if err != nil {
		return nil, err
	}
	var st ErasureState
	err = s.db.QueryRow(ctx, s.bk.of[e.tombstones].erasureOf, clerkID).Scan(&st.RequestedAt, &st.ErasedAt, &st.Pending)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("erasure of %s %s: %w", e.name, clerkID, err)
	}
	return &st, nil
}
