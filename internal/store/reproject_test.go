package store_test

import (
	"context"
	"fmt"
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

// reopen opens a second store on dbURL under the mapping doc, as a worker
// restarted with an edited CLERKSYNC_MAPPING would.
func reopen(t *testing.T, dbURL, doc string) *store.Store {
	t.Helper()
	m, err := mapping.Parse([]byte(doc))
	require.NoError(t, err)
	st, err := store.Open(context.Background(), dbURL, store.Layout{Mapping: m})
	require.NoError(t, err)
	t.Cleanup(st.Close)
	return st
}

// TestReprojection_AColumnAddedToTheMappingReachesEveryRow: the invoicing
// app first maps no role; then role is added to the mapping. The next
// backfill of the same Clerk versions fills it on every one of 40 users
// (before, the tie of equal versions went to the greater content hash and
// left about half NULL); a second backfill under the new mapping rewrites
// nothing, and an older version never overwrites a newer one under any
// mapping.
func TestReprojection_AColumnAddedToTheMappingReachesEveryRow(t *testing.T) {
	t.Parallel()
	full, err := readExample(testenv.Invoicing)
	require.NoError(t, err)
	const roleLine = "    role: {source: public_metadata.role, missing: member, keep: true}\n"
	require.Contains(t, full, roleLine)
	dbURL := testenv.Invoicing.ProductDatabase(t, "UTC")
	ctx := context.Background()
	before := reopen(t, dbURL, strings.Replace(full, roleLine, "", 1))
	require.NoError(t, migrations.Apply(ctx, before))

	now := time.Now().UTC().Truncate(time.Millisecond)
	var page []clerkevent.User
	for i := range 40 {
		email := fmt.Sprintf("user%02d@example.com", i)
		page = append(page, clerkevent.User{ClerkID: fmt.Sprintf("user_%02d", i), Email: &email, ClerkCreatedAt: now.Add(-time.Hour),
			ClerkUpdatedAt: now, PublicMetadata: []byte(`{"role":"admin"}`)})
	}
	res, err := before.WriteUserPage(ctx, "", page, 0)
	require.NoError(t, err)
	require.Equal(t, 40, res.Inserted)

	db, err := pgx.Connect(ctx, dbURL)
	require.NoError(t, err)
	t.Cleanup(func() { db.Close(context.Background()) })
	roles := func() map[string]int {
		n := map[string]int{}
		rows, err := db.Query(ctx, `select role from app.users`)
		require.NoError(t, err)
		for rows.Next() {
			var role string
			require.NoError(t, rows.Scan(&role))
			n[role]++
		}
		require.NoError(t, rows.Err())
		return n
	}
	require.Equal(t, map[string]int{"member": 40}, roles(), "no role mapped yet: the column's default")

	after := reopen(t, dbURL, full)
	res, err = after.WriteUserPage(ctx, "", page, 0)
	require.NoError(t, err)
	require.Equal(t, 40, res.Updated, "every row re-projected, whatever its updated_at")
	require.Equal(t, map[string]int{"admin": 40}, roles())

	res, err = after.WriteUserPage(ctx, "", page, 0)
	require.NoError(t, err)
	require.Zero(t, res.Updated, "the same versions under the same mapping are duplicates")

	older := page[0]
	older.ClerkUpdatedAt = now.Add(-time.Minute)
	older.PublicMetadata = []byte(`{"role":"owner"}`)
	out, err := before.UpsertUser(ctx, older, 0)
	require.NoError(t, err)
	require.Equal(t, store.Stale, out.Outcome, "an older version, under the earlier mapping")
	out, err = after.UpsertUser(ctx, older, 0)
	require.NoError(t, err)
	require.Equal(t, store.Stale, out.Outcome, "an older version, under the new mapping")
	require.Equal(t, map[string]int{"admin": 40}, roles())
}

// TestReprojection_MembershipsAndOrganizationsToo: on the snake_case app,
// a membership and an organization written before their mapping gained a
// column (permissions, plan) get it from the next write of the same Clerk
// version.
func TestReprojection_MembershipsAndOrganizationsToo(t *testing.T) {
	t.Parallel()
	full, err := readExample(testenv.SnakeCase)
	require.NoError(t, err)
	const permissionsLine = "    permissions: {source: permissions, missing: \"[]\"}\n"
	const planLine = "    plan: public_metadata.plan\n"
	require.Contains(t, full, permissionsLine)
	require.Contains(t, full, planLine)
	dbURL := testenv.SnakeCase.ProductDatabase(t, "UTC")
	ctx := context.Background()
	before := reopen(t, dbURL, strings.NewReplacer(permissionsLine, "", planLine, "").Replace(full))
	require.NoError(t, migrations.Apply(ctx, before))

	now := time.Now().UTC().Truncate(time.Millisecond)
	email := "member@example.com"
	member := clerkevent.User{ClerkID: "user_member", Email: &email, ClerkCreatedAt: now, ClerkUpdatedAt: now}
	name := "Acme"
	org := clerkevent.Organization{ClerkID: "org_acme", Name: &name, ClerkCreatedAt: now, ClerkUpdatedAt: now,
		PublicMetadata: []byte(`{"plan":"pro"}`)}
	membership := clerkevent.Membership{ClerkID: "orgmem_1", UserID: member.ClerkID, Role: "org:admin", Organization: org,
		ClerkCreatedAt: now, ClerkUpdatedAt: now, Permissions: []string{"org:sys_memberships:manage"}}
	write := func(st *store.Store) {
		t.Helper()
		_, err := st.UpsertUser(ctx, member, 0)
		require.NoError(t, err)
		_, err = st.UpsertOrganization(ctx, org)
		require.NoError(t, err)
		_, err = st.UpsertMembership(ctx, membership)
		require.NoError(t, err)
	}
	db, err := pgx.Connect(ctx, dbURL)
	require.NoError(t, err)
	t.Cleanup(func() { db.Close(context.Background()) })
	read := func() (plan *string, permissions string) {
		t.Helper()
		require.NoError(t, db.QueryRow(ctx, `select t.plan, m.permissions::text from team_members m join teams t on t.id = m.team_id`).Scan(&plan, &permissions))
		return plan, permissions
	}

	write(before)
	plan, permissions := read()
	require.Nil(t, plan)
	require.Equal(t, "[]", permissions)

	write(reopen(t, dbURL, full))
	plan, permissions = read()
	require.Equal(t, "pro", *plan, "the organization re-projected")
	require.JSONEq(t, `["org:sys_memberships:manage"]`, permissions, "the membership re-projected")
}
