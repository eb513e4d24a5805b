package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/clerksync/clerksync/internal/clerkevent"
	"github.com/clerksync/clerksync/internal/store/sqlgen"
)

// ErrNotFound means no live row exists for the Clerk ID (a user's or an
// organization's; the error wrapping it names which).
var ErrNotFound = errors.New("not found")

// ErrDeleted means the Clerk user was deleted: a tombstone exists.
var ErrDeleted = errors.New("user was deleted in Clerk")

// ErrRowLeft comes with ErrDeleted when the deleted user's row is still
// there: its removal is retrying (a product's foreign key keeps it) or never
// ran (a worker died between the tombstone and the removal), and the user's
// workflow finishes it.
var ErrRowLeft = errors.New("its row's removal has not finished")

// User is a user's row: the users table's, or the product's mapped one.
// Its JSON is the row's, by the table's own column names, with clerk_id
// added: the public shape of a user (ensure, status).
type User struct {
	// ID is the row's primary key, as text.
	ID      string
	ClerkID string
	// Row is the row as JSON (PostgreSQL's to_jsonb: times in RFC 3339).
	Row     json.RawMessage
	minimal bool
}

// MarshalJSON writes the row.
func (u User) MarshalJSON() ([]byte, error) { return u.Row, nil }

// Decode decodes the row's JSON into v (a struct of the columns a caller
// reads).
func (u User) Decode(v any) error { return json.Unmarshal(u.Row, v) }

// Outcome says what an upsert did.
type Outcome string

// Upsert outcomes.
const (
	// Inserted: the user had no row; one was created.
	Inserted Outcome = "inserted"
	// Updated: the row held an older version and was overwritten.
	Updated Outcome = "updated"
	// Stale: the row already held this version or a newer one; nothing changed.
	Stale Outcome = "stale"
	// Tombstoned: the user was deleted; nothing was written.
	Tombstoned Outcome = "tombstoned"
	// Held: a membership was not written because the row of the same user's
	// older membership of the organization, which it replaces, is kept by a
	// product's foreign key.
	Held Outcome = "held"
)

// written is the outcome of an upsert whose written CTE said inserted: no
// row (nil) when a version at least as new held, else an insert or an
// update.
func written(inserted *bool) Outcome {
	switch {
	case inserted == nil:
		return Stale
	case *inserted:
		return Inserted
	}
	return Updated
}

// UpsertResult is what UpsertUser did and the row's local ID (empty when
// Tombstoned).
type UpsertResult struct {
	UserID  string
	Outcome Outcome
	// TrialEndsAt is set when this write also gave the user its trial.
	TrialEndsAt time.Time
	// RowKept is set when the write met a tombstone beside a row that a
	// product's foreign key keeps (see FinishedDeletion).
	RowKept string
}

// UpsertUser inserts or updates the user's row if u wins over what the row
// holds (clerkevent.User.NewerThan) and the user was never deleted. The same
// transaction gives a user its trial (see grantTrialSQL) the first time its
// data comes with Clerk's created_at, so the product never sees a new user
// without one; trialPeriod 0 gives none.
func (s *Store) UpsertUser(ctx context.Context, u clerkevent.User, trialPeriod time.Duration) (UpsertResult, error) {
	var res UpsertResult
	err := s.inUserTx(ctx, u.ClerkID, func(tx pgx.Tx) (err error) {
		res, err = s.upsertUser(ctx, tx, u, trialPeriod)
		return err
	})
	if err != nil {
		return UpsertResult{}, fmt.Errorf("upsert user %s: %w", u.ClerkID, err)
	}
	return res, nil
}

// upsertUser is UpsertUser in tx, which holds the user's lock.
func (s *Store) upsertUser(ctx context.Context, tx pgx.Tx, u clerkevent.User, trialPeriod time.Duration) (UpsertResult, error) {
	var (
		res        UpsertResult
		id         *string
		inserted   *bool
		tombstoned bool
	)
	users, trials, err := s.tables(ctx)
	if err != nil {
		return res, err
	}
	u = s.mapping.Trim(u)
	createdAt := optionalTime(u.ClerkCreatedAt)
	if err := s.linkLegacyRows(ctx, tx, users, []clerkevent.User{u}); err != nil {
		return res, err
	}
	err = tx.QueryRow(ctx, users.Upsert, sqlgen.Args(sqlgen.UserRelation, u)).Scan(&id, &inserted, &tombstoned)
	if err != nil {
		return res, err
	}
	switch {
	case tombstoned:
		res.Outcome = Tombstoned
		if id != nil {
			// A deletion whose tombstone committed but whose row's removal
			// never ran (a worker killed between the two, its workflow
			// task then replayed): finish it here.
			res.RowKept, err = finishDeletion(ctx, tx, userEntity, users.Remove, u.ClerkID)
		}
		return res, err
	default:
		res.Outcome = written(inserted)
	}
	if id != nil {
		res.UserID = *id
	}
	if (res.Outcome != Inserted && res.Outcome != Updated) || createdAt == nil || trialPeriod <= 0 || trials == nil {
		return res, nil
	}
	var ends *time.Time
	if err := tx.QueryRow(ctx, trials.Grant, u.ClerkID, createdAt.Add(trialPeriod)).Scan(&ends); err != nil &&
		!errors.Is(err, pgx.ErrNoRows) {
		return res, fmt.Errorf("grant trial: %w", err)
	}
	if ends != nil {
		res.TrialEndsAt = *ends
	}
	return res, nil
}

// TombstoneUser records that Clerk deleted the user, in a transaction of its
// own: once it commits, no upsert writes to the user again, whatever happens
// to the row's removal. A tombstone for a user without a row is kept too,
// since the delete may have overtaken the create.
func (s *Store) TombstoneUser(ctx context.Context, clerkID string, deletedAt time.Time) error {
	return s.tombstone(ctx, userEntity, clerkID, []string{clerkID}, deletedAt)
}

// RemoveUserRow deletes a tombstoned user's row (or, under a soft
// deletion policy, marks it deleted and clears its personal columns);
// dependent rows go by ON DELETE CASCADE. It reports whether a row was
// removed. A product table that references users(id) without ON DELETE
// CASCADE makes it fail with a foreign key violation (see IsRefusal) until
// the product fixes its schema.
func (s *Store) RemoveUserRow(ctx context.Context, clerkID string) (bool, error) {
	users, _, err := s.tables(ctx)
	if err != nil {
		return false, err
	}
	return s.removeRow(ctx, userEntity, users.Remove, clerkID, []string{clerkID})
}

// UserByClerkID returns the live row for a Clerk ID: one indexed lookup.
// It returns ErrDeleted for a tombstoned user (with ErrRowLeft while its row
// waits for its removal) and ErrNotFound when there is neither a row nor a
// tombstone.
func (s *Store) UserByClerkID(ctx context.Context, clerkID string) (User, error) {
	r, err := s.UserRecord(ctx, clerkID)
	switch {
	case err != nil:
		return User{}, err
	case r.Tombstoned && r.Row != nil && !r.SoftDeleted:
		return User{}, fmt.Errorf("user %s: %w; %w", clerkID, ErrDeleted, ErrRowLeft)
	case r.Tombstoned:
		return User{}, fmt.Errorf("user %s: %w", clerkID, ErrDeleted)
	case r.Row == nil:
		return User{}, fmt.Errorf("user %s: %w", clerkID, ErrNotFound)
	}
	return *r.Row, nil
}

// UserRecord is what clerksync holds of a user, deleted or not: what an
// operator looks at (starter status).
type UserRecord struct {
	// Row is the user's row in the users table, or nil for none: for a
	// deleted user, the row a soft deletion keeps, or one waiting for its
	// removal.
	Row *User
	// Tombstoned: the user is deleted in Clerk.
	Tombstoned bool
	// SoftDeleted: Row is kept soft-deleted (the mapping's delete: soft),
	// its deletion done.
	SoftDeleted bool
}

// UserRecord returns what clerksync holds of a Clerk ID: its row, live,
// soft-deleted or waiting for its removal, and its tombstone.
func (s *Store) UserRecord(ctx context.Context, clerkID string) (UserRecord, error) {
	users, _, err := s.tables(ctx)
	if err != nil {
		return UserRecord{}, err
	}
	var (
		r       UserRecord
		u       User
		pending bool
	)
	err = s.db.QueryRow(ctx, users.Lookup, clerkID).Scan(&u.ID, &u.ClerkID, &u.Row, &u.minimal, &r.Tombstoned, &pending)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		if err := s.db.QueryRow(ctx,
			s.bk.of[userEntity.tombstones].deleted, clerkID).Scan(&r.Tombstoned); err != nil {
			return UserRecord{}, fmt.Errorf("look up tombstone %s: %w", clerkID, err)
		}
		return r, nil
	case err != nil:
		return UserRecord{}, fmt.Errorf("look up user %s: %w", clerkID, err)
	}
	r.Row = &u
	// A row the lookup finds that waits for no removal is a live one, or,
	// tombstoned, one a soft deletion keeps.
	r.SoftDeleted = r.Tombstoned && !pending
	return r, nil
}

// Minimal reports whether u is a minimal row, with no data from Clerk yet
// (see clerkevent.MinimalVersion).
func (u User) Minimal() bool { return u.minimal }
