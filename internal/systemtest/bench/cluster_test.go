package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/clerksync/clerksync/internal/testsupport/clerkfake"
	"github.com/clerksync/clerksync/internal/testsupport/cluster"
	"github.com/clerksync/clerksync/internal/testsupport/testenv"
)

// clusterRun is the throughput of the production-shaped Temporal of make
// test-cluster (internal/testsupport/cluster), measured in the same run as
// the dev server's figures.
type clusterRun struct {
	shards int
	// rounds are the raw baseline and clerksync's signups with one worker
	// and with two, in turn.
	rounds []clusterRound
}

// clusterRound is one round on the cluster: the raw baseline, and
// clerksync's signups applied by one worker and by two.
type clusterRound struct {
	raw     phase
	workers []workersRound
}

// workersRound is one run of signups applied by so many workers.
type workersRound struct {
	workers int
	phase   phase
}

// clusterBench starts the cluster and measures, in each round, the
// trivial entity workflow on it as on the dev server and clerksync's
// signups through one starter with one worker and with two, in turn (the
// second worker started for its phase and stopped after it).
func clusterBench(b *testing.B, bin string, fake *clerkfake.Server) clusterRun {
	ctx := context.Background()
	c := cluster.Start(b)
	tc := c.Client()
	r := clusterRun{shards: cluster.HistoryShards}
	server := func() map[string]int {
		pids := map[string]int{}
		for s, pid := range c.PIDs() {
			pids["temporal-"+s] = pid
		}
		return pids
	}

	defer startRawWorker(b, tc).Stop()

	dbURL := testenv.Database(b)
	db, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close(ctx)
	httpAddr := testenv.FreeAddr(b)
	env := append(c.Env(), "PATH="+os.Getenv("PATH"), "HOME="+os.Getenv("HOME"),
		"DATABASE_URL="+dbURL, "CLERK_WEBHOOK_SECRET="+secret, "HTTP_ADDR="+httpAddr,
		"CLERK_SECRET_KEY="+clerkfake.SecretKey, "CLERK_API_URL="+fake.URL(), "CLERK_API_RPS=0")
	workerEnv := func() []string { return append(slices.Clone(env), "WORKER_HTTP_ADDR="+testenv.FreeAddr(b)) }
	first := startProcess(b, "cluster-worker-0", workerEnv(), filepath.Join(bin, "worker"))
	starter := startProcess(b, "cluster-starter", workerEnv(), filepath.Join(bin, "starter"), "serve")
	waitReady(b, "the cluster's starter", httpAddr)
	webhookURL := "http://" + httpAddr + "/webhooks/clerk"
	created := time.Now().Truncate(time.Millisecond)
	for round := range 2 {
		var cr clusterRound
		// 0 is the raw baseline; 1 and 2 are clerksync with that many workers.
		for _, workers := range inTurn(round, 0, 1, 2) {
			pids := server()
			if workers == 0 {
				cr.raw = rawPhase(b, tc, pids, fmt.Sprintf("raw%d", round), "TrivialEntity", false)
				continue
			}
			pids["worker"], pids["starter"] = first.pid, starter.pid
			var second process
			if workers == 2 {
				second = startProcess(b, fmt.Sprintf("cluster-worker-1-%d", round), workerEnv(), filepath.Join(bin, "worker"))
				pids["worker-2"] = second.pid
			}
			ph := signupPhase(b, tc, webhookURL, db, `select count(*) from subscriptions`, fmt.Sprintf("cluster%d_%d_", workers, round), created, pids)
			if workers == 2 {
				second.stop()
			}
			cr.workers = append(cr.workers, workersRound{workers: workers, phase: ph})
		}
		r.rounds = append(r.rounds, cr)
	}
	return r
}

// serverCPU sums the CPU time of the Temporal server's processes
// (temporal-<service>) in a phase.
func serverCPU(p phase) time.Duration {
	var d time.Duration
	for name, cpu := range p.cpu {
		if strings.HasPrefix(name, "temporal-") {
			d += cpu
		}
	}
	return d
}

// workerCPU sums the CPU time of clerksync's workers in a phase.
func workerCPU(p phase) time.Duration { return p.cpu["worker"] + p.cpu["worker-2"] }
