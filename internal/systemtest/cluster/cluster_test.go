//go:build cluster

// Package cluster_test runs clerksync on a production-shaped Temporal
// (internal/testsupport/cluster): `make test-cluster`.
package cluster_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/api/workflowservice/v1"

	"github.com/clerksync/clerksync/internal/clerkwebhook"
	"github.com/clerksync/clerksync/internal/testsupport/clerkfake"
	"github.com/clerksync/clerksync/internal/testsupport/cluster"
	"github.com/clerksync/clerksync/internal/testsupport/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

const (
	secret      = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	trialPeriod = 20 * time.Second
)

// TestCluster_TwoWorkersTwoStartersThroughCrashesAndARestart: the shuffled,
// duplicated webhook corpus of the system tests, sent through two starters
// and applied by two workers, all connecting to a 4-shard temporal-server
// on PostgreSQL over mutual TLS only. Mid-stream one worker is SIGKILLed,
// then one starter stopped (the rest goes through the other, as a load
// balancer would send it) and the history service restarted. The table
// ends exact. Then everything an operator runs works there: ensure, the
// trial-expiry Schedule, backfill, reconcile and starter status; and no
// run of a deleted user is left listed in Temporal, while the tombstone
// still refuses a late event.
func TestCluster_TwoWorkersTwoStartersThroughCrashesAndARestart(t *testing.T) {
	c := cluster.Start(t)
	bin := testenv.Build(t)
	dbURL := testenv.Database(t)
	fake := clerkfake.Start(t)
	logs := t.TempDir()
	env := append(c.Env(), "PATH="+os.Getenv("PATH"), "HOME="+os.Getenv("HOME"), "DATABASE_URL="+dbURL,
		"CLERK_WEBHOOK_SECRET="+secret, "CLERK_SECRET_KEY="+clerkfake.SecretKey, "CLERK_API_URL="+fake.URL(),
		// The corpus's users signed up an hour ago: with a short trial they
		// get none, and the one user who signs up now sees the Schedule
		// expire theirs.
		"TRIAL_PERIOD="+trialPeriod.String(), "TRIAL_EXPIRY_INTERVAL=1s", "ERASURE_INTERVAL=1s")
	var workers []*testenv.Process
	var starters []*testenv.Process
	var urls []string
	for i := range 2 {
		w := testenv.StartProcess(t, logs, fmt.Sprintf("worker-%d", i), append(env, "WORKER_HTTP_ADDR="+testenv.FreeAddr(t)), filepath.Join(bin, "worker"))
		workers = append(workers, w)
		addr := testenv.FreeAddr(t)
		s := testenv.StartProcess(t, logs, fmt.Sprintf("starter-%d", i), append(env, "HTTP_ADDR="+addr, "WORKER_HTTP_ADDR="+testenv.FreeAddr(t)),
			filepath.Join(bin, "starter"), "serve")
		starters = append(starters, s)
		urls = append(urls, "http://"+addr)
	}
	for _, u := range urls {
		require.Eventually(t, func() bool {
			resp, err := http.Get(u + "/readyz")
			if err != nil {
				return false
			}
			resp.Body.Close()
			return resp.StatusCode == http.StatusOK
		}, 2*time.Minute, 200*time.Millisecond, "%s never became ready (the workers register the search attributes)", u)
	}

	seed := uint64(time.Now().UnixNano())
	sc := testenv.NewScenario(t, testenv.ScenarioOptions{Users: 150, DuplicateRate: 0.2, Seed: seed, Prefix: "cluster"})
	t.Logf("seed %d: %d deliveries, %d live and %d deleted users", seed, len(sc.Deliveries), len(sc.Live), len(sc.Deleted))
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	// through sends deliveries alternately through the starters at urls.
	through := func(ds []testenv.Delivery, urls ...string) {
		t.Helper()
		parts := make([][]testenv.Delivery, len(urls))
		for i, d := range ds {
			parts[i%len(urls)] = append(parts[i%len(urls)], d)
		}
		errs := make(chan error, len(urls))
		for i, u := range urls {
			go func() {
				stats, err := testenv.Deliver(ctx, u+"/webhooks/clerk", secret, parts[i], 4, 0)
				if err == nil && stats.Refused > 0 {
					err = fmt.Errorf("%s refused %d deliveries", u, stats.Refused)
				}
				errs <- err
			}()
		}
		for range urls {
			require.NoError(t, <-errs)
		}
	}
	n := len(sc.Deliveries)
	through(sc.Deliveries[:n/3], urls...)
	workers[0].Kill(t)
	through(sc.Deliveries[n/3:2*n/3], urls...)
	require.NoError(t, starters[1].Stop(), "the second starter stops cleanly")
	c.Restart("history")
	through(sc.Deliveries[2*n/3:], urls[0])

	db, err := pgx.Connect(ctx, dbURL)
	require.NoError(t, err)
	defer db.Close(ctx)
	var last testenv.Divergence
	require.Eventually(t, func() bool {
		last, err = sc.Compare(ctx, db)
		require.NoError(t, err)
		return last.Zero()
	}, 4*time.Minute, 500*time.Millisecond, "the table never converged (seed %d): %v", seed, &last)

	// Ensure works on the cluster, and the trial it grants is expired by
	// the trial-expiry Schedule.
	signup := time.Now().Truncate(time.Millisecond)
	fake.PutUser(clerkfake.User{ID: "user_cluster_ensure", Email: "ensure@example.com", CreatedAt: signup, UpdatedAt: signup})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, urls[0]+"/v1/users/ensure", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+fake.Token(t, clerkfake.TokenClaims{Subject: "user_cluster_ensure"}))
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	trial := func() string {
		var st string
		err := db.QueryRow(ctx, `select s.status from subscriptions s join users u on u.id = s.user_id where u.clerk_id = 'user_cluster_ensure'`).Scan(&st)
		if err != nil {
			return err.Error()
		}
		return st
	}
	require.Eventually(t, func() bool { return trial() == "trialing" }, trialPeriod*3/4, 100*time.Millisecond,
		"the ensured user got no trial: %s", trial())
	require.Eventually(t, func() bool { return trial() == "expired" }, time.Minute, 500*time.Millisecond,
		"the trial-expiry Schedule never expired the trial")
	require.Zero(t, count(t, ctx, db, `select count(*) from subscriptions where status = 'trialing'`), "the corpus's old users got no trial")

	// Backfill and reconcile: Clerk holds every live user of the corpus as
	// the table has it, and 600 users clerksync never heard of (more than
	// a page); then loses 7 of those without a webhook.
	starter := func(args ...string) string {
		t.Helper()
		cmd := exec.CommandContext(ctx, filepath.Join(bin, "starter"), args...)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "starter %s:\n%s", strings.Join(args, " "), out)
		return string(out)
	}
	for id, row := range sc.Live {
		fake.PutUser(clerkfake.User{ID: id, Email: deref(row.Email), FirstName: deref(row.FirstName), LastName: deref(row.LastName),
			CreatedAt: row.Version.Add(-time.Hour), UpdatedAt: row.Version})
	}
	old := signup.Add(-24 * time.Hour)
	var backfilled []string
	for i := range 600 {
		id := fmt.Sprintf("user_cluster_bf%04d", i)
		backfilled = append(backfilled, id)
		fake.PutUser(clerkfake.User{ID: id, Email: fmt.Sprintf("bf%d@example.com", i), CreatedAt: old, UpdatedAt: old})
	}
	out := starter("backfill")
	require.Contains(t, out, "backfill/backfill done")
	require.Contains(t, out, "600 created")
	local := len(sc.Live) + 1 + 600
	require.Equal(t, local, count(t, ctx, db, `select count(*) from users`))
	for _, id := range backfilled[:7] {
		fake.DeleteUser(id)
	}
	out = starter("reconcile")
	require.Contains(t, out, "backfill/reconcile done", out)
	require.Equal(t, local-7, count(t, ctx, db, `select count(*) from users`))
	require.Zero(t, count(t, ctx, db, `select count(*) from users where clerk_id = $1`, backfilled[0]))
	out = starter("status", backfilled[10])
	require.Contains(t, out, `"email": "bf10@example.com"`)
	require.Contains(t, out, `"user_workflow": null`, "a backfilled user has no workflow until an event of theirs")
	for id, row := range sc.Live {
		out = starter("status", id)
		require.Contains(t, out, `"first_name": "`+deref(row.FirstName)+`"`)
		require.Contains(t, out, `"sync_state": "synced"`)
		break // one of them, any
	}

	// A deleted user's runs all leave Temporal, the deleting one too, as
	// `temporal workflow list` (the pinned CLI, over mutual TLS) shows.
	// (The user's events are sent apart, so each makes a run of its own.)
	tc := c.Client()
	const erased = "user_cluster_erased"
	runs := func(status string) int {
		resp, err := tc.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
			Query: fmt.Sprintf("WorkflowId = 'user/%s' AND %s", erased, status)})
		if err != nil {
			return -1
		}
		return len(resp.Executions)
	}
	at := time.Now().Add(-time.Minute).Truncate(time.Millisecond)
	for i, ev := range []string{"user.created", "user.updated", "user.deleted"} {
		var body []byte
		if ev == "user.deleted" {
			body, err = clerkwebhook.DeletedEvent(erased, at.Add(time.Duration(i)*time.Second))
		} else {
			body, err = clerkwebhook.UserEvent(ev, clerkwebhook.UserFields{ClerkID: erased, Email: "erased@example.com",
				CreatedAt: at, UpdatedAt: at.Add(time.Duration(i) * time.Second)})
		}
		require.NoError(t, err)
		stats, err := testenv.Deliver(ctx, urls[0]+"/webhooks/clerk", secret, []testenv.Delivery{{MsgID: fmt.Sprintf("msg_erased_%d", i), Body: body}}, 1, 0)
		require.NoError(t, err)
		require.Zero(t, stats.Refused)
		if i < 2 {
			require.Eventually(t, func() bool { return runs("ExecutionStatus = 'Completed'") == i+1 }, time.Minute, 200*time.Millisecond)
		}
	}
	requireNoRunListed(t, ctx, c, "user/"+erased)
	require.Zero(t, count(t, ctx, db, `select count(*) from users where clerk_id = $1`, erased))

	// A late event for the erased user is still refused by the tombstone.
	body, err := clerkwebhook.UserEvent("user.updated", clerkwebhook.UserFields{ClerkID: erased, Email: "erased@example.com",
		CreatedAt: at, UpdatedAt: at.Add(time.Hour)})
	require.NoError(t, err)
	stats, err := testenv.Deliver(ctx, urls[0]+"/webhooks/clerk", secret, []testenv.Delivery{{MsgID: "msg_erased_late", Body: body}}, 1, 0)
	require.NoError(t, err)
	require.Zero(t, stats.Refused)
	require.NoError(t, tc.GetWorkflow(ctx, "user/"+erased, "").Get(ctx, nil), "the late event's run")
	require.Zero(t, count(t, ctx, db, `select count(*) from users where clerk_id = $1`, erased))
	out = starter("status", erased)
	require.Contains(t, out, `"deleted": true`)
	require.Contains(t, out, `"row": null`)
	requireNoRunListed(t, ctx, c, "user/"+erased) // the late event's run goes too
	require.Contains(t, starter("status", erased), `"pending": false`, "status shows the erasure done")
}

// requireNoRunListed waits until `temporal workflow list` on the cluster
// lists no run of workflowID: the erasure Schedule deletes a deleted
// user's runs a few seconds after the last one closed, and Temporal drops
// a deleted run from visibility in a task of its own.
func requireNoRunListed(t *testing.T, ctx context.Context, c *cluster.Cluster, workflowID string) {
	t.Helper()
	var listed string
	if !assert.Eventually(t, func() bool {
		cmd := exec.CommandContext(ctx, testenv.TemporalCLI(t), "workflow", "list", "--query", "WorkflowId = '"+workflowID+"'", "--output", "json")
		cmd.Env = append(c.Env(), "HOME="+t.TempDir())
		out, err := cmd.CombinedOutput()
		listed = strings.TrimSpace(string(out))
		var runs []json.RawMessage
		return err == nil && json.Unmarshal(out, &runs) == nil && len(runs) == 0
	}, 3*time.Minute, time.Second) {
		t.Fatalf("temporal workflow list still lists runs of %s: %s", workflowID, listed)
	}
}

// count runs a count(*) query.
func count(t *testing.T, ctx context.Context, db *pgx.Conn, query string, args ...any) int {
	t.Helper()
	var n int
	require.NoError(t, db.QueryRow(ctx, query, args...).Scan(&n), query)
	return n
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
