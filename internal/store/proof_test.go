package store_test

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/clerksync/clerksync/internal/mapping"
	"github.com/clerksync/clerksync/internal/store"
	"github.com/clerksync/clerksync/internal/store/migrations"
	"github.com/clerksync/clerksync/internal/testsupport/testenv"
)

// TestProveMapping_RefusesWhatOnlyWritingShows: mappings whose tables have
// every column, of a type that holds its source, and that still lose
// every event, are refused at start (the worker's migrate step) and by
// check-mapping, with what refused them and the fix; the examples as they
// are pass, and the proof leaves no row behind.
func TestProveMapping_RefusesWhatOnlyWritingShows(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name     string
		example  testenv.Example
		from, to string
		schema   string
		want     string
	}{
		{name: "a trial status the table's CHECK refuses", example: testenv.Invoicing,
			from: "expired: expired", to: "expired: lapsed",
			want: "the trial's expiry: table app.subscriptions refuses it by CHECK subscriptions_status_check"},
		{name: "a missing value that is not JSON for a JSON column", example: testenv.SnakeCase,
			from: `settings: {source: unsafe_metadata, missing: "{}"}`, to: `settings: {source: unsafe_metadata, missing: "none"}`,
			want: "a JSON column's missing value must be JSON"},
		{name: "a generated key too long for its column", example: testenv.Prisma,
			schema: `alter table "Subscription" drop constraint "Subscription_userId_fkey";
alter table "User" alter column id type varchar(20);
alter table "Subscription" alter column "userId" type varchar(20)`,
			want: "a value is too long for its column"},
		{name: "a unique column two users without a value would share", example: testenv.Invoicing,
			from: `missing: "{clerk_id}@no-email.invalid"`, to: `missing: ""`,
			want: "a second minimal row (another user without the same values): table app.users refuses it by unique users_email_key"},
		{name: "the example as it is", example: testenv.Invoicing},
		{name: "the example as it is", example: testenv.SnakeCase},
		{name: "the example as it is", example: testenv.Prisma},
	} {
		t.Run(c.example.Dir+": "+c.name, func(t *testing.T) {
			t.Parallel()
			doc, err := readExample(c.example)
			require.NoError(t, err)
			if c.from != "" {
				require.Contains(t, doc, c.from)
				doc = strings.Replace(doc, c.from, c.to, 1)
			}
			m, err := mapping.Parse([]byte(doc))
			require.NoError(t, err)
			dbURL := c.example.ProductDatabase(t, "UTC")
			ctx := context.Background()
			db, err := pgx.Connect(ctx, dbURL)
			require.NoError(t, err)
			defer db.Close(ctx)
			if c.schema != "" {
				_, err = db.Exec(ctx, c.schema)
				require.NoError(t, err)
			}
			st, err := store.Open(ctx, dbURL, store.Layout{Mapping: m})
			require.NoError(t, err)
			defer st.Close()
			err = migrations.Apply(ctx, st)
			if c.want == "" {
				require.NoError(t, err)
				var rows int
				require.NoError(t, db.QueryRow(ctx, `select (select count(*) from clerksync.user_state) + (select count(*) from clerksync.user_tombstones)`).Scan(&rows))
				require.Zero(t, rows, "the proof left bookkeeping behind")
				return
			}
			var bad *store.MappingError
			require.ErrorAs(t, err, &bad)
			require.ErrorContains(t, err, c.want)
			require.True(t, migrations.IsPermanent(err), "the worker exits on it rather than waiting")
		})
	}
}
