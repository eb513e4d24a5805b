package store_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/clerksync/clerksync/internal/clerkevent"
	"github.com/clerksync/clerksync/internal/store"
)

// TestUpsertUser_GrantsTheTrialOnceEver: the write that first brings a
// user's Clerk created_at gives the trial, in the same transaction; no later
// write, duplicate or product cleanup gives a second one, and a user whose
// trial would already have ended gets none.
func TestUpsertUser_GrantsTheTrialOnceEver(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	const period = 14 * 24 * time.Hour
	created := time.Now().Add(-time.Hour).Truncate(time.Millisecond).UTC()
	recent := func(id string, version int) clerkevent.User {
		u := user(id, version, "T")
		u.ClerkCreatedAt = created
		u.ClerkUpdatedAt = u.ClerkCreatedAt.Add(time.Duration(version) * time.Millisecond)
		return u
	}

	res, err := b.st.UpsertUser(ctx, recent("user_t", 1), period)
	require.NoError(t, err)
	require.Equal(t, store.Inserted, res.Outcome)
	require.True(t, created.Add(period).Equal(res.TrialEndsAt), "ends at Clerk's created_at + the period: %s", res.TrialEndsAt)
	for v := 2; v <= 3; v++ {
		res, err = b.st.UpsertUser(ctx, recent("user_t", v), period)
		require.NoError(t, err)
		require.Equal(t, store.Updated, res.Outcome)
		require.Zero(t, res.TrialEndsAt, "no second trial")
	}
	_, err = b.conn.Exec(ctx, `delete from subscriptions`) // the product cleans up
	require.NoError(t, err)
	res, err = b.st.UpsertUser(ctx, recent("user_t", 4), period)
	require.NoError(t, err)
	require.Zero(t, res.TrialEndsAt, "a user who ever had a trial gets none")
	require.Zero(t, b.count(t, "select count(*) from subscriptions"))

	// Ensure's minimal row has no created_at: the trial comes with the
	// profile that follows it.
	minimal := clerkevent.User{ClerkID: "user_t_ensured", ClerkUpdatedAt: time.UnixMilli(0).UTC()}
	res, err = b.st.UpsertUser(ctx, minimal, period)
	require.NoError(t, err)
	require.Zero(t, res.TrialEndsAt)
	res, err = b.st.UpsertUser(ctx, recent("user_t_ensured", 1), period)
	require.NoError(t, err)
	require.Equal(t, store.Updated, res.Outcome)
	require.NotZero(t, res.TrialEndsAt)

	old := user("user_t_old", 1, "Old") // created in 2022: its trial would have ended long ago
	res, err = b.st.UpsertUser(ctx, old, period)
	require.NoError(t, err)
	require.Zero(t, res.TrialEndsAt)
	require.Equal(t, 1, b.count(t, "select count(*) from subscriptions"), "only user_t_ensured's")
}

// TestExpireDueTrials_OnlyDueAndStillTrialing: expiry takes trials that
// have ended and are still trialing, in bounded batches, and leaves the
// product's own statuses alone.
func TestExpireDueTrials_OnlyDueAndStillTrialing(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	sub := func(clerkID, status string, endsIn time.Duration) {
		res, err := b.st.UpsertUser(ctx, user(clerkID, 1, "E"), 0)
		require.NoError(t, err)
		_, err = b.conn.Exec(ctx, `insert into subscriptions (user_id, plan, status, trial_ends_at) values ($1, 'trial', $2, now() + $3::interval)`,
			res.UserID, status, fmt.Sprintf("%d seconds", int(endsIn.Seconds())))
		require.NoError(t, err)
	}
	for i := range 5 {
		sub(fmt.Sprintf("user_due_%d", i), "trialing", -time.Minute)
	}
	sub("user_not_due", "trialing", time.Hour)
	sub("user_upgraded", "active", -time.Minute)
	sub("user_canceled", "canceled", -time.Minute)

	n, err := b.st.ExpireDueTrials(ctx, 3)
	require.NoError(t, err)
	require.Equal(t, 3, n, "bounded by the limit")
	n, err = b.st.ExpireDueTrials(ctx, 3)
	require.NoError(t, err)
	require.Equal(t, 2, n)
	n, err = b.st.ExpireDueTrials(ctx, 3)
	require.NoError(t, err)
	require.Zero(t, n)
	require.Equal(t, 5, b.count(t, "select count(*) from subscriptions where status = 'expired'"))
	require.Equal(t, 1, b.count(t, "select count(*) from subscriptions where status = 'trialing'"))
	require.Equal(t, 1, b.count(t, "select count(*) from subscriptions where status = 'active'"))
	require.Equal(t, 1, b.count(t, "select count(*) from subscriptions where status = 'canceled'"))
}
