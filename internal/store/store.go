// Package store is clerksync's PostgreSQL layer: the pgx pool, the embedded
// migrations and every SQL statement. Nothing else in clerksync writes SQL.
//
// Each write takes a transaction-scoped advisory lock on the Clerk ID, so an
// upsert and a delete for the same user (a webhook, a retried attempt that is
// still running, a backfill) serialize: without it, READ COMMITTED lets an
// insert slip in beside a concurrent delete and resurrect a deleted user.
package store

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/tern/v2/migrate"

	"github.com/clerksync/clerksync/internal/clerkevent"
)

//go:embed migrations/*.sql
var migrations embed.FS

// versionTable is where tern records the applied migration version.
const versionTable = "public.clerksync_schema_version"

// ErrNotFound means no live row exists for the Clerk ID.
var ErrNotFound = errors.New("user not found")

// ErrDeleted means the Clerk user was deleted: a tombstone exists.
var ErrDeleted = errors.New("user was deleted in Clerk")

// Store holds the connection pool. It is safe for concurrent use.
type Store struct {
	pool *pgxpool.Pool
}

// User is one row of the users table. Its JSON is the public shape of a user
// (ensure, status): the column names, times in RFC 3339.
type User struct {
	ID             string     `json:"id"`
	ClerkID        string     `json:"clerk_id"`
	Email          *string    `json:"email"`
	FirstName      *string    `json:"first_name"`
	LastName       *string    `json:"last_name"`
	Username       *string    `json:"username"`
	ImageURL       *string    `json:"image_url"`
	ClerkCreatedAt *time.Time `json:"clerk_created_at"`
	ClerkUpdatedAt time.Time  `json:"clerk_updated_at"`
	CreatedAt      time.Time  `json:"created_at"`
	UpdatedAt      time.Time  `json:"updated_at"`
}

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
)

// UpsertResult is what UpsertUser did and the row's local ID (empty when
// Tombstoned).
type UpsertResult struct {
	UserID  string  `json:"user_id,omitempty"`
	Outcome Outcome `json:"outcome"`
}

// Open creates the pool. It does not connect yet: the first query does, so a
// process can start while PostgreSQL is still coming up.
func Open(ctx context.Context, databaseURL string) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(databaseURL)
	if err != nil {
		return nil, fmt.Errorf("parse DATABASE_URL: %w", err)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("create pgx pool: %w", err)
	}
	return &Store{pool: pool}, nil
}

// New wraps a pool the caller owns (the product's own, for ensure); the
// caller closes it.
func New(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

// Pool returns the underlying pool, for code that shares it (ensure).
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// Close closes every connection.
func (s *Store) Close() { s.pool.Close() }

// Ping checks that PostgreSQL answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.pool.Ping(ctx); err != nil {
		return fmt.Errorf("ping postgres: %w", err)
	}
	return nil
}

// Migrate applies the embedded migrations. tern holds a session advisory lock
// while it works, so processes that start together apply each migration once.
func (s *Store) Migrate(ctx context.Context) error {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("migrate: acquire connection: %w", err)
	}
	defer conn.Release()
	m, err := migrate.NewMigrator(ctx, conn.Conn(), versionTable)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	if err := m.LoadMigrations(sub); err != nil {
		return fmt.Errorf("migrate: load: %w", err)
	}
	if err := m.Migrate(ctx); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	return nil
}

// upsertUserSQL writes a user under last-writer-wins on Clerk's updated_at and
// refuses a tombstoned Clerk ID. An equal version is a no-op, so a duplicate
// delivery changes nothing.
const upsertUserSQL = `
with tombstone as (
    select 1 from user_tombstones where clerk_id = $1
), written as (
    insert into users (clerk_id, email, first_name, last_name, username, image_url,
                       clerk_created_at, clerk_updated_at)
    select $1, $2, $3, $4, $5, $6, $7, $8
    where not exists (select 1 from tombstone)
    on conflict (clerk_id) do update set
        email            = excluded.email,
        first_name       = excluded.first_name,
        last_name        = excluded.last_name,
        username         = excluded.username,
        image_url        = excluded.image_url,
        clerk_created_at = coalesce(excluded.clerk_created_at, users.clerk_created_at),
        clerk_updated_at = excluded.clerk_updated_at,
        updated_at       = now()
    where users.clerk_updated_at < excluded.clerk_updated_at
    returning id, xmax = 0 as inserted
)
select
    coalesce((select id from written), (select id from users where clerk_id = $1)),
    (select inserted from written),
    exists (select 1 from tombstone)`

// UpsertUser inserts or updates the user's row if u is newer than what the row
// holds and the user was never deleted.
func (s *Store) UpsertUser(ctx context.Context, u clerkevent.User) (UpsertResult, error) {
	var res UpsertResult
	err := s.inUserTx(ctx, u.ClerkID, func(tx pgx.Tx) error {
		var (
			id         *string
			inserted   *bool
			tombstoned bool
		)
		var createdAt *time.Time
		if !u.ClerkCreatedAt.IsZero() {
			createdAt = &u.ClerkCreatedAt
		}
		err := tx.QueryRow(ctx, upsertUserSQL, u.ClerkID, u.Email, u.FirstName, u.LastName,
			u.Username, u.ImageURL, createdAt, u.ClerkUpdatedAt).Scan(&id, &inserted, &tombstoned)
		if err != nil {
			return err
		}
		switch {
		case tombstoned:
			res.Outcome = Tombstoned
		case inserted == nil:
			res.Outcome = Stale
		case *inserted:
			res.Outcome = Inserted
		default:
			res.Outcome = Updated
		}
		if id != nil && !tombstoned {
			res.UserID = *id
		}
		return nil
	})
	if err != nil {
		return UpsertResult{}, fmt.Errorf("upsert user %s: %w", u.ClerkID, err)
	}
	return res, nil
}

// DeleteUser removes the user's row (dependent rows go by ON DELETE CASCADE)
// and records the tombstone. Deleting an unknown user succeeds and still
// leaves a tombstone, since the delete may have overtaken the create. It
// reports whether a row was removed.
func (s *Store) DeleteUser(ctx context.Context, clerkID string, deletedAt time.Time) (bool, error) {
	var removed bool
	err := s.inUserTx(ctx, clerkID, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx,
			`insert into user_tombstones (clerk_id, deleted_at) values ($1, $2) on conflict (clerk_id) do nothing`,
			clerkID, deletedAt); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `delete from users where clerk_id = $1`, clerkID)
		removed = tag.RowsAffected() > 0
		return err
	})
	if err != nil {
		return false, fmt.Errorf("delete user %s: %w", clerkID, err)
	}
	return removed, nil
}

// UserByClerkID returns the live row for a Clerk ID: one indexed lookup.
// It returns ErrDeleted for a tombstoned user and ErrNotFound when there is
// neither a row nor a tombstone.
func (s *Store) UserByClerkID(ctx context.Context, clerkID string) (User, error) {
	var u User
	err := s.pool.QueryRow(ctx, `
select id, clerk_id, email, first_name, last_name, username, image_url,
       clerk_created_at, clerk_updated_at, created_at, updated_at
from users where clerk_id = $1`, clerkID).Scan(&u.ID, &u.ClerkID, &u.Email, &u.FirstName,
		&u.LastName, &u.Username, &u.ImageURL, &u.ClerkCreatedAt, &u.ClerkUpdatedAt,
		&u.CreatedAt, &u.UpdatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		var deleted bool
		if err := s.pool.QueryRow(ctx,
			`select exists (select 1 from user_tombstones where clerk_id = $1)`, clerkID).Scan(&deleted); err != nil {
			return User{}, fmt.Errorf("look up tombstone %s: %w", clerkID, err)
		}
		if deleted {
			return User{}, fmt.Errorf("user %s: %w", clerkID, ErrDeleted)
		}
		return User{}, fmt.Errorf("user %s: %w", clerkID, ErrNotFound)
	}
	if err != nil {
		return User{}, fmt.Errorf("look up user %s: %w", clerkID, err)
	}
	return u, nil
}

// TrialPlan is the plan of the trial subscription every new user gets.
const TrialPlan = "trial"

// TrialOutcome says what CreateTrialSubscription did.
type TrialOutcome string

// Trial outcomes.
const (
	TrialCreated TrialOutcome = "created"
	TrialExists  TrialOutcome = "exists"
	TrialNoUser  TrialOutcome = "no_user"
)

// CreateTrialSubscription gives the user a trialing subscription ending at
// endsAt, once: the unique (user_id, plan) index turns a repeat into a no-op.
func (s *Store) CreateTrialSubscription(ctx context.Context, clerkID string, endsAt time.Time) (TrialOutcome, error) {
	var outcome TrialOutcome
	err := s.pool.QueryRow(ctx, `
with u as (
    select id from users where clerk_id = $1
), created as (
    insert into subscriptions (user_id, plan, status, trial_ends_at)
    select id, $2, 'trialing', $3 from u
    on conflict (user_id, plan) do nothing
    returning id
)
select case
    when exists (select 1 from created) then 'created'
    when exists (select 1 from u) then 'exists'
    else 'no_user'
end`, clerkID, TrialPlan, endsAt).Scan(&outcome)
	if err != nil {
		return "", fmt.Errorf("create trial for %s: %w", clerkID, err)
	}
	return outcome, nil
}

// ExpireTrial marks the user's trial expired if it is still trialing, and
// reports whether it did: a subscription the product has meanwhile moved on
// (active, canceled) is left alone.
func (s *Store) ExpireTrial(ctx context.Context, clerkID string) (bool, error) {
	tag, err := s.pool.Exec(ctx, `
update subscriptions s set status = 'expired', updated_at = now()
from users u
where u.id = s.user_id and u.clerk_id = $1 and s.plan = $2 and s.status = 'trialing'`, clerkID, TrialPlan)
	if err != nil {
		return false, fmt.Errorf("expire trial for %s: %w", clerkID, err)
	}
	return tag.RowsAffected() > 0, nil
}

// IsPermanent reports whether err is PostgreSQL refusing the data itself
// (SQLSTATE class 22, data exception, such as a NUL byte in text; or class
// 23, integrity constraint violation): retrying the same write cannot succeed.
func IsPermanent(err error) bool {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return false
	}
	class := pgErr.Code[:2]
	return class == "22" || class == "23"
}

// inUserTx runs fn in a transaction that holds the advisory lock for clerkID.
func (s *Store) inUserTx(ctx context.Context, clerkID string, fn func(pgx.Tx) error) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `select pg_advisory_xact_lock(hashtextextended($1, 0))`, clerkID); err != nil {
			return fmt.Errorf("lock: %w", err)
		}
		return fn(tx)
	})
}
