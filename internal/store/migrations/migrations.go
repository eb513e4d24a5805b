// Package migrations holds clerksync's schema migrations (tern templates:
// bookkeeping/ and additions/ for its own schema, tables/ for the tables it
// owns without a mapping) and applies them. It is apart from the store so that what only
// reads and writes rows (the ensure library a product links) does not link
// tern and its template functions.
package migrations

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/tern/v2/migrate"

	"github.com/clerksync/clerksync/internal/store"
)

//go:embed bookkeeping/*.sql additions/*.sql tables/*.sql
var files embed.FS

// Apply creates the bookkeeping schema and applies the embedded
// migrations: the bookkeeping's (bookkeeping/, then additions/), then, without a
// mapping, the tables clerksync owns (tables/), each set with its
// version table in the bookkeeping schema; with a mapping, it checks the
// mapping against the product's tables instead (CheckMapping). tern holds a session advisory lock while it
// works, so processes that start together apply each migration once.
func Apply(ctx context.Context, s *store.Store) error {
	conn, err := s.Pool().Acquire(ctx)
	if err != nil {
		return fmt.Errorf("migrate: acquire connection: %w", err)
	}
	defer conn.Release()
	// Processes that start together would race on creating the schema
	// (create schema if not exists is not safe against a concurrent one).
	if _, err := conn.Exec(ctx, `select pg_advisory_lock(hashtextextended('clerksync migrate ' || $1, 0))`, s.Schema()); err != nil {
		return fmt.Errorf("migrate: lock: %w", err)
	}
	defer func() {
		ctx := context.WithoutCancel(ctx)
		if _, err := conn.Exec(ctx, `select pg_advisory_unlock(hashtextextended('clerksync migrate ' || $1, 0))`, s.Schema()); err != nil {
			// The pool must not hand out a connection that holds the lock.
			_ = conn.Conn().Close(ctx)
		}
	}()
	if _, err := conn.Exec(ctx, `create schema if not exists `+s.Schema()); err != nil {
		return fmt.Errorf("migrate: create schema %s: %w", s.Schema(), err)
	}
	if err := migrateSet(ctx, conn.Conn(), s.Schema(), "bookkeeping", "schema_version"); err != nil {
		return err
	}
	// v0.1.0 refuses (and waits on for ever) a bookkeeping version newer
	// than its own, so what later releases add to the bookkeeping, only
	// what v0.1.0 ignores (nullable columns, indexes), is a set of its own
	// that v0.1.0 never reads: a rollback onto it still starts.
	if err := migrateSet(ctx, conn.Conn(), s.Schema(), "additions", "additions_version"); err != nil {
		return err
	}
	if s.Mapped() {
		// The product's tables are the product's: checked, and proved by
		// writing in a transaction rolled back, never changed.
		return s.ProveMapping(ctx)
	}
	if err := checkNoForeignTables(ctx, conn.Conn(), s.Schema()); err != nil {
		return err
	}
	return migrateSet(ctx, conn.Conn(), s.Schema(), "tables", "tables_version")
}

// migrateSet applies the migrations of one folder, recording its version in
// the bookkeeping schema's versionTable.
func migrateSet(ctx context.Context, conn *pgx.Conn, schema, folder, versionTable string) error {
	m, err := migrate.NewMigrator(ctx, conn, schema+"."+versionTable)
	if err != nil {
		return fmt.Errorf("migrate %s: %w", folder, err)
	}
	m.Data["schema"] = schema
	sub, err := fs.Sub(files, folder)
	if err != nil {
		return fmt.Errorf("migrate %s: %w", folder, err)
	}
	if err := m.LoadMigrations(sub); err != nil {
		return fmt.Errorf("migrate %s: load: %w", folder, err)
	}
	// A schema migrated by a later release: tern would refuse it with a bare
	// version error and the worker would wait on it for ever; an operator
	// rolling back needs to know which release to run instead.
	current, err := m.GetCurrentVersion(ctx)
	if err != nil {
		return fmt.Errorf("migrate %s: read version: %w", folder, err)
	}
	if known := int32(len(m.Migrations)); current > known {
		return &NewerSchemaError{Set: folder, Table: schema + "." + versionTable, Current: current, Known: known}
	}
	if err := m.Migrate(ctx); err != nil {
		return fmt.Errorf("migrate %s: %w", folder, err)
	}
	return nil
}

// NewerSchemaError is a database migrated by a later clerksync release than
// this one: this release does not know the schema it would write, so it
// refuses to start rather than guess (docs/upgrading.md#rolling-back).
type NewerSchemaError struct {
	Set, Table     string // the migration set (bookkeeping, tables) and its version table
	Current, Known int32  // the database's version, and the newest this release has
}

func (e *NewerSchemaError) Error() string {
	return fmt.Sprintf("the database's %s schema is at version %d (%s), newer than this release of clerksync knows (%d): "+
		"a later release migrated it; run that release, or see docs/upgrading.md#rolling-back for what a rollback needs",
		e.Set, e.Current, e.Table, e.Known)
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
		"or map your own users table onto Clerk's users with CLERKSYNC_MAPPING (docs/adopting.md)", e.Schema, e.Table, strings.Join(store.OwnedTables, ", "))
}

// checkNoForeignTables refuses a schema that holds a table of one of the
// names clerksync creates before clerksync has created any (no version of
// its tables recorded).
func checkNoForeignTables(ctx context.Context, conn *pgx.Conn, schema string) error {
	var current, table string
	err := conn.QueryRow(ctx, `
select current_schema(), coalesce((
    select t.table_name::text from information_schema.tables t
    where t.table_schema = current_schema() and t.table_name = any($1)
      and to_regclass($2) is null
    order by t.table_name limit 1), '')`, store.OwnedTables, schema+".tables_version").Scan(&current, &table)
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
	return &ForeignTableError{Schema: current, Table: table, EarlierLayout: earlier}
}

// IsPermanent reports whether a failed migration can never
// succeed as the database stands (a table clerksync did not create, a
// statement PostgreSQL refuses, a missing privilege), as opposed to a
// database that is unreachable or still starting, which is worth waiting
// for.
func IsPermanent(err error) bool {
	var foreign *ForeignTableError
	var badMapping *store.MappingError
	var newer *NewerSchemaError
	if errors.As(err, &foreign) || errors.As(err, &badMapping) || errors.As(err, &newer) {
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
