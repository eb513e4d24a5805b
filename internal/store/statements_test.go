package store_test

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/clerksync/clerksync/internal/store"
	"github.com/clerksync/clerksync/internal/testsupport/testenv"
)

var updateSQL = flag.Bool("update-sql", false, "rewrite testdata/sql/*.sql with the statements the mappings build now")

// TestStatements_MatchTheGoldenSQL: the SQL the store builds for
// clerksync's own tables and for every example's mapping is the SQL
// checked in under testdata/sql, so a change to the SQL compiler shows as
// a diff of whole statements a reviewer can read (go test
// ./internal/store -run TestStatements -update-sql rewrites them).
func TestStatements_MatchTheGoldenSQL(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name    string
		example *testenv.Example
	}{
		{"own", nil}, {"prisma", &testenv.Prisma}, {"snake_case", &testenv.SnakeCase}, {"invoicing", &testenv.Invoicing},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			var st *store.Store
			if c.example == nil {
				st, _ = testenv.Store(t)
			} else {
				st, _ = c.example.Store(t, "UTC")
			}
			statements, err := st.Statements(context.Background())
			require.NoError(t, err)
			var b strings.Builder
			fmt.Fprintf(&b, "-- The statements clerksync builds for %s (TestStatements_MatchTheGoldenSQL; -update-sql rewrites this file).\n", c.name)
			for _, s := range statements {
				fmt.Fprintf(&b, "\n-- %s: %s\n%s;\n", s.Entity, s.Name, s.SQL)
			}
			path := filepath.Join("testdata", "sql", c.name+".sql")
			if *updateSQL {
				require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
				require.NoError(t, os.WriteFile(path, []byte(b.String()), 0o644))
			}
			want, err := os.ReadFile(path)
			require.NoError(t, err, "no golden SQL: go test ./internal/store -run TestStatements -update-sql")
			if got := b.String(); got != string(want) {
				t.Errorf("the SQL for %s changed from %s (review it, then -update-sql):\n%s", c.name, path, firstDifference(string(want), got))
			}
		})
	}
}

// firstDifference shows the first line where got differs from want, with
// the lines around it: a statement is long, and the whole file is longer.
func firstDifference(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	i := 0
	for i < len(w) && i < len(g) && w[i] == g[i] {
		i++
	}
	var b strings.Builder
	for k := max(0, i-3); k < i; k++ {
		fmt.Fprintf(&b, "  %s\n", w[k])
	}
	for k := i; k < min(len(w), i+3); k++ {
		fmt.Fprintf(&b, "- %s\n", w[k])
	}
	for k := i; k < min(len(g), i+3); k++ {
		fmt.Fprintf(&b, "+ %s\n", g[k])
	}
	return b.String()
}

// A deployment's bookkeeping schema (CLERKSYNC_SCHEMA) is written into its
// statements when they are compiled: each names the same tables as the
// default's, in that schema, and none is left naming clerksync's.
func TestStatements_AreWrittenForTheBookkeepingSchema(t *testing.T) {
	pool, err := pgxpool.New(context.Background(), "postgres://127.0.0.1:1/none") // never connects
	require.NoError(t, err)
	defer pool.Close()
	statements := func(schema string) []store.Statement {
		st, err := store.New(pool, store.Layout{Schema: schema})
		require.NoError(t, err)
		s, err := st.Statements(context.Background())
		require.NoError(t, err)
		return s
	}
	def, other := statements(""), statements("app_sync")
	require.Len(t, other, len(def))
	for i := range def {
		require.NotContains(t, other[i].SQL, "clerksync.", "%s: %s", other[i].Entity, other[i].Name)
		require.Equal(t, strings.ReplaceAll(def[i].SQL, "clerksync.", "app_sync."), other[i].SQL, "%s: %s", other[i].Entity, other[i].Name)
	}
}
