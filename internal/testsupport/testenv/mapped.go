package testenv

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/clerksync/clerksync/internal/mapping"
	"github.com/clerksync/clerksync/internal/store"
)

// Example is one of docs/examples: a product's schema and the
// clerksync.yaml that maps it.
type Example struct {
	// Dir is the example's folder.
	Dir string
	// Schema is the SQL file that creates the product's tables.
	Schema string
}

// Examples of docs/examples.
var (
	Prisma    = Example{Dir: "prisma", Schema: "migration.sql"}
	SnakeCase = Example{Dir: "snake_case", Schema: "schema.sql"}
	// Invoicing is the invoicing app of the adoption-safety work: the
	// app's own constraints (a role CHECK, a citext unique email), legacy
	// rows without a Clerk ID, soft deletion, paid plans.
	Invoicing = Example{Dir: "invoicing", Schema: "schema.sql"}
)

// Path is the path of a file of the example.
func (e Example) Path(name string) string {
	_, here, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(here), "..", "..", "..", "docs", "examples", e.Dir, name)
}

// MappingFile is the path of the example's clerksync.yaml.
func (e Example) MappingFile() string { return e.Path("clerksync.yaml") }

// ProductDatabase creates a fresh database in time zone tz (an app's
// database need not be in UTC) holding the example's tables, as the
// product's own migrations would have made them, and returns its URL.
func (e Example) ProductDatabase(t testing.TB, tz string) string {
	t.Helper()
	dbURL := Database(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	schema, err := os.ReadFile(e.Path(e.Schema))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `select set_config('x.db', current_database(), false)`); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `do $$ begin execute format('alter database %I set timezone = %L', current_setting('x.db'), '`+tz+`'); end $$`); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, string(schema)); err != nil {
		t.Fatalf("%s: %v", e.Schema, err)
	}
	return dbURL
}

// Store opens a store on a ProductDatabase with the example's mapping,
// migrated (the bookkeeping created, the mapping checked), closed at
// cleanup.
func (e Example) Store(t testing.TB, tz string) (*store.Store, string) {
	t.Helper()
	dbURL := e.ProductDatabase(t, tz)
	m, err := mapping.Load(e.MappingFile())
	if err != nil {
		t.Fatal(err)
	}
	return migratedStore(t, dbURL, store.Layout{Mapping: m}), dbURL
}
