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
	"strings"
	"time"

	"github.com/jackc/pgerrcode"
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
	ID             string     `json:"id" db:"id"`
	ClerkID        string     `json:"clerk_id" db:"clerk_id"`
	Email          *string    `json:"email" db:"email"`
	FirstName      *string    `json:"first_name" db:"first_name"`
	LastName       *string    `json:"last_name" db:"last_name"`
	Username       *string    `json:"username" db:"username"`
	ImageURL       *string    `json:"image_url" db:"image_url"`
	ClerkCreatedAt *time.Time `json:"clerk_created_at" db:"clerk_created_at"`
	ClerkUpdatedAt time.Time  `json:"clerk_updated_at" db:"clerk_updated_at"`
	CreatedAt      time.Time  `json:"created_at" db:"created_at"`
	UpdatedAt      time.Time  `json:"updated_at" db:"updated_at"`
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
	UserID  string
	Outcome Outcome
	// TrialEndsAt is set when this write also gave the user its trial.
	TrialEndsAt time.Time
}

// Pool defaults, used when DATABASE_URL does not set pool_max_conns or
// connect_timeout.
const (
	// DefaultMaxConns: pgxpool's own default is the CPU count (at least 4),
	// which throttles the burst of retried writes after a database outage on
	// a small machine. 16 connections drain a backlog 15-40% faster on 2
	// cores, and more gain nothing there (BenchmarkUpsertUser_PoolSize,
	// docs/benchmarks.md); 16 is well within PostgreSQL's default
	// max_connections of 100.
	DefaultMaxConns = 16
	// DefaultConnectTimeout bounds dialing and the startup handshake, so a
	// PostgreSQL that accepts connections and never answers fails the
	// attempt (and Temporal retries it) instead of hanging it.
	DefaultConnectTimeout = 5 * time.Second
)

// Open creates the pool. It does not connect yet: the first query does, so a
// process can start while PostgreSQL is still coming up.
func Open(ctx context.Context, databaseURL string) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(databaseURL)
	if err != nil {
		return nil, fmt.Errorf("parse DATABASE_URL: %w", err)
	}
	if !strings.Contains(databaseURL, "pool_max_conns") {
		cfg.MaxConns = DefaultMaxConns
	}
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = DefaultConnectTimeout
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

// upsertUserSQL writes a user under last-writer-wins on Clerk's updated_at,
// ties broken by the content hash, and refuses a tombstoned Clerk ID. The
// same version with the same content is a no-op, so a duplicate delivery
// changes nothing.
const upsertUserSQL = `
with tombstone as (
    select 1 from user_tombstones where clerk_id = $1
), written as (
    insert into users (clerk_id, email, first_name, last_name, username, image_url,
                       clerk_created_at, clerk_updated_at, content_hash)
    select $1, $2, $3, $4, $5, $6, $7, $8, $9
    where not exists (select 1 from tombstone)
    on conflict (clerk_id) do update set
        email            = excluded.email,
        first_name       = excluded.first_name,
        last_name        = excluded.last_name,
        username         = excluded.username,
        image_url        = excluded.image_url,
        clerk_created_at = coalesce(excluded.clerk_created_at, users.clerk_created_at),
        clerk_updated_at = excluded.clerk_updated_at,
        content_hash     = excluded.content_hash,
        updated_at       = now()
    where (users.clerk_updated_at, users.content_hash) < (excluded.clerk_updated_at, excluded.content_hash)
    returning id, xmax = 0 as inserted
)
select
    coalesce((select id from written), (select id from users where clerk_id = $1)),
    (select inserted from written),
    exists (select 1 from tombstone)`

// UpsertUser inserts or updates the user's row if u wins over what the row
// holds (clerkevent.User.NewerThan) and the user was never deleted. The same
// transaction gives a user its trial (see grantTrialSQL) the first time its
// data comes with Clerk's created_at, so the product never sees a new user
// without one; trialPeriod 0 gives none.
func (s *Store) UpsertUser(ctx context.Context, u clerkevent.User, trialPeriod time.Duration) (UpsertResult, error) {
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
			u.Username, u.ImageURL, createdAt, u.ClerkUpdatedAt, u.ContentHash()).Scan(&id, &inserted, &tombstoned)
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
		if (res.Outcome != Inserted && res.Outcome != Updated) || createdAt == nil || trialPeriod <= 0 {
			return nil
		}
		var ends *time.Time
		if err := tx.QueryRow(ctx, grantTrialSQL, res.UserID, TrialPlan, createdAt.Add(trialPeriod)).Scan(&ends); err != nil &&
			!errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("grant trial: %w", err)
		}
		if ends != nil {
			res.TrialEndsAt = *ends
		}
		return nil
	})
	if err != nil {
		return UpsertResult{}, fmt.Errorf("upsert user %s: %w", u.ClerkID, err)
	}
	return res, nil
}

// grantTrialSQL gives the user ($1) a trialing subscription ending at $3,
// once per user, ever: not if it was granted before (trial_granted_at, kept
// even if the product deletes the subscription row), not if the trial would
// already have ended (an old user seen for the first time), and the unique
// (user_id, plan) index makes a second row impossible anyway. It returns the
// end when it granted one, no row otherwise.
const grantTrialSQL = `
with granted as (
    update users set trial_granted_at = now()
    where id = $1 and trial_granted_at is null and $3::timestamptz > now()
    returning id
)
insert into subscriptions (user_id, plan, status, trial_ends_at)
select id, $2, 'trialing', $3 from granted
on conflict (user_id, plan) do nothing
returning trial_ends_at`

// TombstoneUser records that Clerk deleted the user, in a transaction of its
// own: once it commits, no upsert writes to the user again, whatever happens
// to the row's removal. A tombstone for a user without a row is kept too,
// since the delete may have overtaken the create.
func (s *Store) TombstoneUser(ctx context.Context, clerkID string, deletedAt time.Time) error {
	err := s.inUserTx(ctx, clerkID, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx,
			`insert into user_tombstones (clerk_id, deleted_at) values ($1, $2) on conflict (clerk_id) do nothing`,
			clerkID, deletedAt)
		return err
	})
	if err != nil {
		return fmt.Errorf("tombstone user %s: %w", clerkID, err)
	}
	return nil
}

// RemoveUserRow deletes a tombstoned user's row; dependent rows go by ON
// DELETE CASCADE. It reports whether a row was removed. A product table that
// references users(id) without ON DELETE CASCADE makes it fail with a foreign
// key violation (see IsRefusal) until the product fixes its schema.
func (s *Store) RemoveUserRow(ctx context.Context, clerkID string) (bool, error) {
	var removed bool
	err := s.inUserTx(ctx, clerkID, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `
delete from users
where clerk_id = $1 and exists (select 1 from user_tombstones where clerk_id = $1)`, clerkID)
		removed = tag.RowsAffected() > 0
		return err
	})
	if err != nil {
		return false, fmt.Errorf("remove row of deleted user %s: %w", clerkID, err)
	}
	return removed, nil
}

// UserByClerkID returns the live row for a Clerk ID: one indexed lookup.
// It returns ErrDeleted for a tombstoned user (even while a row the product
// still references waits for its removal) and ErrNotFound when there is
// neither a row nor a tombstone.
func (s *Store) UserByClerkID(ctx context.Context, clerkID string) (User, error) {
	rows, err := s.pool.Query(ctx, `
select id, clerk_id, email, first_name, last_name, username, image_url,
       clerk_created_at, clerk_updated_at, created_at, updated_at,
       exists (select 1 from user_tombstones t where t.clerk_id = $1) as deleted
from users where clerk_id = $1`, clerkID)
	if err != nil {
		return User{}, fmt.Errorf("look up user %s: %w", clerkID, err)
	}
	row, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[userRow])
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		var deleted bool
		if err := s.pool.QueryRow(ctx,
			`select exists (select 1 from user_tombstones where clerk_id = $1)`, clerkID).Scan(&deleted); err != nil {
			return User{}, fmt.Errorf("look up tombstone %s: %w", clerkID, err)
		}
		if deleted {
			return User{}, fmt.Errorf("user %s: %w", clerkID, ErrDeleted)
		}
		return User{}, fmt.Errorf("user %s: %w", clerkID, ErrNotFound)
	case err != nil:
		return User{}, fmt.Errorf("look up user %s: %w", clerkID, err)
	case row.Deleted:
		return User{}, fmt.Errorf("user %s: %w", clerkID, ErrDeleted)
	}
	return row.User, nil
}

// userRow is a users row and whether its Clerk ID is tombstoned.
type userRow struct {
	User
	Deleted bool `db:"deleted"`
}

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

// ownTables are the tables clerksync's migrations create. A NOT NULL or CHECK
// violation there is clerksync's data being refused; the same violation in a
// product's table (through a trigger) is the product's to fix, and a retry
// lands once it has.
var ownTables = map[string]bool{"users": true, "user_tombstones": true, "subscriptions": true}

// IsPermanent reports whether err is PostgreSQL refusing the data itself,
// which no retry can change: a data exception (SQLSTATE class 22, such as a
// NUL byte in text), or a NOT NULL or CHECK violation on one of clerksync's
// own tables. A foreign key or unique violation is not permanent: a
// product's constraint may be fixed, or the conflicting row may change.
func IsPermanent(err error) bool {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return false
	}
	switch {
	case pgerrcode.IsDataException(pgErr.Code):
		return true
	case pgErr.Code == pgerrcode.NotNullViolation, pgErr.Code == pgerrcode.CheckViolation:
		return ownTables[pgErr.TableName]
	}
	return false
}

// IsRefusal reports whether err is an integrity constraint the database
// enforces against a write (SQLSTATE class 23, such as a product's foreign key
// without ON DELETE CASCADE): retrying may land once the product changes its
// schema or data, and meanwhile operators need to see the database's message.
func IsRefusal(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgerrcode.IsIntegrityConstraintViolation(pgErr.Code)
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
