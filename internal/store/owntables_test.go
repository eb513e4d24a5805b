package store_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/clerksync/clerksync/internal/mapping"
	"github.com/clerksync/clerksync/internal/store/sqlgen"
	"github.com/clerksync/clerksync/internal/testsupport/testenv"
)

// clerksync compiles its own tables' SQL at start-up without reading the
// database, from the columns it knows they have: these must be the
// columns its migrations create, or a migration that changes one would
// leave the SQL writing the table as it was.
func TestOwnTables_MatchTheirMigrations(t *testing.T) {
	t.Parallel()
	_, dbURL := testenv.Store(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dbURL)
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close(ctx) })
	for table, want := range sqlgen.OwnColumns() {
		err := pgx.BeginTxFunc(ctx, conn, pgx.TxOptions{AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
			got, err := sqlgen.TableColumns(ctx, tx, table, mapping.Table{Schema: "public", Name: table}) // the migrations create them in search_path's first schema
			if err != nil {
				return err
			}
			require.Equal(t, described(want), described(got), "clerksync's %s table: its migrations and sqlgen's own columns differ", table)
			return nil
		})
		require.NoError(t, err, table)
	}
}

// described is each column's info as text, so an enum's labels compare
// the same whether none is a nil or an empty list.
func described(cols map[string]sqlgen.ColumnInfo) map[string]string {
	out := make(map[string]string, len(cols))
	for name, ci := range cols {
		out[name] = fmt.Sprintf("%+v", ci)
	}
	return out
}
