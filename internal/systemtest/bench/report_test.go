package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/workflow"

	"github.com/clerksync/clerksync/ensure/contract"
	"github.com/clerksync/clerksync/internal/clerkevent"
	"github.com/clerksync/clerksync/internal/clerkwebhook"
	"github.com/clerksync/clerksync/internal/config"
	"github.com/clerksync/clerksync/internal/store"
	"github.com/clerksync/clerksync/internal/store/migrations"
	"github.com/clerksync/clerksync/internal/testsupport/clerkfake"
	"github.com/clerksync/clerksync/internal/testsupport/testenv"
	"github.com/clerksync/clerksync/workflows"
)

const (
	secret  = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	senders = 16
)

// users is how many new users each throughput phase sends (BENCH_USERS).
func users() int {
	if n, err := strconv.Atoi(os.Getenv("BENCH_USERS")); err == nil && n > 0 {
		return n
	}
	return 1500
}

// BenchmarkReport runs once (-benchtime 1x) and writes the report to
// BENCH_REPORT (default ../../../docs/benchmarks.md).
func BenchmarkReport(b *testing.B) {
	for range b.N {
		r := run(b)
		path := os.Getenv("BENCH_REPORT")
		if path == "" {
			path = filepath.Join("..", "..", "..", "docs", "benchmarks.md")
		}
		if err := os.WriteFile(path, []byte(r.markdown()), 0o644); err != nil {
			b.Fatal(err)
		}
		b.Logf("wrote %s", path)
	}
}

// report is everything one run measured.
type report struct {
	date, goVersion, postgres, temporalCLI string
	cores, users                           int

	// throughput is the raw baseline's rounds and clerksync's signups',
	// alternating.
	throughput []throughputRound
	// ownCore is the throughput section's rounds again, with the server on
	// a core of its own; none when it cannot be pinned.
	ownCore []throughputRound
	// pollerRounds are clerksync's signups with several
	// WORKER_WORKFLOW_POLLERS values, for choosing its default.
	pollerRounds []settingRound
	// encryptionRounds are signups with and without PAYLOAD_KEYS.
	encryptionRounds []settingRound
	// compressionRounds are signups with each TEMPORAL_GRPC_COMPRESSION.
	compressionRounds []settingRound
	// mappingRounds are signups into clerksync's own tables and into the
	// Prisma example's, mapped; mapped* are the mapped side's events per
	// sync and backfill.
	mappingRounds                          []settingRound
	mappedSignupEvents, mappedUpdateEvents int
	mappedBackfill                         backfillRun
	backfill                               backfillRun
	signupEvents                           int
	updateEvents                           int
	ensureFast, ensureSlow                 latencies
	pool                                   map[int]float64 // connections -> writes/s
	cluster                                clusterRun
	// limited is the backfill at Clerk's latency and rate limit.
	limited rateLimited
	// scale is each size's user base, from the smallest.
	scale []scalePoint
}

// throughputRound is one round of the raw baseline and one of
// clerksync's signups, on the same server.
type throughputRound struct {
	raw, clerk phase
	// withState is the trivial workflow with clerksync's search
	// attributes, set at start and upserted once.
	withState phase
	// loaded is the raw baseline again, beside a PostgreSQL load
	// (pgbench), as clerksync's phases run beside its worker, its starter
	// and PostgreSQL; zero when pgbench is not installed.
	loaded phase
}

// meanRates is the rounds' mean end-to-end rate of the raw baseline and of
// clerksync's signups, n entities a phase.
func meanRates(rounds []throughputRound, n int) (raw, clerk float64) {
	for _, tr := range rounds {
		raw, clerk = raw+tr.raw.rate(n), clerk+tr.clerk.rate(n)
	}
	k := float64(max(len(rounds), 1))
	return raw / k, clerk / k
}

// backfillRun is a backfill of backfillUsers users beside the naive loop.
type backfillRun struct {
	users           int
	elapsed         time.Duration
	events          int
	requests, pages int
	loopElapsed     time.Duration
}

// backfillUsers is the size of the backfill benchmark.
const backfillUsers = 100_000

// benchPayloadKeys is the PAYLOAD_KEYS of the encrypted rounds.
const benchPayloadKeys = "bench:YmVuY2htYXJrIGtleSwgMzIgYnl0ZXMgbG9uZyEhISE="

// phase is one throughput run: n entities sent by senders goroutines.
type phase struct {
	acked, done time.Duration // until the last ack, until the last entity finished
	ack         latencies
	cpu         map[string]time.Duration // process -> CPU time used during the phase
	// machine is the CPU time every process on the machine used during
	// the phase, and the time its cores could have used.
	machine machineCPU
	retried int // deliveries sent again after a 503
	// unhandled counts the workflow tasks that failed with UnhandledCommand
	// (an event arrived as the task completed the run), over every run of
	// the phase's entities; failed counts those failed for any other cause.
	unhandled, failed int
}

func (p phase) rate(n int) float64       { return float64(n) / p.done.Seconds() }
func (p phase) ingestRate(n int) float64 { return float64(n) / p.acked.Seconds() }

type latencies []time.Duration

func (l latencies) pct(p int) time.Duration {
	if len(l) == 0 {
		return 0
	}
	s := slices.Clone(l)
	slices.Sort(s)
	return s[min(len(s)-1, len(s)*p/100)]
}

func run(b *testing.B) report {
	r := report{date: time.Now().UTC().Format("2006-01-02"), goVersion: runtime.Version(), cores: runtime.NumCPU(), users: users()}
	ctx := context.Background()
	r.temporalCLI = filepath.Base(filepath.Dir(os.Getenv("TEMPORAL_CLI")))

	dbURL := testenv.Database(b)
	db, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close(ctx)
	if err := db.QueryRow(ctx, "select current_setting('server_version')").Scan(&r.postgres); err != nil {
		b.Fatal(err)
	}

	// clerksync: the real binaries.
	bin := testenv.Build(b)
	fake := clerkfake.Start(b)
	base := binaryEnv(fake)
	r.throughputSection(b, bin, base, db)
	r.settingsBench(b, bin, base, db)
	created := time.Now().Truncate(time.Millisecond)

	// The events per sync, ensure and the backfills share one dev server;
	// every other section runs on servers of its own.
	server, address, tc := startDevServer(b)
	defer tc.Close()
	httpAddr := testenv.FreeAddr(b)
	env := append(slices.Clone(base), "DATABASE_URL="+dbURL, "TEMPORAL_ADDRESS="+address, "HTTP_ADDR="+httpAddr,
		"WORKER_HTTP_ADDR="+testenv.FreeAddr(b))
	workerProc := startProcess(b, "worker", env, filepath.Join(bin, "worker"))
	starterProc := startProcess(b, "starter", env, filepath.Join(bin, "starter"), "serve")
	waitReady(b, "the starter", httpAddr)
	waitFor(b, "the worker's migrations", func() bool {
		var ok bool
		return db.QueryRow(ctx, `select to_regclass('subscriptions') is not null`).Scan(&ok) == nil && ok
	})
	webhookURL := "http://" + httpAddr + "/webhooks/clerk"
	const probe = "user_probe"
	r.signupEvents, r.updateEvents = eventsPerSync(b, tc, webhookURL, db, `select email from users where clerk_id = $1`, probe, created)

	// Ensure over HTTP, session token verification included.
	ensureURL := "http://" + httpAddr + "/v1/users/ensure"
	token := fake.Token(b, clerkfake.TokenClaims{Subject: probe, Expiry: time.Now().Add(time.Hour)})
	for range 1000 {
		r.ensureFast = append(r.ensureFast, timeEnsure(b, ensureURL, token))
	}
	for i := range 200 {
		id := fmt.Sprintf("user_bench_ensure%04d", i)
		fake.PutUser(clerkfake.User{ID: id, Email: id + "@example.com", CreatedAt: created, UpdatedAt: created})
		r.ensureSlow = append(r.ensureSlow, timeEnsure(b, ensureURL, fake.Token(b, clerkfake.TokenClaims{Subject: id})))
	}

	// The Prisma example's tables, mapped, beside clerksync's own: a worker
	// and a starter of their own on another task queue and database, for
	// its events per sync and its backfill.
	mappedURL := prismaTables.database(b)
	mdb, err := pgx.Connect(ctx, mappedURL)
	if err != nil {
		b.Fatal(err)
	}
	defer mdb.Close(ctx)
	mappedHTTP := testenv.FreeAddr(b)
	mappedEnv := append(slices.Concat(env, prismaTables.env), "DATABASE_URL="+mappedURL,
		"TEMPORAL_TASK_QUEUE="+mappedTaskQueue, "HTTP_ADDR="+mappedHTTP, "WORKER_HTTP_ADDR="+testenv.FreeAddr(b))
	mappedWorker := startProcess(b, "worker-mapped", mappedEnv, filepath.Join(bin, "worker"))
	mappedStarter := startProcess(b, "starter-mapped", mappedEnv, filepath.Join(bin, "starter"), "serve")
	waitReady(b, "the mapped starter", mappedHTTP)
	r.mappedSignupEvents, r.mappedUpdateEvents = eventsPerSync(b, tc, "http://"+mappedHTTP+"/webhooks/clerk", mdb,
		`select email from "User" where "clerkId" = $1`, "user_mapped_probe", created)

	r.backfill, r.mappedBackfill = backfillBench(b, tc, fake, db)

	r.pool = map[int]float64{}
	for _, conns := range []int{4, 16} {
		r.pool[conns] = poolRate(b, conns)
	}

	// The dev server's side stops, so that the rate-limited backfills and
	// the cluster's rounds have the machine to themselves.
	for _, p := range []process{workerProc, starterProc, mappedWorker, mappedStarter, server} {
		p.stop()
	}
	// The rate-limited backfills on a dev server of their own: on the one
	// above, behind every signup's history and beside its idle workers and
	// starters, they ran slower than alone (BenchmarkRateLimit), by as much
	// as the gap to their goal.
	onDevServer(b, db, func(_ process, address string, tc client.Client) {
		r.limited = rateLimitedBench(b, tc, fake, bin, append(slices.Clone(base), "TEMPORAL_ADDRESS="+address))
	})
	quiesce(b, db)
	r.cluster = clusterBench(b, bin, fake)

	// The user bases up to a million last, on a dev server of their own:
	// the gigabytes they write, checkpointed and vacuumed after them,
	// weighed on the cluster's rounds when those came after.
	scaleServer, scaleAddress, scaleClient := startDevServer(b)
	scaleClient.Close()
	r.scale = scaleBench(b, scaleAddress, bin)
	scaleServer.stop()
	for _, pt := range r.scale {
		if pt.limited.users > 0 {
			r.limited.scaled = append(r.limited.scaled, copiedRun{pt.limited, pt.copyRate})
		}
	}
	return r
}

// binaryEnv is what clerksync's worker and starter run with here, against
// the fake Clerk; each run adds its servers' addresses and its database.
func binaryEnv(fake *clerkfake.Server) []string {
	return []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "CLERK_WEBHOOK_SECRET=" + secret,
		"CLERK_SECRET_KEY=" + clerkfake.SecretKey, "CLERK_API_URL=" + fake.URL(),
		"CLERK_API_RPS=0", // the fake has no rate limit to respect
	}
}

// startDevServer starts the Temporal CLI's dev server (TEMPORAL_CLI) as a
// process of our own, so its CPU time can be read, and dials it. A port
// free when it was picked can be taken by another process before the
// server binds it; a server that exits before it serves is started again
// on other ports, twice at most.
func startDevServer(b *testing.B) (process, string, client.Client) {
	const attempts = 3
	for attempt := 1; ; attempt++ {
		server, address := startDevServerProcess(b)
		tc, err := dialDevServer(b, server, address)
		if err == nil {
			return server, address, tc
		}
		if attempt == attempts {
			b.Fatalf("the dev server, started %d times: %v", attempts, err)
		}
		b.Logf("the dev server, started on %s: %v; starting it again on other ports", address, err)
	}
}

// startDevServerProcess starts a dev server on ports of its own and
// returns it and its frontend's address.
func startDevServerProcess(b *testing.B) (process, string) {
	port, uiPort, httpPort, metricsPort := freePort(b), freePort(b), freePort(b), freePort(b) // ports, as the CLI takes them
	server := startProcess(b, "temporal", nil, os.Getenv("TEMPORAL_CLI"), "server", "start-dev", "--ip", "127.0.0.1",
		"--port", port, "--ui-port", uiPort, "--http-port", httpPort, "--metrics-port", metricsPort, "--headless", "--log-level", "error",
		"--search-attribute", "ClerkUserId=Keyword", "--search-attribute", "ClerkSyncState=Keyword",
		"--search-attribute", "ClerkOrganizationId=Keyword",
		// The CLI forces a search-attribute cache refresh on every read, so
		// that attributes created at run time show at once; each request
		// carrying one then reads the cluster's metadata, a cost only
		// workflows with search attributes pay, and no production server.
		// These are created above, before the first read.
		"--dynamic-config-value", "system.forceSearchAttributesCacheRefreshOnRead=false")
	return server, "127.0.0.1:" + port
}

// errExited: the process exited before it served.
var errExited = errors.New("exited before it served")

// dialDevServer dials the dev server at address until it answers, or
// returns errExited once its process has exited.
func dialDevServer(b *testing.B, server process, address string) (client.Client, error) {
	// The raw baselines send as clerksync's binaries do by default.
	compression, err := config.GRPCCompression(config.DefaultTemporalGRPCCompression)
	if err != nil {
		b.Fatal(err)
	}
	var tc client.Client
	exited := false
	waitFor(b, "the dev server", func() bool {
		var err error
		if tc, err = client.Dial(client.Options{HostPort: address, Logger: quietLogger{},
			ConnectionOptions: client.ConnectionOptions{GrpcCompression: compression}}); err == nil {
			return true
		}
		select {
		case <-server.exited:
			exited = true
		default:
		}
		return exited
	})
	if exited {
		return nil, errExited
	}
	return tc, nil
}

func trivialEntity(ctx workflow.Context) error {
	var i int
	workflow.GetSignalChannel(ctx, "event").Receive(ctx, &i)
	return nil
}

// trivialEntityWithState is trivialEntity with what clerksync's entity
// workflows add for operators: started with ClerkUserId and
// ClerkSyncState set, it upserts ClerkSyncState once before it completes.
func trivialEntityWithState(ctx workflow.Context) error {
	var i int
	workflow.GetSignalChannel(ctx, "event").Receive(ctx, &i)
	return workflow.UpsertTypedSearchAttributes(ctx, contract.ClerkSyncStateKey.ValueSet(contract.SyncStateSynced))
}

// rawPhase signals-with-start users() workflows of type workflowType on the
// raw task queue, IDs prefix/<i>, until they complete, reading the CPU
// time of the server's processes (server); withState starts each with the
// search attributes clerksync's starter sets.
func rawPhase(b *testing.B, tc client.Client, server map[string]int, prefix, workflowType string, withState bool) phase {
	ctx := context.Background()
	query := fmt.Sprintf("TaskQueue = 'raw' AND WorkflowType = '%s'", workflowType)
	before := completed(b, tc, query)
	return measure(b, server, func(i int) error {
		id := fmt.Sprintf("%s/%d", prefix, i)
		opts := client.StartWorkflowOptions{ID: id, TaskQueue: "raw"}
		if withState {
			opts = contract.User.StartOptions(id, "raw")
			opts.ID = id
		}
		_, err := tc.SignalWithStartWorkflow(ctx, id, "event", i, opts, workflowType)
		return err
	}, func() int { return completed(b, tc, query) - before })
}

// inTurn is the order round runs settings in: as given in even rounds,
// reversed in odd ones. The dev server's CPU per event grows with the
// histories it holds, so a setting that always ran first would always run
// on the emptier server; over two rounds, each runs as often first as
// last ("alternating" in the report).
func inTurn[T any](round int, settings ...T) []T {
	s := slices.Clone(settings)
	if round%2 == 1 {
		slices.Reverse(s)
	}
	return s
}

// measure sends users() entities with send from senders goroutines, then
// waits until finished() counts them all. It times every send (the ack),
// and reads the CPU time the named processes used.
func measure(b *testing.B, pids map[string]int, send func(i int) error, finished func() int) phase {
	n := users()
	before := map[string]time.Duration{}
	for name, pid := range pids {
		before[name] = cpuTime(b, pid)
	}
	p := phase{cpu: map[string]time.Duration{}}
	machineBefore := readMachineCPU(b)
	retriedBefore := retried.Load()
	var mu sync.Mutex
	next := make(chan int)
	var wg sync.WaitGroup
	start := time.Now()
	for range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				t0 := time.Now()
				if err := send(i); err != nil {
					b.Error(err)
					continue // the rest are still drained, for the failure below
				}
				mu.Lock()
				p.ack = append(p.ack, time.Since(t0))
				mu.Unlock()
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	if b.Failed() {
		b.FailNow() // a send failed: what was sent will never all finish
	}
	p.acked = time.Since(start)
	waitFor(b, "every entity", func() bool { return finished() >= n })
	p.done = time.Since(start)
	p.retried = int(retried.Load() - retriedBefore)
	for name, pid := range pids {
		p.cpu[name] = cpuTime(b, pid) - before[name]
	}
	p.machine = readMachineCPU(b).since(machineBefore)
	return p
}

// signupPhase sends users() signups (user.created, created at created) to
// the starter's webhook URL and waits until the trials query, run on db,
// counts every one done. Every delivery is built and signed before the
// clock starts: Svix does that on its own machines, and on this one its
// CPU would be taken from the starter, the worker and the server.
func signupPhase(b *testing.B, tc client.Client, url string, db *pgx.Conn, trials, prefix string, created time.Time, pids map[string]int) phase {
	ctx := context.Background()
	count := func() int {
		var n int
		if err := db.QueryRow(ctx, trials).Scan(&n); err != nil {
			b.Fatal(err)
		}
		return n
	}
	deliveries := make([]delivery, users())
	for i := range deliveries {
		id := fmt.Sprintf("user_%s%05d", prefix, i)
		body, err := clerkwebhook.UserEvent("user.created", clerkwebhook.UserFields{ClerkID: id, Email: id + "@example.com", CreatedAt: created, UpdatedAt: created})
		if err != nil {
			b.Fatal(err)
		}
		if deliveries[i], err = signed(url, "msg_"+id, body); err != nil {
			b.Fatal(err)
		}
	}
	before := count()
	ph := measure(b, pids, func(i int) error { return deliveries[i].post(ctx) }, func() int { return count() - before })
	ph.unhandled, ph.failed = failedTasks(b, tc, fmt.Sprintf("ClerkUserId STARTS_WITH 'user_%s'", prefix))
	return ph
}

// failedTasks reads the history of every closed run query matches and
// counts its failed workflow tasks: those failed with UnhandledCommand,
// and those failed otherwise.
func failedTasks(b *testing.B, tc client.Client, query string) (unhandled, other int) {
	ctx := context.Background()
	var token []byte
	for {
		resp, err := tc.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
			Query: query + " AND ExecutionStatus != 'Running'", NextPageToken: token, PageSize: 1000,
		})
		if err != nil {
			b.Fatal(err)
		}
		for _, e := range resp.GetExecutions() {
			it := tc.GetWorkflowHistory(ctx, e.GetExecution().GetWorkflowId(), e.GetExecution().GetRunId(), false, 0)
			for it.HasNext() {
				event, err := it.Next()
				if err != nil {
					b.Fatal(err)
				}
				switch f := event.GetWorkflowTaskFailedEventAttributes(); {
				case f == nil:
				case f.GetCause() == enumspb.WORKFLOW_TASK_FAILED_CAUSE_UNHANDLED_COMMAND:
					unhandled++
				default:
					other++
				}
			}
		}
		if token = resp.GetNextPageToken(); len(token) == 0 {
			return unhandled, other
		}
	}
}

// retried counts the deliveries sent again after a 503, as Svix would
// (measure reports each phase's).
var retried atomic.Int64

// webhookClient keeps a connection to the starter open for every sender,
// as Svix keeps its connections to an endpoint; http.DefaultClient keeps
// two idle, so most of 16 senders' deliveries opened a connection of
// their own.
var webhookClient = &http.Client{Transport: func() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = senders
	return t
}()}

// delivery is a signed webhook, ready to post.
type delivery struct {
	url    string
	body   []byte
	header http.Header
}

// signed signs body as Svix message msgID, now, for url.
func signed(url, msgID string, body []byte) (delivery, error) {
	h, err := clerkwebhook.Sign(secret, msgID, time.Now(), body)
	if err != nil {
		return delivery{}, fmt.Errorf("sign %s: %w", msgID, err)
	}
	return delivery{url: url, body: body, header: h}, nil
}

// post signs body as Svix message msgID, now, and delivers it to url.
func post(ctx context.Context, url, msgID string, body []byte) error {
	d, err := signed(url, msgID, body)
	if err != nil {
		return err
	}
	return d.post(ctx)
}

// post delivers d, again after a second while the starter answers 503
// (Temporal did not take it in time), up to 10 tries.
func (d delivery) post(ctx context.Context) error {
	for try := 1; ; try++ {
		status, err := d.postOnce(ctx)
		switch {
		case err != nil:
			return err
		case status == http.StatusOK:
			return nil
		case status != http.StatusServiceUnavailable || try == 10:
			return fmt.Errorf("webhook %s: %d %s (try %d)", d.header.Get("svix-id"), status, http.StatusText(status), try)
		}
		retried.Add(1)
		time.Sleep(time.Second)
	}
}

func (d delivery) postOnce(ctx context.Context) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.url, bytes.NewReader(d.body))
	if err != nil {
		return 0, err
	}
	req.Header = d.header.Clone()
	resp, err := webhookClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, nil
}

func timeEnsure(b *testing.B, url, token string) time.Duration {
	req, err := http.NewRequest(http.MethodPost, url, nil)
	if err != nil {
		b.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	t0 := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b.Fatalf("ensure: %s", resp.Status)
	}
	return time.Since(t0)
}

func completed(b *testing.B, tc client.Client, query string) int {
	n, err := tc.CountWorkflow(context.Background(), &workflowservice.CountWorkflowExecutionsRequest{
		Query: query + " AND ExecutionStatus = 'Completed'",
	})
	if err != nil {
		b.Fatal(err)
	}
	return int(n.GetCount())
}

// eventsPerSync signs up user probe through the starter at webhookURL,
// then updates its email, and counts the history events each sync added
// over every execution that carries its ClerkUserId. email reads the
// user's email from db, by Clerk ID.
func eventsPerSync(b *testing.B, tc client.Client, webhookURL string, db *pgx.Conn, email, probe string, created time.Time) (signup, update int) {
	ctx := context.Background()
	runs := fmt.Sprintf("ClerkUserId = '%s'", probe)
	send := func(eventType, msgID, address string, updated time.Time) {
		body, err := clerkwebhook.UserEvent(eventType, clerkwebhook.UserFields{ClerkID: probe, Email: address, CreatedAt: created, UpdatedAt: updated})
		if err != nil {
			b.Fatal(err)
		}
		if err := post(ctx, webhookURL, msgID, body); err != nil {
			b.Fatal(err)
		}
	}
	send("user.created", "msg_"+probe+"_signup", probe+"@example.com", created)
	waitFor(b, "the signup of "+probe, func() bool { return completed(b, tc, runs) == 1 })
	signup = historyEvents(b, tc, probe)
	send("user.updated", "msg_"+probe+"_update", "new@example.com", created.Add(time.Second))
	waitFor(b, "the update of "+probe, func() bool {
		var got string
		return db.QueryRow(ctx, email, probe).Scan(&got) == nil && got == "new@example.com" && completed(b, tc, runs) == 2
	})
	return signup, historyEvents(b, tc, probe) - signup
}

// historyEvents counts the history events of every execution that
// carries clerkID as its ClerkUserId.
func historyEvents(b *testing.B, tc client.Client, clerkID string) int {
	resp, err := tc.ListWorkflow(context.Background(), &workflowservice.ListWorkflowExecutionsRequest{
		Query: fmt.Sprintf("ClerkUserId = '%s'", clerkID),
	})
	if err != nil {
		b.Fatal(err)
	}
	total := 0
	for _, e := range resp.GetExecutions() {
		it := tc.GetWorkflowHistory(context.Background(), e.GetExecution().GetWorkflowId(), e.GetExecution().GetRunId(), false, 0)
		for it.HasNext() {
			if _, err := it.Next(); err != nil {
				b.Fatal(err)
			}
			total++
		}
	}
	return total
}

// poolRate drains 10,000 new-user upserts from 64 writers through a pool of
// conns connections.
func poolRate(b *testing.B, conns int) float64 {
	ctx := context.Background()
	st, err := store.Open(ctx, testenv.Database(b)+"?pool_max_conns="+strconv.Itoa(conns), store.Layout{})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	if err := migrations.Apply(ctx, st); err != nil {
		b.Fatal(err)
	}
	const writes, writers = 10_000, 64
	next := make(chan int)
	var wg sync.WaitGroup
	start := time.Now()
	for range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				u := workflowsUser(fmt.Sprintf("user_pool_%d", i))
				if _, err := st.UpsertUser(ctx, u, config.DefaultTrialPeriod); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	for i := range writes {
		next <- i
	}
	close(next)
	wg.Wait()
	return writes / time.Since(start).Seconds()
}

// userHZ is the unit of /proc's CPU times: ticks a second (USER_HZ on Linux).
const userHZ = 100

// cpuTime reads a process's user and system CPU time from /proc.
func cpuTime(b *testing.B, pid int) time.Duration {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	// Fields after the command name, which is in parentheses and may hold spaces.
	fields := strings.Fields(string(raw[bytes.LastIndexByte(raw, ')')+2:]))
	utime, _ := strconv.ParseInt(fields[11], 10, 64)
	stime, _ := strconv.ParseInt(fields[12], 10, 64)
	return time.Duration(utime+stime) * time.Second / userHZ
}

// machineCPU is CPU time summed over the machine's cores (/proc/stat):
// busy, what every process and the kernel used; total, all of the cores'
// time (busy, idle, and any the hypervisor took: steal).
type machineCPU struct{ busy, total time.Duration }

func (m machineCPU) since(before machineCPU) machineCPU {
	return machineCPU{busy: m.busy - before.busy, total: m.total - before.total}
}

func (m machineCPU) plus(o machineCPU) machineCPU {
	return machineCPU{busy: m.busy + o.busy, total: m.total + o.total}
}

// busyShare is the share of the cores' time that was used.
func (m machineCPU) busyShare() float64 {
	if m.total <= 0 {
		return 0
	}
	return m.busy.Seconds() / m.total.Seconds()
}

// readMachineCPU reads the machine's CPU time so far from /proc/stat's
// first line: user, nice, system, idle, iowait, irq, softirq and steal, in
// USER_HZ ticks (guest time is counted in user already).
func readMachineCPU(b *testing.B) machineCPU {
	raw, err := os.ReadFile("/proc/stat")
	if err != nil {
		b.Fatal(err)
	}
	line, _, _ := strings.Cut(string(raw), "\n")
	fields := strings.Fields(line)
	if len(fields) < 9 || fields[0] != "cpu" {
		b.Fatalf("/proc/stat starts %q, not the cpu line", line)
	}
	var ticks [8]int64
	for i := range ticks {
		if ticks[i], err = strconv.ParseInt(fields[i+1], 10, 64); err != nil {
			b.Fatalf("/proc/stat's cpu line %q: %v", line, err)
		}
	}
	user, nice, system, idle, iowait, irq, softirq, steal := ticks[0], ticks[1], ticks[2], ticks[3], ticks[4], ticks[5], ticks[6], ticks[7]
	busy := user + nice + system + irq + softirq
	return machineCPU{busy: time.Duration(busy) * time.Second / userHZ, total: time.Duration(busy+idle+iowait+steal) * time.Second / userHZ}
}

// process is a child process the report measures.
type process struct {
	pid  int
	stop func()
	// exited is closed once the process has exited.
	exited <-chan struct{}
}

func startProcess(b *testing.B, name string, env []string, bin string, args ...string) process {
	cmd := exec.Command(bin, args...)
	if env != nil {
		cmd.Env = env
	}
	logFile, err := os.Create(filepath.Join(b.TempDir(), name+".log"))
	if err != nil {
		b.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			_ = cmd.Process.Signal(os.Interrupt)
			select {
			case <-exited:
			case <-time.After(20 * time.Second):
				_ = cmd.Process.Kill()
				<-exited
			}
			logFile.Close()
		})
	}
	b.Cleanup(func() {
		stop()
		if b.Failed() {
			raw, _ := os.ReadFile(logFile.Name())
			b.Logf("%s log (last 2 KiB):\n%s", name, raw[max(0, len(raw)-2048):])
		}
	})
	return process{pid: cmd.Process.Pid, stop: stop, exited: exited}
}

// waitReady waits until the worker or starter serving on addr answers
// /readyz 200: migrated, connected and polling.
func waitReady(b *testing.B, what, addr string) {
	waitFor(b, what, func() bool {
		resp, err := http.Get("http://" + addr + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

func waitFor(b *testing.B, what string, ok func() bool) {
	deadline := time.Now().Add(5 * time.Minute)
	for !ok() {
		if time.Now().After(deadline) {
			b.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func freePort(b *testing.B) string {
	_, port, _ := strings.Cut(testenv.FreeAddr(b), ":")
	return port
}

// backfillBench lists backfillUsers users from the fake Clerk through
// BackfillWorkflow (the worker's rate limit lifted), into clerksync's own
// tables and then into the Prisma example's, mapped; then it writes the
// same users with a loop of single-row upserts into a database of its own,
// as a one-shot script would. Each backfill starts once autovacuum has
// finished with the phases before it (db reads the server's activity).
func backfillBench(b *testing.B, tc client.Client, fake *clerkfake.Server, db *pgx.Conn) (own, mapped backfillRun) {
	ctx := context.Background()
	users := backfillUserBase()
	fake.PutUsers(users...)
	if err := fake.Warm(); err != nil {
		b.Fatal(err)
	}
	quiesce(b, db)
	own = timeBackfill(b, tc, "bench", config.DefaultTaskQueue)
	quiesce(b, db)
	mapped = timeBackfill(b, tc, "bench-mapped", mappedTaskQueue)

	st, err := store.Open(ctx, testenv.Database(b), store.Layout{})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	if err := migrations.Apply(ctx, st); err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	for _, u := range users {
		cu := clerkevent.User{ClerkID: u.ID, Email: &u.Email, FirstName: &u.FirstName, ClerkCreatedAt: u.CreatedAt, ClerkUpdatedAt: u.UpdatedAt}
		if _, err := st.UpsertUser(ctx, cu, config.DefaultTrialPeriod); err != nil {
			b.Fatal(err)
		}
	}
	own.loopElapsed = time.Since(start)
	return own, mapped
}

// backfillUserBase is the backfill's users: backfillUsers of them, whom
// Clerk created 30 days ago, 10 ms apart (an import).
func backfillUserBase() []clerkfake.User {
	created := time.Now().Add(-30 * 24 * time.Hour).Truncate(time.Millisecond)
	users := make([]clerkfake.User, backfillUsers)
	for i := range users {
		c := created.Add(time.Duration(i) * 10 * time.Millisecond)
		users[i] = clerkfake.User{ID: fmt.Sprintf("user_backfill%06d", i), Email: fmt.Sprintf("bf%d@example.com", i), FirstName: "Backfill", CreatedAt: c, UpdatedAt: c}
	}
	return users
}

// quiesce waits until no autovacuum worker has run on the server for a
// second: a vacuum of an earlier phase's writes, running beside a timed
// phase, is not that phase's cost.
func quiesce(b *testing.B, db *pgx.Conn) {
	quiet := time.Time{}
	waitFor(b, "autovacuum to finish", func() bool {
		var workers int
		if err := db.QueryRow(context.Background(), `select count(*) from pg_stat_activity where backend_type = 'autovacuum worker'`).Scan(&workers); err != nil {
			b.Fatal(err)
		}
		switch {
		case workers > 0:
			quiet = time.Time{}
		case quiet.IsZero():
			quiet = time.Now()
		}
		return !quiet.IsZero() && time.Since(quiet) >= time.Second
	})
}

// mappedTaskQueue is the task queue of the mapped worker and starter.
const mappedTaskQueue = "clerksync-mapped"

// timeBackfill runs BackfillWorkflow name on a task queue, every Clerk user
// of the fake, and counts its history events.
func timeBackfill(b *testing.B, tc client.Client, name, taskQueue string) backfillRun {
	ctx := context.Background()
	start := time.Now()
	run, err := tc.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: workflows.BackfillWorkflowID(taskQueue, name), TaskQueue: taskQueue},
		workflows.BackfillWorkflow, workflows.BackfillInput{})
	if err != nil {
		b.Fatal(err)
	}
	var p workflows.BackfillProgress
	if err := run.Get(ctx, &p); err != nil {
		b.Fatal(err)
	}
	res := backfillRun{users: p.Stats.Seen, elapsed: time.Since(start), requests: p.Stats.Requests, pages: p.Stats.Pages}
	resp, err := tc.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Query: fmt.Sprintf("WorkflowId = '%s'", workflows.BackfillWorkflowID(taskQueue, name))})
	if err != nil {
		b.Fatal(err)
	}
	for _, e := range resp.GetExecutions() {
		it := tc.GetWorkflowHistory(ctx, e.GetExecution().GetWorkflowId(), e.GetExecution().GetRunId(), false, 0)
		for it.HasNext() {
			if _, err := it.Next(); err != nil {
				b.Fatal(err)
			}
			res.events++
		}
	}
	return res
}
