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
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/tern/v2/migrate"

	"github.com/clerksync/clerksync/internal/clerkevent"
	"github.com/clerksync/clerksync/internal/mapping"
)

//go:embed migrations
var migrations embed.FS

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
	// schema is the bookkeeping schema; rewritten caches clerksync's SQL
	// with it in place of DefaultSchema (see sql).
	schema    string
	rewritten sync.Map
	mapping   *mapping.Mapping

	// mu guards users and trials: the SQL of the tables users and trials
	// are written to, built on first use from the mapped tables' columns
	// (see tables); trials is nil when trials are off.
	mu     sync.Mutex
	users  *userTable
	trials *trialTable
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
	s := &Store{pool: pool, schema: layout.Schema, mapping: layout.Mapping}
	if layout.Mapping == nil {
		users, err := compileUsers(ownUsers, ownUsersTypes)
		if err != nil {
			return nil, fmt.Errorf("clerksync's users table: %w", err)
		}
		trials, err := compileTrials(ownTrials, ownTrialsTypes, users, ownUsersTypes["id"].dataType)
		if err != nil {
			return nil, fmt.Errorf("clerksync's subscriptions table: %w", err)
		}
		s.users, s.trials = users, trials
	}
	return s, nil
}

// Trim returns u with only the fields of Clerk's user object the layout
// writes (mapping.Mapping.Trim): the starter and the profile fetch trim
// what they hand to Temporal, and every write trims what it stores, so the
// content hash covers what is stored.
func (s *Store) Trim(u clerkevent.User) clerkevent.User { return s.mapping.Trim(u) }

// OrganizationsOff reports whether organizations are not kept (a mapping
// maps users; mapping organizations is not built yet).
func (s *Store) OrganizationsOff() bool { return s.mapping != nil }

// MappingError is a mapping the live database cannot take: a missing table
// or column, a type that cannot hold its source, an unwritten NOT NULL
// column, a Clerk ID column that is not unique. Its text is one line per
// mistake, each naming the table, the column and the fix.
type MappingError struct{ Problems string }

func (e *MappingError) Error() string {
	return "CLERKSYNC_MAPPING does not fit the database:\n" + e.Problems
}

// CheckMapping checks the mapping against the live database and builds its
// SQL: nil for clerksync's own tables, a *MappingError for a mapping the
// database cannot take, another error when the database cannot be read.
func (s *Store) CheckMapping(ctx context.Context) error {
	_, _, err := s.tables(ctx)
	return err
}

// tables returns the SQL of the user and trial tables, building it from
// the mapped tables' columns on first use (a failed build is tried again
// on the next use: the database may be starting, or being fixed).
func (s *Store) tables(ctx context.Context) (*userTable, *trialTable, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.users != nil {
		return s.users, s.trials, nil
	}
	var users *userTable
	var trials *trialTable
	err := pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		m := s.mapping
		cols, err := tableColumns(ctx, tx, "users", m.Users.Table)
		if err != nil {
			return err
		}
		if users, err = compileUsers(m.Users, cols); err != nil {
			return &MappingError{Problems: err.Error()}
		}
		unique, err := isUnique(ctx, tx, m.Users.Table, m.Users.ClerkID)
		if err != nil {
			return err
		}
		if !unique {
			return &MappingError{Problems: fmt.Sprintf("users table %s, column %s: the Clerk ID column is not unique; add a unique index on it alone: create unique index on %s (%s)",
				m.Users.Table, m.Users.ClerkID, users.name, users.clerkID)}
		}
		if m.Trials == nil {
			return nil
		}
		tcols, err := tableColumns(ctx, tx, "trials", m.Trials.Table)
		if err != nil {
			return err
		}
		if trials, err = compileTrials(m.Trials, tcols, users, cols[m.Users.Key.Column].dataType); err != nil {
			return &MappingError{Problems: err.Error()}
		}
		return nil
	})
	if err != nil {
		var noTable *noTableError
		if errors.As(err, &noTable) {
			return nil, nil, &MappingError{Problems: noTable.Error()}
		}
		return nil, nil, err
	}
	s.users, s.trials = users, trials
	return users, trials, nil
}

// sql returns q, written against DefaultSchema, for this store's
// bookkeeping schema. Every statement names bookkeeping tables as
// "clerksync.<table>", so the default costs nothing and the SQL reads as
// it runs there.
func (s *Store) sql(q string) string {
	if s.schema == DefaultSchema {
		return q
	}
	if r, ok := s.rewritten.Load(q); ok {
		return r.(string)
	}
	r := strings.ReplaceAll(q, DefaultSchema+".", s.schema+".")
	s.rewritten.Store(q, r)
	return r
}

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

// Migrate creates the bookkeeping schema and applies the embedded
// migrations: the bookkeeping's (migrations/bookkeeping), then, without a
// mapping, the tables clerksync owns (migrations/tables), each set with its
// version table in the bookkeeping schema; with a mapping, it checks the
// mapping against the product's tables instead (CheckMapping). tern holds a session advisory lock while it
// works, so processes that start together apply each migration once.
func (s *Store) Migrate(ctx context.Context) error {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("migrate: acquire connection: %w", err)
	}
	defer conn.Release()
	// Processes that start together would race on creating the schema
	// (create schema if not exists is not safe against a concurrent one).
	if _, err := conn.Exec(ctx, `select pg_advisory_lock(hashtextextended('clerksync migrate ' || $1, 0))`, s.schema); err != nil {
		return fmt.Errorf("migrate: lock: %w", err)
	}
	defer func() {
		ctx := context.WithoutCancel(ctx)
		if _, err := conn.Exec(ctx, `select pg_advisory_unlock(hashtextextended('clerksync migrate ' || $1, 0))`, s.schema); err != nil {
			// The pool must not hand out a connection that holds the lock.
			_ = conn.Conn().Close(ctx)
		}
	}()
	if _, err := conn.Exec(ctx, `create schema if not exists `+s.schema); err != nil {
		return fmt.Errorf("migrate: create schema %s: %w", s.schema, err)
	}
	if err := s.migrateSet(ctx, conn.Conn(), "bookkeeping", "schema_version"); err != nil {
		return err
	}
	if s.mapping != nil {
		// The product's tables are the product's: checked, never changed.
		return s.CheckMapping(ctx)
	}
	if err := s.checkNoForeignTables(ctx, conn.Conn()); err != nil {
		return err
	}
	return s.migrateSet(ctx, conn.Conn(), "tables", "tables_version")
}

// migrateSet applies the migrations of one folder, recording its version in
// the bookkeeping schema's versionTable.
func (s *Store) migrateSet(ctx context.Context, conn *pgx.Conn, folder, versionTable string) error {
	m, err := migrate.NewMigrator(ctx, conn, s.schema+"."+versionTable)
	if err != nil {
		return fmt.Errorf("migrate %s: %w", folder, err)
	}
	m.Data["schema"] = s.schema
	sub, err := fs.Sub(migrations, "migrations/"+folder)
	if err != nil {
		return fmt.Errorf("migrate %s: %w", folder, err)
	}
	if err := m.LoadMigrations(sub); err != nil {
		return fmt.Errorf("migrate %s: load: %w", folder, err)
	}
	if err := m.Migrate(ctx); err != nil {
		return fmt.Errorf("migrate %s: %w", folder, err)
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

// ForeignTableError is a table of one of the names clerksync creates that
// clerksync did not create (the product's own users table, say): migrating
// would fail on it for ever.
type ForeignTableError struct {
	Schema, Table string
	// EarlierLayout: the tables are those of a clerksync from before its
	// bookkeeping schema (its version table, clerksync_schema_version, is
	// beside them).
	EarlierLayout bool
}

func (e *ForeignTableError) Error() string {
	if e.EarlierLayout {
		return fmt.Sprintf("table %s.%s was created by an earlier clerksync, before its bookkeeping moved to a schema of its own; "+
			"there is no upgrade path (no deployment existed): drop the database and start again (make reset, for make run's)", e.Schema, e.Table)
	}
	return fmt.Sprintf("table %s.%s already exists and clerksync did not create it: clerksync creates and owns %s; "+
		"give it a database, or a schema of its own (search_path in DATABASE_URL), without them "+
		"or map your own users table onto Clerk's users with CLERKSYNC_MAPPING (docs/adopting.md)", e.Schema, e.Table, strings.Join(ownedTables, ", "))
}

// checkNoForeignTables refuses a schema that holds a table of one of the
// names clerksync creates before clerksync has created any (no version of
// its tables recorded).
func (s *Store) checkNoForeignTables(ctx context.Context, conn *pgx.Conn) error {
	var schema, table string
	err := conn.QueryRow(ctx, `
select current_schema(), coalesce((
    select t.table_name::text from information_schema.tables t
    where t.table_schema = current_schema() and t.table_name = any($1)
      and to_regclass($2) is null
    order by t.table_name limit 1), '')`, ownedTables, s.schema+".tables_version").Scan(&schema, &table)
	if err != nil {
		return fmt.Errorf("migrate: look for existing tables: %w", err)
	}
	if table == "" {
		return nil
	}
	var earlier bool
	if err := conn.QueryRow(ctx, `select to_regclass('clerksync_schema_version') is not null`).Scan(&earlier); err != nil {
		return fmt.Errorf("migrate: look for an earlier layout: %w", err)
	}
	return &ForeignTableError{Schema: schema, Table: table, EarlierLayout: earlier}
}

// IsPermanentMigrationError reports whether a failed migration can never
// succeed as the database stands (a table clerksync did not create, a
// statement PostgreSQL refuses, a missing privilege), as opposed to a
// database that is unreachable or still starting, which is worth waiting
// for.
func IsPermanentMigrationError(err error) bool {
	var foreign *ForeignTableError
	var badMapping *MappingError
	if errors.As(err, &foreign) || errors.As(err, &badMapping) {
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
