// Package store is clerksync's PostgreSQL layer: the pgx pool and every SQL
// statement (the migrations that create its tables are package
// migrations'). Nothing else in clerksync writes SQL.
//
// Each write takes a transaction-scoped advisory lock on the Clerk ID, so an
// upsert and a delete for the same user (a webhook, a retried attempt that is
// still running, a backfill) serialize: without it, READ COMMITTED lets an
// insert slip in beside a concurrent delete and resurrect a deleted user.
package store

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/clerksync/clerksync/internal/mapping"
	"github.com/clerksync/clerksync/internal/store/sqlgen"
)

// DefaultSchema is the schema of clerksync's bookkeeping (CLERKSYNC_SCHEMA's
// default): the name its SQL is written with.
const DefaultSchema = "clerksync"

// schemaName is what a bookkeeping schema may be called: a lowercase
// PostgreSQL identifier that needs no quoting, so that it can be spliced
// into SQL and into tern's version table name (which tern does not quote).
var schemaName = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

// ValidateSchema checks a bookkeeping schema name (CLERKSYNC_SCHEMA).
func ValidateSchema(name string) error {
	if !schemaName.MatchString(name) {
		return fmt.Errorf("schema name %q: want lowercase letters, digits and _, not starting with a digit, at most 63", name)
	}
	return nil
}

// Layout says where clerksync's tables are. Its zero value is the default:
// bookkeeping in the schema "clerksync", the users, subscriptions,
// organizations and organization_memberships tables created and owned by
// clerksync in the first schema of the connection's search_path.
type Layout struct {
	// Schema holds clerksync's bookkeeping (tombstones, each row's
	// version, trial grants, backfill state, migration versions); empty
	// is DefaultSchema.
	Schema string
	// Mapping, when set (CLERKSYNC_MAPPING), maps users and their trials
	// onto the product's own tables: clerksync then creates no table
	// outside its bookkeeping schema, and runs no DDL on the product's.
	Mapping *mapping.Mapping
}

// Store holds the connection pool. It is safe for concurrent use.
type Store struct {
	pool *pgxpool.Pool
	// db runs the statements: the pool, or the transaction a proof of the
	// mapping writes in and rolls back (ProveMapping).
	db db
	// schema is the bookkeeping schema, which every statement is written
	// for (the compiled ones when they are compiled).
	schema  string
	bk      bookkeeping
	mapping *mapping.Mapping

	// mu guards compiled: the SQL of every table, built on first use from
	// the mapped tables' columns (see statements), or at New for
	// clerksync's own.
	mu       sync.Mutex
	compiled *sqlgen.Statements
}

// db is what runs a store's statements: a pool, or a transaction (whose
// Begin is a savepoint).
type db interface {
	Begin(ctx context.Context) (pgx.Tx, error)
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// Pool defaults, used when DATABASE_URL does not set pool_max_conns or
// connect_timeout.
const (
	// DefaultMaxConns: pgxpool's own default is the CPU count (at least 4),
	// which throttles the burst of retried writes after a database outage on
	// a small machine. 16 connections drain a backlog 15-45% faster on 2
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
func Open(ctx context.Context, databaseURL string, layout Layout) (*Store, error) {
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
	st, err := New(pool, layout)
	if err != nil {
		pool.Close()
		return nil, err
	}
	return st, nil
}

// New wraps a pool the caller owns (the product's own, for ensure); the
// caller closes it.
func New(pool *pgxpool.Pool, layout Layout) (*Store, error) {
	if layout.Schema == "" {
		layout.Schema = DefaultSchema
	}
	if err := ValidateSchema(layout.Schema); err != nil {
		return nil, fmt.Errorf("bookkeeping schema: %w", err)
	}
	s := &Store{pool: pool, db: pool, schema: layout.Schema, bk: newBookkeeping(layout.Schema), mapping: layout.Mapping}
	if layout.Mapping == nil {
		own, err := sqlgen.Compile(nil, layout.Schema, nil)
		if err != nil {
			return nil, err
		}
		s.compiled = own
	}
	return s, nil
}

// Mapping returns the layout's mapping; nil for clerksync's own tables,
// whose questions (what a user is trimmed to, whether organizations are
// kept) the nil mapping answers too.
func (s *Store) Mapping() *mapping.Mapping { return s.mapping }

// Schema returns the bookkeeping schema's name.
func (s *Store) Schema() string { return s.schema }

// Mapped reports whether a mapping names the product's own tables, which
// clerksync then never creates or changes.
func (s *Store) Mapped() bool { return s.mapping != nil }

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

// inLockedTx runs fn in a transaction holding the advisory locks of every
// Clerk ID in ids (the same locks as inUserTx), taken in sorted order so two
// writers never wait on each other in a cycle.
func (s *Store) inLockedTx(ctx context.Context, ids []string, fn func(pgx.Tx) error) error {
	ids = slices.Clone(ids)
	slices.Sort(ids)
	return pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		for _, id := range slices.Compact(ids) {
			if _, err := tx.Exec(ctx, `select pg_advisory_xact_lock(hashtextextended($1, 0))`, id); err != nil {
				return fmt.Errorf("lock: %w", err)
			}
		}
		return fn(tx)
	})
}

// inUserTx runs fn in a transaction that holds the advisory lock for clerkID.
func (s *Store) inUserTx(ctx context.Context, clerkID string, fn func(pgx.Tx) error) error {
	return s.inLockedTx(ctx, []string{clerkID}, fn)
}
