package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/clerksync/clerksync/internal/syncworker"
	"github.com/clerksync/clerksync/internal/testsupport/clerkfake"
	"github.com/clerksync/clerksync/internal/testsupport/testenv"
)

// throughputRounds is how many rounds the throughput section runs
// (BENCH_THROUGHPUT_ROUNDS, default 3).
func throughputRounds() int {
	if n, err := strconv.Atoi(os.Getenv("BENCH_THROUGHPUT_ROUNDS")); err == nil && n > 0 {
		return n
	}
	return 3
}

// throughputBench runs the throughput section's rounds: in each, the raw
// baseline, the baseline with clerksync's search attributes and
// clerksync's signups, in turn, each phase on a dev server of its own
// (clerksync's also on a database of its own), started for it and stopped
// after it. On one server shared by every phase, the server's CPU per
// event grew with the histories the phases before had left, by as much as
// the gap being measured; a fresh server starts every phase alike, and
// the turns even out what the machine carries over (PostgreSQL's
// autovacuum, which each phase waits out first, and its caches). env is
// the worker's and the starter's environment but for their servers'
// addresses and their database.
func throughputBench(b *testing.B, bin string, env []string, db *pgx.Conn) []throughputRound {
	created := time.Now().Truncate(time.Millisecond)
	var rounds []throughputRound
	for round := range throughputRounds() {
		var tr throughputRound
		for _, what := range inTurn(round, "raw", "state", "clerk") {
			quiesce(b, db)
			server, address, tc := startDevServer(b)
			pids := map[string]int{"server": server.pid}
			switch what {
			case "raw", "state":
				w := startRawWorker(b, tc)
				if what == "raw" {
					tr.raw = rawPhase(b, tc, pids, fmt.Sprintf("raw%d", round), "TrivialEntity", false)
				} else {
					tr.withState = rawPhase(b, tc, pids, fmt.Sprintf("state%d", round), "TrivialEntityWithState", true)
				}
				w.Stop()
			case "clerk":
				tr.clerk = freshSignups(b, tc, bin, env, address, server.pid, fmt.Sprintf("bench%d_", round), created)
			}
			tc.Close()
			server.stop()
		}
		rounds = append(rounds, tr)
	}
	return rounds
}

// startRawWorker starts the raw baseline's worker on tc, polling the raw
// task queue like clerksync's worker polls its own.
func startRawWorker(b *testing.B, tc client.Client) worker.Worker {
	w := worker.New(tc, "raw", worker.Options{MaxConcurrentWorkflowTaskPollers: syncworker.DefaultWorkflowPollers})
	w.RegisterWorkflowWithOptions(trivialEntity, workflow.RegisterOptions{Name: "TrivialEntity"})
	w.RegisterWorkflowWithOptions(trivialEntityWithState, workflow.RegisterOptions{Name: "TrivialEntityWithState"})
	if err := w.Start(); err != nil {
		b.Fatal(err)
	}
	return w
}

// freshSignups runs one phase of clerksync's signups on the dev server at
// address (process serverPID): a worker and a starter started on a new
// database, stopped once every signup is done. The phase's CPU times leave
// out their start and their migrations.
func freshSignups(b *testing.B, tc client.Client, bin string, env []string, address string, serverPID int, prefix string, created time.Time) phase {
	ctx := context.Background()
	dbURL := testenv.Database(b)
	db, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close(ctx)
	httpAddr, workerAddr := testenv.FreeAddr(b), testenv.FreeAddr(b)
	env = append(slices.Clone(env), "DATABASE_URL="+dbURL, "TEMPORAL_ADDRESS="+address,
		"HTTP_ADDR="+httpAddr, "WORKER_HTTP_ADDR="+workerAddr)
	w := startProcess(b, "worker-"+prefix, env, filepath.Join(bin, "worker"))
	defer w.stop()
	s := startProcess(b, "starter-"+prefix, env, filepath.Join(bin, "starter"), "serve")
	defer s.stop()
	waitReady(b, "the worker", workerAddr)
	waitReady(b, "the starter", httpAddr)
	pids := map[string]int{"server": serverPID, "worker": w.pid, "starter": s.pid}
	return signupPhase(b, tc, "http://"+httpAddr+"/webhooks/clerk", db, `select count(*) from subscriptions`, prefix, created, pids)
}

// BenchmarkThroughput runs the throughput section alone, with the
// report's users and rounds, and prints its table (make bench writes it
// with the rest).
func BenchmarkThroughput(b *testing.B) {
	ctx := context.Background()
	for range b.N {
		db, err := pgx.Connect(ctx, testenv.Database(b))
		if err != nil {
			b.Fatal(err)
		}
		r := report{users: users(), throughput: throughputBench(b, testenv.Build(b), binaryEnv(clerkfake.Start(b)), db)}
		r.throughputMarkdown(func(format string, args ...any) { fmt.Printf(format+"\n", args...) })
		db.Close(ctx)
	}
}
