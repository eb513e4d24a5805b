package bench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
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
// (BENCH_THROUGHPUT_ROUNDS, default 4: an even number, so that each
// setting runs as often early in a round as late).
func throughputRounds() int {
	if n, err := strconv.Atoi(os.Getenv("BENCH_THROUGHPUT_ROUNDS")); err == nil && n > 0 {
		return n
	}
	return 4
}

// throughputBench runs the throughput section's rounds: in each, the raw
// baseline, the baseline with clerksync's search attributes, clerksync's
// signups and the raw baseline beside a PostgreSQL load, in turn, each
// phase on a dev server of its own (clerksync's also on a database of its
// own), started for it and stopped after it. On one server shared by
// every phase, the server's CPU per event grew with the histories the
// phases before had left, by as much as the gap being measured; a fresh
// server starts every phase alike, and the turns even out what the
// machine carries over (PostgreSQL's autovacuum, which each phase waits
// out first, and its caches). env is the worker's and the starter's
// environment but for their servers' addresses and their database. With
// ownCore, each phase runs with the server on a core of its own (onOwnCore).
func throughputBench(b *testing.B, bin string, env []string, db *pgx.Conn, rounds int, ownCore bool) []throughputRound {
	created := time.Now().Truncate(time.Millisecond)
	settings := []string{"raw", "state", "clerk"}
	load, ok := newPGLoad(b)
	if ok {
		settings = append(settings, "loaded")
	} else {
		b.Log("pgbench is not installed: the throughput section runs without its loaded raw baseline")
	}
	var trs []throughputRound
	for round := range rounds {
		var tr throughputRound
		for _, what := range inTurn(round, settings...) {
			onDevServer(b, db, func(server process, address string, tc client.Client) {
				run := func() {
					if what == "clerk" {
						tr.clerk = freshSignups(b, tc, bin, env, ownTables, address, server.pid, fmt.Sprintf("bench%d_", round), created)
					} else {
						tr = rawPhaseOf(b, tc, server.pid, load, what, round, tr)
					}
				}
				if ownCore {
					onOwnCore(b, server.pid, run)
				} else {
					run()
				}
			})
		}
		trs = append(trs, tr)
	}
	return trs
}

// throughputSection measures the throughput section into r: its rounds,
// then ownCoreRounds more with the server on a core of its own, where the
// machine can pin it.
func (r *report) throughputSection(b *testing.B, bin string, env []string, db *pgx.Conn) {
	r.throughput = throughputBench(b, bin, env, db, throughputRounds(), false)
	if canPinServer(b) {
		r.ownCore = throughputBench(b, bin, env, db, ownCoreRounds(), true)
	}
}

// ownCoreRounds is how many rounds the throughput section runs with the
// server on a core of its own: half its other rounds (at least one), which
// vary less from round to round.
func ownCoreRounds() int { return max(throughputRounds()/2, 1) }

// canPinServer reports whether the throughput section can put the server
// on a core of its own: taskset (util-linux) is installed, and the machine
// has a core to spare for everything else.
func canPinServer(b *testing.B) bool {
	if _, err := exec.LookPath("taskset"); err != nil {
		b.Log("taskset is not installed: the throughput section runs without its rounds with the server on a core of its own")
		return false
	}
	if runtime.NumCPU() < 2 {
		b.Log("one core: the throughput section runs without its rounds with the server on a core of its own")
		return false
	}
	return true
}

// onOwnCore runs phase with the dev server (serverPID) alone on the last
// core and this process on the others, and with it every process the phase
// starts (the worker, the starter, pgbench), which inherit its affinity.
// On two shared cores, the server's CPU per event and the rate it takes
// signals at move with whatever else is runnable beside it (the loaded
// raw baseline shows by how much), and clerksync's phases always run its
// worker, its starter and PostgreSQL there; the raw baseline runs nothing
// but the benchmark. With the server on a core of its own, each side's
// figures are the server's work, not the machine's scheduling.
// PostgreSQL, the machine's own service, is left where it is: moving it
// would outlast a run that is stopped.
func onOwnCore(b *testing.B, serverPID int, phase func()) {
	last := runtime.NumCPU() - 1
	taskset(b, strconv.Itoa(last), serverPID)
	taskset(b, fmt.Sprintf("0-%d", last-1), os.Getpid())
	defer taskset(b, fmt.Sprintf("0-%d", last), os.Getpid())
	phase()
}

// taskset sets the CPU affinity of every thread of process pid to cpus
// (a CPU list, as "0-1"); threads started later inherit it.
func taskset(b *testing.B, cpus string, pid int) {
	out, err := exec.Command("taskset", "--all-tasks", "--pid", "--cpu-list", cpus, strconv.Itoa(pid)).CombinedOutput()
	if err != nil {
		b.Fatalf("taskset --cpu-list %s %d: %v\n%s", cpus, pid, err, out)
	}
}

// pgLoadTPS is the rate of the loaded raw baseline's PostgreSQL load, in
// pgbench's transactions (five statements each) a second. It is a fixed
// load, not a copy of what clerksync's phases run beside the server: it
// shows how far the server's CPU per event moves with what else the two
// cores run.
const pgLoadTPS = 400

// pgLoad is pgbench's standard transactions on a database of their own.
type pgLoad struct{ dbURL string }

// newPGLoad makes pgbench's tables in a new database; false when pgbench
// is not installed.
func newPGLoad(b *testing.B) (pgLoad, bool) {
	if _, err := exec.LookPath("pgbench"); err != nil {
		return pgLoad{}, false
	}
	l := pgLoad{dbURL: testenv.Database(b)}
	if out, err := exec.Command("pgbench", "--initialize", "--quiet", "--scale", "2", l.dbURL).CombinedOutput(); err != nil {
		b.Fatalf("pgbench --initialize: %v\n%s", err, out)
	}
	return l, true
}

// start runs the load, at pgLoadTPS from four connections, until the
// returned stop.
func (l pgLoad) start(b *testing.B) (stop func()) {
	cmd := exec.Command("pgbench", "--no-vacuum", "--client", "4", "--rate", strconv.Itoa(pgLoadTPS), "--time", "3600", l.dbURL)
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	return func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}
}

// rawPhaseOf runs the raw baseline's phase what ("raw", "state" or
// "loaded") of round on tc with a raw worker of its own, and returns tr
// with it.
func rawPhaseOf(b *testing.B, tc client.Client, serverPID int, load pgLoad, what string, round int, tr throughputRound) throughputRound {
	w := startRawWorker(b, tc)
	defer w.Stop()
	pids := map[string]int{"server": serverPID}
	switch what {
	case "raw":
		tr.raw = rawPhase(b, tc, pids, fmt.Sprintf("raw%d", round), "TrivialEntity", false)
	case "state":
		tr.withState = rawPhase(b, tc, pids, fmt.Sprintf("state%d", round), "TrivialEntityWithState", true)
	case "loaded":
		stop := load.start(b)
		defer stop()
		tr.loaded = rawPhase(b, tc, pids, fmt.Sprintf("loaded%d", round), "TrivialEntity", false)
	}
	return tr
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
// database holding tables, given the environment that writes them,
// stopped once every signup is done. The phase's CPU times leave out
// their start and their migrations.
func freshSignups(b *testing.B, tc client.Client, bin string, env []string, tables signupTables, address string, serverPID int, prefix string, created time.Time) phase {
	ctx := context.Background()
	dbURL := tables.database(b)
	db, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close(ctx)
	httpAddr, workerAddr := testenv.FreeAddr(b), testenv.FreeAddr(b)
	env = append(slices.Concat(env, tables.env), "DATABASE_URL="+dbURL, "TEMPORAL_ADDRESS="+address,
		"HTTP_ADDR="+httpAddr, "WORKER_HTTP_ADDR="+workerAddr)
	w := startProcess(b, "worker-"+prefix, env, filepath.Join(bin, "worker"))
	defer w.stop()
	s := startProcess(b, "starter-"+prefix, env, filepath.Join(bin, "starter"), "serve")
	defer s.stop()
	waitReady(b, "the worker", workerAddr)
	waitReady(b, "the starter", httpAddr)
	pids := map[string]int{"server": serverPID, "worker": w.pid, "starter": s.pid}
	return signupPhase(b, tc, "http://"+httpAddr+"/webhooks/clerk", db, tables.trials, prefix, created, pids)
}

// onDevServer runs phase on a dev server started for it, once PostgreSQL
// is quiet (db), and stops the server after it.
func onDevServer(b *testing.B, db *pgx.Conn, phase func(server process, address string, tc client.Client)) {
	quiesce(b, db)
	server, address, tc := startDevServer(b)
	defer server.stop()
	defer tc.Close()
	phase(server, address, tc)
}

// BenchmarkThroughput runs the throughput section alone, with the
// report's users and rounds, and prints its table (make bench writes it
// with the rest).
func BenchmarkThroughput(b *testing.B) {
	benchAlone(b, func(r *report, bin string, env []string, db *pgx.Conn) {
		r.throughputSection(b, bin, env, db)
	},
		report.throughputMarkdown)
}

// benchAlone runs sections of the report by measure, on their own, with
// the report's users, and prints them by write.
func benchAlone(b *testing.B, measure func(r *report, bin string, env []string, db *pgx.Conn), write func(r report, p func(string, ...any))) {
	ctx := context.Background()
	for range b.N {
		db, err := pgx.Connect(ctx, testenv.Database(b))
		if err != nil {
			b.Fatal(err)
		}
		r := report{users: users()}
		measure(&r, testenv.Build(b), binaryEnv(clerkfake.Start(b)), db)
		write(r, func(format string, args ...any) { fmt.Printf(format+"\n", args...) })
		db.Close(ctx)
	}
}
