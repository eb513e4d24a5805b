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
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/clerksync/clerksync/internal/clerkevent"
	"github.com/clerksync/clerksync/internal/store"
	"github.com/clerksync/clerksync/internal/testenv"
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

	res, err := b.st.UpsertUser(ctx, user("user_a", 2, "Two"))
	require.NoError(t, err)
	require.Equal(t, store.Inserted, res.Outcome)
	id := res.UserID

	res, err = b.st.UpsertUser(ctx, user("user_a", 1, "One"))
	require.NoError(t, err)
	require.Equal(t, store.UpsertResult{UserID: id, Outcome: store.Stale}, res)

	res, err = b.st.UpsertUser(ctx, user("user_a", 2, "Two again"))
	require.NoError(t, err)
	require.Equal(t, store.Stale, res.Outcome, "an equal version is a duplicate, not a newer write")

	res, err = b.st.UpsertUser(ctx, user("user_a", 3, "Three"))
	require.NoError(t, err)
	require.Equal(t, store.UpsertResult{UserID: id, Outcome: store.Updated}, res)

	got, err := b.st.UserByClerkID(ctx, "user_a")
	require.NoError(t, err)
	require.Equal(t, id, got.ID)
	require.Equal(t, "Three", *got.FirstName)
	require.Equal(t, base.Add(3*time.Millisecond), got.ClerkUpdatedAt.UTC())
	require.Nil(t, got.Email, "no primary email is NULL")
	require.Equal(t, 1, b.count(t, "select count(*) from users"))
}

func TestDeleteUser_TombstonesAndCascades(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	res, err := b.st.UpsertUser(ctx, user("user_d", 1, "D"))
	require.NoError(t, err)
	_, err = b.conn.Exec(ctx, `insert into subscriptions (user_id, plan, status) values ($1, 'pro', 'trialing')`, res.UserID)
	require.NoError(t, err)

	removed, err := b.st.DeleteUser(ctx, "user_d", base)
	require.NoError(t, err)
	require.True(t, removed)
	require.Equal(t, 0, b.count(t, "select count(*) from subscriptions"), "dependent rows cascade")

	removed, err = b.st.DeleteUser(ctx, "user_d", base.Add(time.Hour))
	require.NoError(t, err, "a redelivered delete succeeds")
	require.False(t, removed)

	res, err = b.st.UpsertUser(ctx, user("user_d", 99, "Back?"))
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
	removed, err := b.st.DeleteUser(ctx, "user_never_seen", base)
	require.NoError(t, err)
	require.False(t, removed)
	require.Equal(t, 1, b.count(t, "select count(*) from user_tombstones where clerk_id = 'user_never_seen'"))

	// The create that the delete overtook arrives late and is refused.
	res, err := b.st.UpsertUser(ctx, user("user_never_seen", 1, "Late"))
	require.NoError(t, err)
	require.Equal(t, store.Tombstoned, res.Outcome)
	_, err = b.st.UserByClerkID(ctx, "user_unknown")
	require.ErrorIs(t, err, store.ErrNotFound)
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
			_, err := b.st.UpsertUser(ctx, user(id, 1, "x"))
			assert.NoError(t, err)
		}()
		go func() {
			defer wg.Done()
			_, err := b.st.DeleteUser(ctx, id, base)
			assert.NoError(t, err)
		}()
	}
	wg.Wait()
	require.Equal(t, 0, b.count(t, "select count(*) from users"))
	require.Equal(t, users, b.count(t, "select count(*) from user_tombstones"))
}

func TestUpsertUser_RefusedDataIsPermanent(t *testing.T) {
	t.Parallel()
	b := setup(t)
	u := user("user_nul", 1, "bad\x00name") // PostgreSQL text cannot hold NUL
	_, err := b.st.UpsertUser(context.Background(), u)
	require.Error(t, err)
	require.True(t, store.IsPermanent(err), "got %v", err)
	require.False(t, store.IsPermanent(errors.New("connection refused")))
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
			st, err := store.Open(ctx, dbURL)
			if err != nil {
				errs[i] = err
				return
			}
			defer st.Close()
			errs[i] = st.Migrate(ctx)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		require.NoError(t, err)
	}
	st, err := store.Open(ctx, dbURL)
	require.NoError(t, err)
	defer st.Close()
	require.NoError(t, st.Migrate(ctx), "migrating a migrated database is a no-op")
	_, err = st.UpsertUser(ctx, user("user_m", 1, "M"))
	require.NoError(t, err)
}

func TestTrialSubscription_OnceAndExpiredOnlyWhileTrialing(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	ends := base.Add(14 * 24 * time.Hour)

	outcome, err := b.st.CreateTrialSubscription(ctx, "user_t", ends)
	require.NoError(t, err)
	require.Equal(t, store.TrialNoUser, outcome)

	_, err = b.st.UpsertUser(ctx, user("user_t", 1, "T"))
	require.NoError(t, err)
	for i, want := range []store.TrialOutcome{store.TrialCreated, store.TrialExists, store.TrialExists} {
		outcome, err := b.st.CreateTrialSubscription(ctx, "user_t", ends)
		require.NoError(t, err)
		require.Equal(t, want, outcome, "attempt %d", i+1)
	}
	require.Equal(t, 1, b.count(t, "select count(*) from subscriptions"))
	var status string
	require.NoError(t, b.conn.QueryRow(ctx, `select status from subscriptions`).Scan(&status))
	require.Equal(t, "trialing", status)

	// The product upgrades the user: expiry leaves the subscription alone.
	_, err = b.conn.Exec(ctx, `update subscriptions set status = 'active'`)
	require.NoError(t, err)
	expired, err := b.st.ExpireTrial(ctx, "user_t")
	require.NoError(t, err)
	require.False(t, expired)

	_, err = b.conn.Exec(ctx, `update subscriptions set status = 'trialing'`)
	require.NoError(t, err)
	expired, err = b.st.ExpireTrial(ctx, "user_t")
	require.NoError(t, err)
	require.True(t, expired)
	require.NoError(t, b.conn.QueryRow(ctx, `select status from subscriptions`).Scan(&status))
	require.Equal(t, "expired", status)
}
