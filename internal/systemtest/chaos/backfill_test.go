package chaos

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"

	"github.com/clerksync/clerksync/internal/testsupport/clerkfake"
	"github.com/clerksync/clerksync/internal/testsupport/testenv"
	"github.com/clerksync/clerksync/workflows"
)

// TestBackfill_ResumesAfterTheWorkerIsKilled: a backfill of 10,000 Clerk
// users, some already in the table with newer data, some tombstoned, with
// 429s on the way; the worker is SIGKILLed mid-run and restarted. The run
// resumes from its last heartbeat and the table ends equal to Clerk's users,
// newer local data kept, tombstoned users still absent, trials for recent
// users only. The listing is read in three windows side by side, each
// resuming where it was.
func TestBackfill_ResumesAfterTheWorkerIsKilled(t *testing.T) {
	t.Parallel()
	dbURL := testenv.Database(t)
	tc := testenv.Temporal(t)
	fake := clerkfake.Start(t)
	bin := testenv.Build(t)
	env := []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"),
		"DATABASE_URL=" + dbURL, "TEMPORAL_ADDRESS=" + testenv.TemporalAddress(t), "TEMPORAL_TASK_QUEUE=backfill-chaos",
		"CLERK_SECRET_KEY=" + clerkfake.SecretKey, "CLERK_API_URL=" + fake.URL(),
		"CLERK_API_RPS=3",    // 20 pages take about 7 s: long enough to be killed in
		"BACKFILL_WINDOWS=3", // read side by side, each window resuming where it was
		"WORKER_HTTP_ADDR=" + testenv.FreeAddr(t),
	}
	logs := t.TempDir()
	worker := testenv.StartProcess(t, logs, "worker", env, filepath.Join(bin, "worker"))

	now := time.Now().Truncate(time.Millisecond)
	var users []clerkfake.User
	for i := range 10_000 {
		created := now.Add(-60 * 24 * time.Hour).Add(time.Duration(i) * time.Second) // old: no trial
		if i%10 == 0 {
			created = now.Add(-time.Duration(i) * time.Second) // recent: a trial
		}
		users = append(users, clerkfake.User{ID: fmt.Sprintf("user_bk%05d", i), Email: fmt.Sprintf("bk%d@example.com", i),
			CreatedAt: created, UpdatedAt: created})
	}
	fake.PutUsers(users...)

	ctx := context.Background()
	db, err := pgx.Connect(ctx, dbURL)
	require.NoError(t, err)
	defer db.Close(ctx)
	waitForMigrations(t, db)
	// What webhooks wrote before: newer data for some users, deletions of others.
	_, err = db.Exec(ctx, `
insert into users (clerk_id, first_name, clerk_created_at, clerk_updated_at)
select 'user_bk' || lpad(i::text, 5, '0'), 'Newer', now() - interval '60 days', now()
from generate_series(1, 9999, 1000) i;
insert into clerksync.user_state (clerk_id, clerk_updated_at, content_hash) select clerk_id, clerk_updated_at, '' from users;
insert into clerksync.user_tombstones (clerk_id) select 'user_bk' || lpad(i::text, 5, '0') from generate_series(2, 9999, 1000) i;`)
	require.NoError(t, err)
	fake.FailListsWith(3, 429, 1)

	run, err := tc.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: workflows.BackfillWorkflowID("backfill-chaos", "killed"), TaskQueue: "backfill-chaos"},
		workflows.BackfillWorkflow, workflows.BackfillInput{})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		var n int
		return db.QueryRow(ctx, `select count(*) from users`).Scan(&n) == nil && n > 2500
	}, time.Minute, 50*time.Millisecond, "the backfill never got going")
	t.Log("SIGKILL the worker mid-run and restart it")
	worker.Kill(t)
	testenv.StartProcess(t, logs, "worker-2", env, filepath.Join(bin, "worker"))

	waitCtx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	var p workflows.BackfillProgress
	require.NoError(t, run.Get(waitCtx, &p), "logs in %s", logs)
	t.Logf("backfill: %+v", p.Stats)
	require.Equal(t, workflows.PhaseDone, p.Phase)
	require.GreaterOrEqual(t, p.Stats.RateLimited, 3)
	require.Greater(t, len(p.Windows), 1, "the listing was not read in windows")

	count := func(sql string) int {
		var n int
		require.NoError(t, db.QueryRow(ctx, sql).Scan(&n))
		return n
	}
	require.Equal(t, 10_000-10, count(`select count(*) from users`), "every user but the tombstoned ones")
	require.Equal(t, 10, count(`select count(*) from users where first_name = 'Newer'`), "newer local data kept")
	require.Zero(t, count(`select count(*) from users u join clerksync.user_tombstones t using (clerk_id)`), "tombstoned users still absent")
	require.Equal(t, 10_000-10-10, count(`select count(*) from users where email = 'bk' || substr(clerk_id, 8)::int || '@example.com'`),
		"every other user has Clerk's data")
	// Trials: the recent tenth of the users, none of the old ones, none for
	// the rows the webhooks wrote (their Clerk created_at is old).
	require.Equal(t, 1000, count(`select count(*) from subscriptions`))
	require.Zero(t, count(`select count(*) from subscriptions s join users u on u.id = s.user_id where u.clerk_created_at < now() - interval '30 days'`))
}
