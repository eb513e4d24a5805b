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
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/tern/v2/migrate"
)

//go:embed migrations/*.sql
var migrations embed.FS

// versionTable is where tern records the applied migration version: in
// the schema clerksync's tables go to (the first of DATABASE_URL's
// search_path), beside them.
const versionTable = "clerksync_schema_version"

// Store holds the connection pool. It is safe for concurrent use.
type Store struct {
	pool *pgxpool.Pool
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
	if err := checkNoForeignTables(ctx, conn.Conn()); err != nil {
		return err
	}
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

// inLockedTx runs fn in a transaction holding the advisory locks of every
// Clerk ID in ids (the same locks as inUserTx), taken in sorted order so two
// writers never wait on each other in a cycle.
func (s *Store) inLockedTx(ctx context.Context, ids []string, fn func(pgx.Tx) error) error {
	ids = slices.Clone(ids)
	slices.Sort(ids)
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
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

// ForeignTableError is a table of one of clerksync's names that clerksync
// did not create (the product's own users table, say): migrating would fail
// on it for ever.
type ForeignTableError struct{ Schema, Table string }

func (e *ForeignTableError) Error() string {
	return fmt.Sprintf("table %s.%s already exists and clerksync did not create it: clerksync creates and owns %s; "+
		"give it a database, or a schema of its own (search_path in DATABASE_URL), without them "+
		"(mapping a product's existing tables is not built yet)", e.Schema, e.Table, strings.Join(ownTableNames(), ", "))
}

// checkNoForeignTables refuses a schema that clerksync has never migrated
// (no version table) but that holds a table of one of its names.
func checkNoForeignTables(ctx context.Context, conn *pgx.Conn) error {
	var schema, table string
	err := conn.QueryRow(ctx, `
select current_schema(), coalesce((
    select t.table_name::text from information_schema.tables t
    where t.table_schema = current_schema() and t.table_name = any($1)
      and not exists (select 1 from information_schema.tables v
                      where v.table_schema = current_schema() and v.table_name = $2)
    order by t.table_name limit 1), '')`, ownTableNames(), versionTable).Scan(&schema, &table)
	if err != nil {
		return fmt.Errorf("migrate: look for existing tables: %w", err)
	}
	if table != "" {
		return &ForeignTableError{Schema: schema, Table: table}
	}
	return nil
}

// IsPermanentMigrationError reports whether a failed migration can never
// succeed as the database stands (a table clerksync did not create, a
// statement PostgreSQL refuses, a missing privilege), as opposed to a
// database that is unreachable or still starting, which is worth waiting
// for.
func IsPermanentMigrationError(err error) bool {
	var foreign *ForeignTableError
	if errors.As(err, &foreign) {
		return true
	}
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return false
	}
	switch pgErr.Code[:2] {
	case "08", "53", "57": // connection exception, insufficient resources, operator intervention (starting up)
		return false
	}
	return true
}
