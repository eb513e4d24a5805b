package store_test

import (
	"context"
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/clerksync/clerksync/internal/clerkevent"
	"github.com/clerksync/clerksync/internal/mapping"
	"github.com/clerksync/clerksync/internal/store"
	"github.com/clerksync/clerksync/internal/store/migrations"
	"github.com/clerksync/clerksync/internal/testsupport/testenv"
)

// TestUserByClerkID_AnswersOnlyWhatTheMappingExposes: the row ensure
// answers from a product's table holds its key, its Clerk ID and the
// mapped columns, never a column the mapping does not name (a legacy
// password hash, an admin's note) nor, unless the mapping says expose:
// true, a column holding private metadata or the whole Clerk object; the
// OpenAPI document's columns (UserColumns) are the same. clerksync's own
// table answers its contract's columns.
func TestUserByClerkID_AnswersOnlyWhatTheMappingExposes(t *testing.T) {
	t.Parallel()
	doc, err := readExample(testenv.SnakeCase)
	require.NoError(t, err)
	const legacy = `alter table app_users add column password_hash text, add column admin_note text, add column secret_plan text`
	// The example as it is, and with its private columns exposed and
	// another hidden: profile (the whole object) and secret_plan (one key
	// of private metadata) are private by default, role is not.
	private := strings.Replace(doc, "    profile: object\n",
		"    profile: {source: object, expose: true}\n    secret_plan: private_metadata.plan\n", 1)
	hidden := strings.Replace(private, "    role: public_metadata.role\n", "    role: {source: public_metadata.role, expose: false}\n", 1)
	base := []string{"all_emails", "avatar_url", "banned", "clerk_id", "clerk_updated_ms", "clerk_user_id", "email_address",
		"email_verified", "external_ref", "family_name", "given_name", "handle", "id", "last_seen_at", "phone", "settings",
		"signed_up_at", "updated_at"}
	for _, c := range []struct {
		name, doc string
		want      []string
	}{
		{"as the example maps it", doc, append(slices.Clone(base), "role")},
		{"private columns exposed, one hidden", hidden, append(slices.Clone(base), "profile")},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			st, db := openMapped(t, testenv.SnakeCase, c.doc, legacy)
			ctx := context.Background()
			now := time.Now().UTC().Truncate(time.Millisecond)
			_, err := st.UpsertUser(ctx, clerkevent.User{ClerkID: "user_exposed", Email: str("x@example.com"),
				ClerkCreatedAt: now, ClerkUpdatedAt: now, PublicMetadata: []byte(`{"role":"admin"}`),
				PrivateMetadata: []byte(`{"plan":"secret-plan"}`),
				Object:          []byte(`{"id":"user_exposed","private_metadata":{"plan":"secret-plan"}}`)}, 0)
			require.NoError(t, err)
			_, err = db.Exec(ctx, `update app_users set password_hash = 'secret-hash', admin_note = 'secret-note'`)
			require.NoError(t, err)

			u, err := st.UserByClerkID(ctx, "user_exposed")
			require.NoError(t, err)
			var row map[string]any
			require.NoError(t, json.Unmarshal(u.Row, &row))
			slices.Sort(c.want)
			require.Equal(t, c.want, slices.Sorted(maps.Keys(row)))
			for _, secret := range []string{"secret-hash", "secret-note"} {
				require.NotContains(t, string(u.Row), secret, "an unmapped column's value")
			}
			cols, err := st.UserColumns(ctx)
			require.NoError(t, err)
			var names []string
			for _, col := range cols {
				names = append(names, col.Name)
			}
			require.Equal(t, c.want, names, "the OpenAPI document's columns")
		})
	}

	t.Run("clerksync's own table", func(t *testing.T) {
		t.Parallel()
		st, _ := testenv.Store(t)
		ctx := context.Background()
		now := time.Now().UTC().Truncate(time.Millisecond)
		_, err := st.UpsertUser(ctx, clerkevent.User{ClerkID: "user_own", Email: str("o@example.com"), ClerkCreatedAt: now, ClerkUpdatedAt: now}, 0)
		require.NoError(t, err)
		u, err := st.UserByClerkID(ctx, "user_own")
		require.NoError(t, err)
		var row map[string]any
		require.NoError(t, json.Unmarshal(u.Row, &row))
		require.Equal(t, []string{"clerk_created_at", "clerk_id", "clerk_updated_at", "created_at", "email", "first_name", "id",
			"image_url", "last_name", "updated_at", "username"}, slices.Sorted(maps.Keys(row)))
	})
}

// openMapped opens a store mapped by doc on a new database holding
// example's tables, changed by the product's own statement schema first.
func openMapped(t *testing.T, example testenv.Example, doc, schema string) (*store.Store, *pgx.Conn) {
	t.Helper()
	m, err := mapping.Parse([]byte(doc))
	require.NoError(t, err)
	dbURL := example.ProductDatabase(t, "UTC")
	ctx := context.Background()
	db, err := pgx.Connect(ctx, dbURL)
	require.NoError(t, err)
	t.Cleanup(func() { db.Close(context.Background()) })
	_, err = db.Exec(ctx, schema)
	require.NoError(t, err)
	st, err := store.Open(ctx, dbURL, store.Layout{Mapping: m})
	require.NoError(t, err)
	t.Cleanup(st.Close)
	require.NoError(t, migrations.Apply(ctx, st))
	return st, db
}
