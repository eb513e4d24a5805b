//go:build cluster

// Package cluster_test runs clerksync on a production-shaped Temporal
// (internal/testsupport/cluster): `make test-cluster`.
package cluster_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
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

const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

// TestCluster_TwoWorkersTwoStartersThroughCrashesAndARestart: the shuffled,
// duplicated webhook corpus of the system tests, sent through two starters
// and applied by two workers, all connecting to a 4-shard temporal-server
// on PostgreSQL over mutual TLS only. Mid-stream one worker is SIGKILLed,
// then one starter stopped (the rest goes through the other, as a load
// balancer would send it) and the history service restarted. The table
// ends exact; an ensure works there; a deleted user's earlier runs are
// erased.
func TestCluster_TwoWorkersTwoStartersThroughCrashesAndARestart(t *testing.T) {
	c := cluster.Start(t)
	bin := testenv.Build(t)
	dbURL := testenv.Database(t)
	fake := clerkfake.Start(t)
	logs := t.TempDir()
	env := append(c.Env(), "PATH="+os.Getenv("PATH"), "HOME="+os.Getenv("HOME"), "DATABASE_URL="+dbURL,
		"CLERK_WEBHOOK_SECRET="+secret, "CLERK_SECRET_KEY="+clerkfake.SecretKey, "CLERK_API_URL="+fake.URL())
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

	// Ensure works on the cluster.
	fake.PutUser(clerkfake.User{ID: "user_cluster_ensure", Email: "ensure@example.com", CreatedAt: time.Now(), UpdatedAt: time.Now()})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, urls[0]+"/v1/users/ensure", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+fake.Token(t, clerkfake.TokenClaims{Subject: "user_cluster_ensure"}))
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)

	// A deleted user's earlier runs are erased; only the deleting one
	// stays listed. (The user's events are sent apart, so each makes a run
	// of its own that visibility has indexed by the next.)
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
	if !assert.Eventually(t, func() bool {
		return runs("ExecutionStatus != 'Running'") == 1 && runs("ExecutionStatus = 'Running'") == 0
	}, 3*time.Minute, time.Second, "the earlier runs of %s were never erased", erased) {
		resp, err := tc.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Query: fmt.Sprintf("WorkflowId = 'user/%s'", erased)})
		require.NoError(t, err)
		for _, e := range resp.Executions {
			t.Logf("left: run %s %s closed %v", e.Execution.RunId, e.Status, e.CloseTime.AsTime())
			d, err := tc.DescribeWorkflowExecution(ctx, "user/"+erased, e.Execution.RunId)
			t.Logf("  describe: %v %v", err, d.GetWorkflowExecutionInfo().GetStatus())
		}
		v, err := tc.QueryWorkflow(ctx, "user/"+erased, "", "state")
		if err == nil {
			var st map[string]any
			_ = v.Get(&st)
			t.Logf("state: %v", st)
		}
		t.FailNow()
	}
	var left int
	require.NoError(t, db.QueryRow(ctx, `select count(*) from users where clerk_id = $1`, erased).Scan(&left))
	require.Zero(t, left)
}
