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
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/clerk/clerk-sdk-go/v2"
	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/clerksync/clerksync/internal/clerkevent"
	"github.com/clerksync/clerksync/internal/mapping"
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
	// orgs and memberships are nil when organizations are off.
	orgs        *orgTable
	memberships *membershipTable
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
	s := &Store{pool: pool, db: pool, schema: layout.Schema, mapping: layout.Mapping}
	if layout.Mapping == nil {
		users, err := compileUsers(ownUsers, ownUsersTypes)
		if err != nil {
			return nil, fmt.Errorf("clerksync's users table: %w", err)
		}
		trials, err := compileTrials(ownTrials, ownTrialsTypes, users, ownUsersTypes["id"].dataType)
		if err != nil {
			return nil, fmt.Errorf("clerksync's subscriptions table: %w", err)
		}
		orgs, err := compileOrganizations(ownOrganizations, ownOrganizationsTypes)
		if err != nil {
			return nil, fmt.Errorf("clerksync's organizations table: %w", err)
		}
		memberships, err := compileMemberships(ownMemberships, ownMembershipsTypes, orgs, users)
		if err != nil {
			return nil, fmt.Errorf("clerksync's organization_memberships table: %w", err)
		}
		s.users, s.trials, s.orgs, s.memberships = users, trials, orgs, memberships
	}
	return s, nil
}

// Trim returns u with only the fields of Clerk's user object the layout
// writes (mapping.Mapping.Trim): the starter and the profile fetch trim
// what they hand to Temporal, and every write trims what it stores, so the
// content hash covers what is stored.
func (s *Store) Trim(u clerkevent.User) clerkevent.User { return s.mapping.Trim(u) }

// NormalizeUser maps a user from Clerk's API to what the layout writes:
// clerkevent.NormalizeUser, trimmed as Trim does, the whole object
// marshalled only when the layout stores it.
func (s *Store) NormalizeUser(cu *clerk.User) (clerkevent.User, error) {
	normalize := clerkevent.NormalizeUserFields
	if s.mapping.Uses(mapping.SourceObject) {
		normalize = clerkevent.NormalizeUser
	}
	u, err := normalize(cu)
	if err != nil {
		return clerkevent.User{}, err
	}
	return s.Trim(u), nil
}

// TrimEvent trims an event's user, organization or membership as Trim
// does a user, for the starter to hand Temporal no field the tables do not
// store.
func (s *Store) TrimEvent(ev clerkevent.Event) clerkevent.Event {
	if ev.User != nil {
		u := s.mapping.Trim(*ev.User)
		ev.User = &u
	}
	if ev.Organization != nil {
		o := s.mapping.TrimOrganization(*ev.Organization)
		ev.Organization = &o
	}
	if ev.Membership != nil {
		m := s.mapping.TrimMembership(*ev.Membership)
		ev.Membership = &m
	}
	return ev
}

// OrganizationsOff reports whether organizations are not kept: a mapping
// that says organizations: off.
func (s *Store) OrganizationsOff() bool { return s.mapping != nil && s.mapping.Organizations == nil }

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

// RecheckMapping checks the mapping against the tables as they are now
// and builds its SQL anew, so SQL built before a product migration changed
// a mapped column's type is replaced; a mapping that no longer fits drops
// the SQL built from it (writes then fail with the MappingError, and are
// retried, until the mapping or the table is fixed) and is returned.
// Readiness calls it on every probe. Without a mapping it does nothing.
func (s *Store) RecheckMapping(ctx context.Context) error {
	if s.mapping == nil {
		return nil
	}
	users, trials, orgs, memberships, err := s.compileMapped(ctx)
	s.mu.Lock()
	defer s.mu.Unlock()
	var bad *MappingError
	switch {
	case errors.As(err, &bad):
		s.users, s.trials, s.orgs, s.memberships = nil, nil, nil, nil
		return err
	case err != nil:
		return err // the database could not be read: nothing is known to be wrong
	}
	s.users, s.trials, s.orgs, s.memberships = users, trials, orgs, memberships
	return nil
}

// ForgetIfStale drops the SQL built from the mapped tables when err says a
// statement met a table that changed under it (a column dropped or
// retyped, a table renamed), so the next write builds it from the tables
// as they are, and says so.
func (s *Store) ForgetIfStale(err error) bool {
	var pgErr *pgconn.PgError
	if s.mapping == nil || !errors.As(err, &pgErr) {
		return false
	}
	switch pgErr.Code {
	case pgerrcode.UndefinedColumn, pgerrcode.UndefinedTable, pgerrcode.DatatypeMismatch, pgerrcode.UndefinedFunction:
	default:
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.users, s.trials, s.orgs, s.memberships = nil, nil, nil, nil
	return true
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
	users, trials, orgs, memberships, err := s.compileMapped(ctx)
	if err != nil {
		return nil, nil, err
	}
	s.users, s.trials, s.orgs, s.memberships = users, trials, orgs, memberships
	return users, trials, nil
}

// compileMapped reads the mapped tables' columns and builds their SQL.
func (s *Store) compileMapped(ctx context.Context) (users *userTable, trials *trialTable, orgs *orgTable, memberships *membershipTable, err error) {
	err = pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		m := s.mapping
		cols, err := tableColumns(ctx, tx, "users", m.Users.Table)
		if err != nil {
			return err
		}
		if users, err = compileUsers(m.Users, cols); err != nil {
			return &MappingError{Problems: err.Error()}
		}
		if err := uniqueClerkID(ctx, tx, "users", m.Users.Table, m.Users.ClerkID, users.name, users.clerkID); err != nil {
			return err
		}
		if m.Trials != nil {
			tcols, err := tableColumns(ctx, tx, "trials", m.Trials.Table)
			if err != nil {
				return err
			}
			if trials, err = compileTrials(m.Trials, tcols, users, cols[m.Users.Key.Column].dataType); err != nil {
				return &MappingError{Problems: err.Error()}
			}
		}
		if m.Organizations == nil {
			return nil
		}
		ocols, err := tableColumns(ctx, tx, "organizations", m.Organizations.Table)
		if err != nil {
			return err
		}
		if orgs, err = compileOrganizations(m.Organizations, ocols); err != nil {
			return &MappingError{Problems: err.Error()}
		}
		if err := uniqueClerkID(ctx, tx, "organizations", m.Organizations.Table, m.Organizations.ClerkID, orgs.name, orgs.clerkID); err != nil {
			return err
		}
		mcols, err := tableColumns(ctx, tx, "memberships", m.Memberships.Table)
		if err != nil {
			return err
		}
		if memberships, err = compileMemberships(m.Memberships, mcols, orgs, users); err != nil {
			return &MappingError{Problems: err.Error()}
		}
		return uniqueClerkID(ctx, tx, "memberships", m.Memberships.Table, m.Memberships.ClerkID, memberships.name, memberships.clerkID)
	})
	var noTable *noTableError
	if errors.As(err, &noTable) {
		err = &MappingError{Problems: noTable.Error()}
	}
	return users, trials, orgs, memberships, err
}

// orgTables returns the SQL of the organization and membership tables, or
// ErrOrganizationsOff.
func (s *Store) orgTables(ctx context.Context) (*orgTable, *membershipTable, error) {
	if _, _, err := s.tables(ctx); err != nil {
		return nil, nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.orgs == nil {
		return nil, nil, ErrOrganizationsOff
	}
	return s.orgs, s.memberships, nil
}

// ErrOrganizationsOff: the mapping keeps no organizations.
var ErrOrganizationsOff = errors.New("organizations are not kept with this CLERKSYNC_MAPPING (organizations: off)")

// uniqueClerkID refuses a Clerk ID column without a unique index of its
// own, which ON CONFLICT needs.
func uniqueClerkID(ctx context.Context, tx pgx.Tx, entity string, t mapping.Table, col, quotedTable, quotedCol string) error {
	unique, err := isUnique(ctx, tx, t, col)
	if err != nil {
		return err
	}
	if !unique {
		return &MappingError{Problems: fmt.Sprintf("%s table %s, column %s: the Clerk ID column is not unique; add a unique index on it alone: create unique index on %s (%s)",
			entity, t, col, quotedTable, quotedCol)}
	}
	return nil
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
