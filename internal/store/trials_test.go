package store_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/clerksync/clerksync/internal/clerkevent"
	"github.com/clerksync/clerksync/internal/store"
	"github.com/clerksync/clerksync/internal/testsupport/testenv"
)

// recentUsers makes users (named first) that Clerk created an hour ago,
// whose trial has not ended: their created_at, and a user at a version.
func recentUsers(first string) (time.Time, func(id string, version int) clerkevent.User) {
	created := time.Now().Add(-time.Hour).Truncate(time.Millisecond).UTC()
	return created, func(id string, version int) clerkevent.User {
		u := user(id, version, first)
		u.ClerkCreatedAt = created
		u.ClerkUpdatedAt = created.Add(time.Duration(version) * time.Millisecond)
		return u
	}
}

// TestUpsertUser_GrantsTheTrialOnceEver: the write that first brings a
// user's Clerk created_at gives the trial, in the same transaction; no later
// write, duplicate or product cleanup gives a second one, and a user whose
// trial would already have ended gets none.
func TestUpsertUser_GrantsTheTrialOnceEver(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	const period = 14 * 24 * time.Hour
	created, recent := recentUsers("T")

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

// TestWriteUserPage_GrantsTheTrialOnceEver: a backfill page gives the
// trial, in the statement that writes the rows, to the users it writes for
// the first time with a Clerk created_at whose trial has not ended; never a
// second one (a later page, a user listed twice in one page, a user a
// webhook already gave one, a product that deleted the row), and none to
// a user whose trial would have ended.
func TestWriteUserPage_GrantsTheTrialOnceEver(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	const period = 14 * 24 * time.Hour
	created, recent := recentUsers("P")
	_, err := b.st.UpsertUser(ctx, recent("user_p_webhook", 1), period)
	require.NoError(t, err)
	_, err = b.st.UpsertUser(ctx, clerkevent.User{ClerkID: "user_p_ensured", ClerkUpdatedAt: time.UnixMilli(0).UTC()}, period)
	require.NoError(t, err)

	res, err := b.st.WriteUserPage(ctx, "", []clerkevent.User{
		recent("user_p_new", 1), recent("user_p_twice", 1), recent("user_p_twice", 2),
		recent("user_p_webhook", 2), recent("user_p_ensured", 1), user("user_p_old", 1, "Old"),
	}, period)
	require.NoError(t, err)
	require.Equal(t, store.PageResult{Inserted: 3, Updated: 2, Unchanged: 1, Trials: 3}, res,
		"user_p_new, user_p_twice once, user_p_ensured; not user_p_webhook (had one) nor user_p_old (ended)")
	rows, err := b.conn.Query(ctx, `
select s.trial_ends_at from subscriptions s join users u on u.id = s.user_id
where u.clerk_id in ('user_p_new', 'user_p_twice', 'user_p_ensured', 'user_p_webhook') and s.status = 'trialing'`)
	require.NoError(t, err)
	ends, err := pgx.CollectRows(rows, pgx.RowTo[time.Time])
	require.NoError(t, err)
	require.Len(t, ends, 4, "the three the page gave and the webhook's")
	for _, e := range ends {
		require.True(t, created.Add(period).Equal(e), "ends at Clerk's created_at + the period: %s", e)
	}
	require.Equal(t, 4, b.count(t, "select count(*) from subscriptions"))

	res, err = b.st.WriteUserPage(ctx, "", []clerkevent.User{recent("user_p_new", 3), recent("user_p_twice", 3)}, period)
	require.NoError(t, err)
	require.Equal(t, store.PageResult{Updated: 2}, res, "no second trial")
	_, err = b.conn.Exec(ctx, `delete from subscriptions`) // the product cleans up
	require.NoError(t, err)
	res, err = b.st.WriteUserPage(ctx, "", []clerkevent.User{recent("user_p_new", 4), recent("user_p_webhook", 4)}, period)
	require.NoError(t, err)
	require.Equal(t, store.PageResult{Updated: 2}, res, "a user who ever had a trial gets none")
	require.Zero(t, b.count(t, "select count(*) from subscriptions"))
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

// TestTrials_ForNewCustomersOnly: on the invoicing example, whose billing
// table allows several rows per user, a user who already pays (a pro plan
// the app wrote before adopting clerksync) gets no signup trial beside it,
// from a webhook or a backfill page alike; a user with no row gets one.
func TestTrials_ForNewCustomersOnly(t *testing.T) {
	t.Parallel()
	doc, err := readExample(testenv.Invoicing)
	require.NoError(t, err)
	st, db := openMapped(t, testenv.Invoicing, doc, `alter table app.subscriptions drop constraint subscriptions_user_id_key`)
	ctx := context.Background()
	_, err = db.Exec(ctx, `insert into app.users (clerk_user_id, email) values ('user_pays', 'pays@example.com'), ('user_pays_too', 'too@example.com');
insert into app.subscriptions (user_id, plan, status) select id, 'pro', 'active' from app.users`)
	require.NoError(t, err)
	now := time.Now().UTC().Truncate(time.Millisecond)
	recent := func(id, email string) clerkevent.User {
		return clerkevent.User{ClerkID: id, Email: &email, ClerkCreatedAt: now.Add(-time.Hour), ClerkUpdatedAt: now}
	}
	_, err = st.UpsertUser(ctx, recent("user_pays", "pays@example.com"), 14*24*time.Hour)
	require.NoError(t, err)
	_, err = st.WriteUserPage(ctx, "", []clerkevent.User{recent("user_pays_too", "too@example.com"), recent("user_new", "new@example.com")}, 14*24*time.Hour)
	require.NoError(t, err)
	plans := func(id string) string {
		var p string
		require.NoError(t, db.QueryRow(ctx, `select string_agg(s.plan || ':' || s.status, ',' order by s.plan) from app.subscriptions s
join app.users u on u.id = s.user_id where u.clerk_user_id = $1`, id).Scan(&p))
		return p
	}
	require.Equal(t, "pro:active", plans("user_pays"), "a paying customer got a trial from the webhook")
	require.Equal(t, "pro:active", plans("user_pays_too"), "a paying customer got a trial from the backfill")
	require.Equal(t, "trial:trialing", plans("user_new"))
}
