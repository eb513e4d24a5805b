package store_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/clerksync/clerksync/internal/clerkevent"
	"github.com/clerksync/clerksync/internal/store"
	"github.com/clerksync/clerksync/internal/store/migrations"
	"github.com/clerksync/clerksync/internal/testsupport/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

var base = time.UnixMilli(1_654_012_591_514).UTC()

func user(clerkID string, version int, first string) clerkevent.User {
	u := clerkevent.User{
		ClerkID:        clerkID,
		ClerkCreatedAt: base,
		ClerkUpdatedAt: base.Add(time.Duration(version) * time.Millisecond),
	}
	if first != "" {
		u.FirstName = &first
	}
	return u
}

type bundle struct {
	st   *store.Store
	conn *pgx.Conn
}

func setup(t *testing.T) bundle {
	t.Helper()
	st, dbURL := testenv.Store(t)
	conn, err := pgx.Connect(context.Background(), dbURL)
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close(context.Background()) })
	return bundle{st: st, conn: conn}
}

func (b bundle) count(t *testing.T, sql string, args ...any) int {
	t.Helper()
	var n int
	require.NoError(t, b.conn.QueryRow(context.Background(), sql, args...).Scan(&n))
	return n
}

func TestUpsertUser_LastWriterWinsOnClerkVersion(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()

	res, err := b.st.UpsertUser(ctx, user("user_a", 2, "Two"), 0)
	require.NoError(t, err)
	require.Equal(t, store.Inserted, res.Outcome)
	id := res.UserID

	res, err = b.st.UpsertUser(ctx, user("user_a", 1, "One"), 0)
	require.NoError(t, err)
	require.Equal(t, store.UpsertResult{UserID: id, Outcome: store.Stale}, res)

	res, err = b.st.UpsertUser(ctx, user("user_a", 2, "Two again"), 0)
	require.NoError(t, err)
	require.Equal(t, store.Stale, res.Outcome, "an equal version is a duplicate, not a newer write")

	res, err = b.st.UpsertUser(ctx, user("user_a", 3, "Three"), 0)
	require.NoError(t, err)
	require.Equal(t, store.UpsertResult{UserID: id, Outcome: store.Updated}, res)

	got, err := b.st.UserByClerkID(ctx, "user_a")
	require.NoError(t, err)
	require.Equal(t, id, got.ID)
	var row struct {
		FirstName      *string   `json:"first_name"`
		Email          *string   `json:"email"`
		ClerkUpdatedAt time.Time `json:"clerk_updated_at"`
	}
	require.NoError(t, got.Decode(&row))
	require.Equal(t, "Three", *row.FirstName)
	require.Equal(t, base.Add(3*time.Millisecond), row.ClerkUpdatedAt.UTC())
	require.Nil(t, row.Email, "no primary email is NULL")
	require.Equal(t, 1, b.count(t, "select count(*) from users"))
}

// deleteUser does what the DeleteUser activity does: tombstone, then remove.
func (b bundle) deleteUser(ctx context.Context, clerkID string, at time.Time) (bool, error) {
	if err := b.st.TombstoneUser(ctx, clerkID, at); err != nil {
		return false, err
	}
	return b.st.RemoveUserRow(ctx, clerkID)
}

func TestDeleteUser_TombstonesAndCascades(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	res, err := b.st.UpsertUser(ctx, user("user_d", 1, "D"), 0)
	require.NoError(t, err)
	_, err = b.conn.Exec(ctx, `insert into subscriptions (user_id, plan, status) values ($1, 'pro', 'trialing')`, res.UserID)
	require.NoError(t, err)

	removed, err := b.deleteUser(ctx, "user_d", base)
	require.NoError(t, err)
	require.True(t, removed)
	require.Equal(t, 0, b.count(t, "select count(*) from subscriptions"), "dependent rows cascade")

	removed, err = b.deleteUser(ctx, "user_d", base.Add(time.Hour))
	require.NoError(t, err, "a redelivered delete succeeds")
	require.False(t, removed)

	res, err = b.st.UpsertUser(ctx, user("user_d", 99, "Back?"), 0)
	require.NoError(t, err)
	require.Equal(t, store.UpsertResult{Outcome: store.Tombstoned}, res)
	_, err = b.st.UserByClerkID(ctx, "user_d")
	require.ErrorIs(t, err, store.ErrDeleted)
	require.Equal(t, 0, b.count(t, "select count(*) from users"))
}

func TestDeleteUser_UnknownUserStillLeavesTombstone(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	removed, err := b.deleteUser(ctx, "user_never_seen", base)
	require.NoError(t, err)
	require.False(t, removed)
	require.Equal(t, 1, b.count(t, "select count(*) from clerksync.user_tombstones where clerk_id = 'user_never_seen'"))

	// The create that the delete overtook arrives late and is refused.
	res, err := b.st.UpsertUser(ctx, user("user_never_seen", 1, "Late"), 0)
	require.NoError(t, err)
	require.Equal(t, store.Tombstoned, res.Outcome)
	_, err = b.st.UserByClerkID(ctx, "user_unknown")
	require.ErrorIs(t, err, store.ErrNotFound)
}

// TestDeleteUser_ProductForeignKeyWithoutCascade: a product table that
// references users(id) without ON DELETE CASCADE refuses the row's removal.
// The refusal is retryable (not permanent), and the tombstone has already
// committed: the user reads as deleted and takes no more writes. Once the
// product fixes its schema, the removal lands.
func TestDeleteUser_ProductForeignKeyWithoutCascade(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	res, err := b.st.UpsertUser(ctx, user("user_fk", 1, "FK"), 0)
	require.NoError(t, err)
	_, err = b.conn.Exec(ctx, `create table orders (id serial primary key, user_id uuid not null constraint orders_user_fk references users(id))`)
	require.NoError(t, err)
	_, err = b.conn.Exec(ctx, `insert into orders (user_id) values ($1)`, res.UserID)
	require.NoError(t, err)

	require.NoError(t, b.st.TombstoneUser(ctx, "user_fk", base))
	_, err = b.st.RemoveUserRow(ctx, "user_fk")
	require.Error(t, err)
	require.True(t, store.IsRefusal(err), "got %v", err)
	require.False(t, b.st.IsPermanent(err), "a product's foreign key is fixed by the product; the removal must retry")
	require.ErrorContains(t, err, "23503")

	up, err := b.st.UpsertUser(ctx, user("user_fk", 5, "After delete"), 0)
	require.NoError(t, err)
	require.Equal(t, store.Tombstoned, up.Outcome, "no write reaches a deleted user whose row is kept")
	_, err = b.st.UserByClerkID(ctx, "user_fk")
	require.ErrorIs(t, err, store.ErrDeleted, "ensure's lookup sees the deletion at once")

	_, err = b.conn.Exec(ctx, `alter table orders drop constraint orders_user_fk`)
	require.NoError(t, err)
	removed, err := b.st.RemoveUserRow(ctx, "user_fk")
	require.NoError(t, err)
	require.True(t, removed)
}

// TestUpsertUser_ProductUniqueIndexIsRetryable: a product's unique index on
// a users column (a username handed from one user to another, events out of
// order across users) refuses an upsert that a retry lands once the other
// user's update has applied.
func TestUpsertUser_ProductUniqueIndexIsRetryable(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	_, err := b.conn.Exec(ctx, `create unique index users_username_key on users (username)`)
	require.NoError(t, err)
	withName := func(id string, version int, name string) clerkevent.User {
		u := user(id, version, "")
		u.Username = &name
		return u
	}
	_, err = b.st.UpsertUser(ctx, withName("user_old", 1, "grace"), 0)
	require.NoError(t, err)
	_, err = b.st.UpsertUser(ctx, withName("user_new", 1, "grace"), 0)
	require.Error(t, err)
	require.Equal(t, store.Conflict, b.st.Classify(err), "got %v", err)
	refusal, ok := store.RefusalOf(err)
	require.True(t, ok)
	require.Equal(t, store.Refusal{SQLState: "23505", Constraint: "users_username_key", Table: "public.users"}, refusal)

	_, err = b.st.UpsertUser(ctx, withName("user_old", 2, "grace_old"), 0)
	require.NoError(t, err)
	res, err := b.st.UpsertUser(ctx, withName("user_new", 1, "grace"), 0)
	require.NoError(t, err, "the retry lands")
	require.Equal(t, store.Inserted, res.Outcome)
}

// TestUpsertUser_EqualVersionsConvergeOnTheGreaterHash: two different
// payloads with the same updated_at end on the same row in either order, and
// it is the one clerkevent.User.NewerThan picks.
func TestUpsertUser_EqualVersionsConvergeOnTheGreaterHash(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	x, y := user("user_tie_a", 7, "Ada"), user("user_tie_a", 7, "Grace")
	want := "Ada"
	if y.NewerThan(x.ClerkUpdatedAt, x.ContentHash()) {
		want = "Grace"
	}
	for i, order := range [][2]clerkevent.User{{x, y}, {y, x}} {
		id := fmt.Sprintf("user_tie_%d", i)
		for _, u := range order {
			u.ClerkID = id
			_, err := b.st.UpsertUser(ctx, u, 0)
			require.NoError(t, err)
		}
		got, err := b.st.UserByClerkID(ctx, id)
		require.NoError(t, err)
		var row struct {
			FirstName string `json:"first_name"`
		}
		require.NoError(t, got.Decode(&row))
		require.Equal(t, want, row.FirstName, "order %d", i)
	}
}

func TestUpsertAndDeleteRacing_NeverResurrect(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	const users = 50
	var wg sync.WaitGroup
	for i := range users {
		id := fmt.Sprintf("user_race_%d", i)
		wg.Add(2)
		go func() {
			defer wg.Done()
			_, err := b.st.UpsertUser(ctx, user(id, 1, "x"), 0)
			assert.NoError(t, err)
		}()
		go func() {
			defer wg.Done()
			_, err := b.deleteUser(ctx, id, base)
			assert.NoError(t, err)
		}()
	}
	wg.Wait()
	require.Equal(t, 0, b.count(t, "select count(*) from users"))
	require.Equal(t, users, b.count(t, "select count(*) from clerksync.user_tombstones"))
}

func TestUpsertUser_RefusedDataIsPermanent(t *testing.T) {
	t.Parallel()
	b := setup(t)
	u := user("user_nul", 1, "bad\x00name") // PostgreSQL text cannot hold NUL
	_, err := b.st.UpsertUser(context.Background(), u, 0)
	require.Error(t, err)
	require.True(t, b.st.IsPermanent(err), "got %v", err)

	empty := ""
	u = user("user_empty_email", 1, "x")
	u.Email = &empty // our own CHECK: NULL, never ''
	_, err = b.st.UpsertUser(context.Background(), u, 0)
	require.Error(t, err)
	require.True(t, b.st.IsPermanent(err), "got %v", err)

	require.False(t, b.st.IsPermanent(errors.New("connection refused")))
	require.False(t, b.st.IsPermanent(&pgconn.PgError{}), "an error without a code is not permanent (and does not panic)")
}

// TestClassify_BySQLStateAndWhichTableItIs: what a write's error means is
// decided by its SQLSTATE's class and whether the table is clerksync's
// bookkeeping, never by the table's name: a CHECK of a product table
// called users refuses the data, as one called orders does; the same
// violation in the bookkeeping schema is clerksync's own (retried).
func TestClassify_BySQLStateAndWhichTableItIs(t *testing.T) {
	t.Parallel()
	st, _ := testenv.Store(t)
	pg := func(code, schema, table string) error {
		return fmt.Errorf("upsert user: %w", &pgconn.PgError{Code: code, SchemaName: schema, TableName: table})
	}
	for _, c := range []struct {
		err  error
		want store.ErrorKind
	}{
		{pg("23514", "app", "users"), store.Refused},
		{pg("23514", "app", "orders"), store.Refused},
		{pg("23502", "public", "User"), store.Refused},
		{pg("22001", "", ""), store.Refused}, // value too long, whatever the table
		{pg("22P02", "", ""), store.Refused}, // invalid text representation (bad JSON)
		{pg("23505", "app", "users"), store.Conflict},
		{pg("23503", "app", "team_members"), store.Conflict},
		{pg("23514", "clerksync", "user_state"), store.Transient},
		{pg("23505", "clerksync", "user_tombstones"), store.Transient},
		{pg("40001", "", ""), store.Transient}, // serialization failure
		{pg("57P01", "", ""), store.Transient}, // admin shutdown
		{errors.New("connection refused"), store.Transient},
	} {
		require.Equal(t, c.want, st.Classify(c.err), "%v", c.err)
	}
}

func TestMigrate_ConcurrentStartsApplyOnce(t *testing.T) {
	t.Parallel()
	dbURL := testenv.Database(t)
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st, err := store.Open(ctx, dbURL, store.Layout{})
			if err != nil {
				errs[i] = err
				return
			}
			defer st.Close()
			errs[i] = migrations.Apply(ctx, st)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		require.NoError(t, err)
	}
	st, err := store.Open(ctx, dbURL, store.Layout{})
	require.NoError(t, err)
	defer st.Close()
	require.NoError(t, migrations.Apply(ctx, st), "migrating a migrated database is a no-op")
	_, err = st.UpsertUser(ctx, user("user_m", 1, "M"), 0)
	require.NoError(t, err)
}

// TestWriteUserPage_RacingWebhooksNeverResurrectsNorRegresses: a backfill
// page of old data races, for the same users, webhook deletions and newer
// webhook updates. Whatever the interleaving, a deleted user stays deleted
// and newer data is never overwritten with the page's older data.
func TestWriteUserPage_RacingWebhooksNeverResurrectsNorRegresses(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	const users = 200
	page := make([]clerkevent.User, users)
	for i := range page {
		page[i] = user(fmt.Sprintf("user_page_%03d", i), 1, "Page")
	}
	var wg sync.WaitGroup
	for round := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := b.st.WriteUserPage(ctx, "", page, time.Hour)
			assert.NoError(t, err, "page write %d", round)
		}()
	}
	for i := range users {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := page[i].ClerkID
			if i%2 == 0 {
				_, err := b.deleteUser(ctx, id, base)
				assert.NoError(t, err)
				return
			}
			_, err := b.st.UpsertUser(ctx, user(id, 2, "Webhook"), 0)
			assert.NoError(t, err)
		}()
	}
	wg.Wait()
	require.Equal(t, users/2, b.count(t, "select count(*) from users"), "no deleted user resurrected")
	require.Equal(t, users/2, b.count(t, "select count(*) from users where first_name = 'Webhook'"), "no newer data overwritten")
	require.Equal(t, users/2, b.count(t, "select count(*) from clerksync.user_tombstones"))
}

// TestWriteUserPage_ProbesTheTablesItDoesNotScan: a backfill of recent
// users into a small table looks each page's users up by index, and gives
// their trials by index, so a page costs the same however full the table
// is. Planned as NOT EXISTS, PostgreSQL hashed the whole users table for
// every page, and went on doing so with a plan made while the table was
// small; the trials, given by a second statement that matched the page's
// IDs against user_state, scanned user_state for every page: sequential
// reads grew with the square of the backfill.
func TestWriteUserPage_ProbesTheTablesItDoesNotScan(t *testing.T) {
	t.Parallel()
	st, dbURL := testenv.Store(t)
	ctx := context.Background()
	db, err := pgx.Connect(ctx, dbURL)
	require.NoError(t, err)
	defer db.Close(ctx)
	const pages, perPage = 24, 500
	created := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	for p := range pages {
		page := make([]clerkevent.User, perPage)
		for i := range page {
			page[i] = user(fmt.Sprintf("user_scan_%02d_%03d", p, i), 1, "Page")
			page[i].ClerkCreatedAt, page[i].ClerkUpdatedAt = created, created
		}
		res, err := st.WriteUserPage(ctx, "", page, 14*24*time.Hour)
		require.NoError(t, err)
		require.Equal(t, perPage, res.Trials)
		if p == 0 {
			// As autovacuum does once a new table has rows: the statistics
			// of a small table.
			_, err := db.Exec(ctx, `analyze users; analyze subscriptions; analyze clerksync.user_state; analyze clerksync.user_tombstones`)
			require.NoError(t, err)
		}
	}
	st.Close() // each connection's statistics are sent as it closes
	// Index scans and rows read by sequential scans, over the four tables.
	reads := func() (probes, scanned int64, err error) {
		err = db.QueryRow(ctx, `
select coalesce(sum(idx_scan), 0), coalesce(sum(seq_tup_read), 0) from pg_stat_user_tables
where relname in ('users', 'subscriptions', 'user_state', 'user_tombstones')`).Scan(&probes, &scanned)
		return probes, scanned, err
	}
	require.Eventually(t, func() bool {
		probes, _, err := reads()
		return assert.NoError(t, err) && probes >= pages*perPage
	}, 10*time.Second, 50*time.Millisecond, "every page's statistics reported")
	_, scanned, err := reads()
	require.NoError(t, err)
	require.Less(t, scanned, int64(pages*perPage), "rows read by sequential scans: less than one table's worth over the whole backfill")
}

// TestMigrate_KeepsToTheSchemaOfSearchPath: with search_path in
// DATABASE_URL, the tables clerksync owns go to that schema, its
// bookkeeping (the migration versions included) to the bookkeeping schema,
// and none to public; migrating again changes nothing; and writes work
// there, a custom bookkeeping schema rewriting every statement.
func TestMigrate_KeepsToTheSchemaOfSearchPath(t *testing.T) {
	t.Parallel()
	dbURL := testenv.Database(t)
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, dbURL)
	require.NoError(t, err)
	defer admin.Close(ctx)
	_, err = admin.Exec(ctx, `create schema app`)
	require.NoError(t, err)
	st, err := store.Open(ctx, dbURL+"?search_path=app", store.Layout{Schema: "app_sync"})
	require.NoError(t, err)
	defer st.Close()
	require.NoError(t, migrations.Apply(ctx, st))
	require.NoError(t, migrations.Apply(ctx, st), "a second run finds its own tables")
	tables := func(schema string) []string {
		rows, err := admin.Query(ctx, `select table_name::text from information_schema.tables where table_schema = $1 order by 1`, schema)
		require.NoError(t, err)
		names, err := pgx.CollectRows(rows, pgx.RowTo[string])
		require.NoError(t, err)
		return names
	}
	require.Equal(t, []string{"organization_memberships", "organizations", "subscriptions", "users"}, tables("app"))
	require.Equal(t, []string{"additions_version", "backfill_seen", "clerk_instance", "membership_state", "organization_membership_tombstones", "organization_state",
		"organization_tombstones", "schema_version", "tables_version", "user_state", "user_tombstones"}, tables("app_sync"))
	require.Empty(t, tables("public"))
	require.Empty(t, tables("clerksync"))

	u := clerkevent.User{ClerkID: "user_in_app", ClerkCreatedAt: time.Now(), ClerkUpdatedAt: time.Now()}
	res, err := st.UpsertUser(ctx, u, time.Hour)
	require.NoError(t, err)
	require.Equal(t, store.Inserted, res.Outcome)
	require.False(t, res.TrialEndsAt.IsZero(), "the trial is granted through app_sync.user_state")
	require.NoError(t, st.TombstoneUser(ctx, u.ClerkID, time.Now()))
	_, err = st.UserByClerkID(ctx, u.ClerkID)
	require.ErrorIs(t, err, store.ErrDeleted)
}

// TestMigrate_RefusesATableItDidNotCreate: a schema clerksync never
// migrated that holds a users table of its own is refused, naming the
// table, as an error no retry can fix.
func TestMigrate_RefusesATableItDidNotCreate(t *testing.T) {
	t.Parallel()
	dbURL := testenv.Database(t)
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, dbURL)
	require.NoError(t, err)
	defer admin.Close(ctx)
	_, err = admin.Exec(ctx, `create table "users" (id text primary key, "clerkId" text unique not null)`)
	require.NoError(t, err)
	st, err := store.Open(ctx, dbURL, store.Layout{})
	require.NoError(t, err)
	defer st.Close()
	err = migrations.Apply(ctx, st)
	var foreign *migrations.ForeignTableError
	require.ErrorAs(t, err, &foreign)
	require.Equal(t, "users", foreign.Table)
	require.True(t, migrations.IsPermanent(err))
	require.False(t, migrations.IsPermanent(&pgconn.PgError{Code: "57P03"}), "a database starting up is waited for")
}

// TestMigrate_NamesADatabaseOfTheEarlierLayout: a database an earlier
// clerksync migrated (its version table in the product's schema) is
// refused with what to do, not taken for the product's own tables.
func TestMigrate_NamesADatabaseOfTheEarlierLayout(t *testing.T) {
	t.Parallel()
	dbURL := testenv.Database(t)
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, dbURL)
	require.NoError(t, err)
	defer admin.Close(ctx)
	_, err = admin.Exec(ctx, `create table users (id uuid primary key); create table clerksync_schema_version (version int)`)
	require.NoError(t, err)
	st, err := store.Open(ctx, dbURL, store.Layout{})
	require.NoError(t, err)
	defer st.Close()
	err = migrations.Apply(ctx, st)
	require.ErrorContains(t, err, "created by an earlier clerksync")
	require.ErrorContains(t, err, "make reset")
	require.True(t, migrations.IsPermanent(err))
}

// TestMigrate_RefusesASchemaALaterReleaseMigrated: a worker of this
// release started on a database a later release migrated (a rollback)
// refuses at start, naming the versions and where to read what to do,
// and the worker takes the refusal as final instead of waiting for ever;
// the database is left as it was.
func TestMigrate_RefusesASchemaALaterReleaseMigrated(t *testing.T) {
	t.Parallel()
	st, dbURL := testenv.Store(t)
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, dbURL)
	require.NoError(t, err)
	defer admin.Close(ctx)
	var known int32
	require.NoError(t, admin.QueryRow(ctx, `update clerksync.schema_version set version = version + 1 returning version - 1`).Scan(&known))

	err = migrations.Apply(ctx, st)
	var newer *migrations.NewerSchemaError
	require.ErrorAs(t, err, &newer)
	require.Equal(t, migrations.NewerSchemaError{Set: "bookkeeping", Table: "clerksync.schema_version", Current: known + 1, Known: known}, *newer)
	require.ErrorContains(t, err, "docs/upgrading.md#rolling-back")
	require.True(t, migrations.IsPermanent(err))
	var after int32
	require.NoError(t, admin.QueryRow(ctx, `select version from clerksync.schema_version`).Scan(&after))
	require.Equal(t, known+1, after, "the refusal changed the schema's version")
}
