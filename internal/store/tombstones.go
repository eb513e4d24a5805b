package store

// Deletions: the tombstone that makes a deletion final, and the removal of
// the deleted object's row that follows it, for every entity alike.

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/clerksync/clerksync/ensure/contract"
)

// finishDeletion removes the row of a tombstoned object that a write found
// still there. A product's foreign key that refuses the removal comes back
// as its message (see savepoint), the rest of the write standing.
func finishDeletion(ctx context.Context, tx pgx.Tx, e entity, remove, clerkID string) (rowKept string, err error) {
	return savepoint(ctx, tx, func(sp pgx.Tx) error {
		if _, err := sp.Exec(ctx, remove, clerkID); err != nil {
			return fmt.Errorf("remove row of deleted %s %s: %w", e.name, clerkID, err)
		}
		return nil
	})
}

// savepoint runs fn in a savepoint of tx. An integrity constraint that
// refuses fn's statement (IsRefusal: a product's foreign key) rolls back
// fn alone and comes back as the database's message, redacted, for the
// workflow to show while it retries; any other error is returned.
func savepoint(ctx context.Context, tx pgx.Tx, fn func(pgx.Tx) error) (refused string, err error) {
	sp, err := tx.Begin(ctx)
	if err != nil {
		return "", fmt.Errorf("savepoint: %w", err)
	}
	err = fn(sp)
	switch {
	case IsRefusal(err):
		if rbErr := sp.Rollback(ctx); rbErr != nil {
			return "", fmt.Errorf("roll back to savepoint: %w", rbErr)
		}
		return Redact(err).Error(), nil
	case err != nil:
		return "", err
	}
	return "", sp.Commit(ctx)
}

// entity is a kind of Clerk object and its tombstone table, in the
// bookkeeping schema (its statements: bookkeeping.of).
type entity struct {
	name       contract.Entity
	tombstones string
}

var (
	userEntity         = entity{contract.User, "user_tombstones"}
	organizationEntity = entity{contract.Organization, "organization_tombstones"}
	membershipEntity   = entity{contract.Membership, "organization_membership_tombstones"}
)

// entities are every contract.Entity's, in contract.Entities' order.
var entities = []entity{userEntity, organizationEntity, membershipEntity}

// tombstone records a deletion, in a transaction of its own holding the
// advisory locks of locks: once it commits, no write brings the object back.
func (s *Store) tombstone(ctx context.Context, e entity, clerkID string, locks []string, deletedAt time.Time) error {
	err := s.inLockedTx(ctx, locks, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx,
			s.bk.of[e.tombstones].tombstone,
			clerkID, deletedAt)
		return err
	})
	if err != nil {
		return fmt.Errorf("tombstone %s %s: %w", e.name, clerkID, err)
	}
	return nil
}

// removeRow runs remove, which removes a tombstoned object's row
// (dependent rows go by ON DELETE CASCADE), and reports whether there was
// one; a product's foreign key without ON DELETE CASCADE makes it fail (see
// IsRefusal).
func (s *Store) removeRow(ctx context.Context, e entity, remove, clerkID string, locks []string) (bool, error) {
	var removed bool
	err := s.inLockedTx(ctx, locks, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, remove, clerkID)
		removed = tag.RowsAffected() > 0
		return err
	})
	if err != nil {
		return false, fmt.Errorf("remove row of deleted %s %s: %w", e.name, clerkID, err)
	}
	return removed, nil
}
