package systemtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/clerksync/clerksync/ensure/contract"
	"github.com/clerksync/clerksync/internal/clerkwebhook"
	"github.com/clerksync/clerksync/internal/config"
	"github.com/clerksync/clerksync/internal/mapping"
	"github.com/clerksync/clerksync/internal/store"
	"github.com/clerksync/clerksync/internal/store/migrations"
	"github.com/clerksync/clerksync/internal/syncworker"
	"github.com/clerksync/clerksync/internal/telemetry"
	"github.com/clerksync/clerksync/internal/testsupport/clerkfake"
	"github.com/clerksync/clerksync/internal/testsupport/openapitest"
	"github.com/clerksync/clerksync/internal/testsupport/testenv"
	"github.com/clerksync/clerksync/starter/service"
	"github.com/clerksync/clerksync/workflows"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

// authorizedParty is the product's origin, the only azp the test system accepts.
const authorizedParty = "https://app.example.com"

// The webhook signing secret of the test system, and another one.
const (
	testSecret  = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	otherSecret = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"
)

// system is the whole of clerksync in one test: the real HTTP handler, a
// worker on a task queue of its own, a Temporal dev server and PostgreSQL.
type system struct {
	url         string
	stopWorker  func() // stops the worker until startWorker
	startWorker func()
	clerk       *clerkfake.Server
	store       *store.Store
	temporal    client.Client
	db          *pgxpool.Pool
	taskQueue   string
	secret      string
	trialPeriod time.Duration
	dbURL       string
	// remapWorker restarts the worker on another store (remap).
	remapWorker func(*store.Store)
	// logs holds every line the starter, the worker and the SDK wrote.
	logs *testenv.LogBuffer

	mu sync.Mutex
	// names are the names the test sent in webhooks: never in a log.
	names []string
}

// startSystem runs the system on clerksync's own tables; options adjust
// its configuration.
func startSystem(t *testing.T, options ...func(*config.Config)) *system {
	t.Helper()
	return startSystemOn(t, nil, options...)
}

// startSystemOn runs the system on example's tables, mapped by its
// clerksync.yaml, in a database whose time zone is not UTC; a nil example
// is clerksync's own tables.
func startSystemOn(t *testing.T, example *testenv.Example, options ...func(*config.Config)) *system {
	t.Helper()
	// Every line, at debug level, is checked once everything has stopped
	// (this cleanup runs last).
	logs := &testenv.LogBuffer{}
	logger := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	var s *system
	t.Cleanup(func() {
		if s != nil {
			s.checkLogs(t)
		}
	})
	var (
		st    *store.Store
		dbURL string
	)
	if example != nil {
		st, dbURL = example.Store(t, "America/New_York")
	} else {
		st, dbURL = testenv.Store(t)
	}
	tc, err := client.NewClientFromExisting(testenv.Temporal(t), client.Options{Namespace: "default", Logger: telemetry.TemporalLogger(logger)})
	require.NoError(t, err)
	t.Cleanup(tc.Close)
	taskQueue := "e2e-" + strings.ToLower(t.Name())
	fake := clerkfake.Start(t)
	cfg := config.Config{
		TaskQueue: taskQueue, WebhookMaxBytes: 1 << 20,
		EnsureTimeout: 5 * time.Second, ClerkAPIURL: fake.URL(), ClerkSecretKey: clerkfake.SecretKey,
		AuthorizedParties: []string{authorizedParty},
		TrialPeriod:       14 * 24 * time.Hour, TrialExpiryInterval: time.Second,
	}
	if example != nil {
		cfg.MappingFile = example.MappingFile()
	}
	for _, o := range options {
		o(&cfg)
	}
	taskQueue = cfg.TaskQueue // an option may put the system on a task queue of its own
	require.NoError(t, syncworker.EnsureTrialExpirySchedule(context.Background(), tc, taskQueue, cfg.TrialExpiryInterval))
	t.Cleanup(func() {
		_ = tc.ScheduleClient().GetHandle(context.Background(), workflows.TrialExpiryScheduleID(taskQueue)).Delete(context.Background())
	})
	if cfg.EraseDeletedHistories {
		require.NoError(t, syncworker.EnsureErasureSchedule(context.Background(), tc, taskQueue, cfg.ErasureInterval))
		t.Cleanup(func() {
			_ = tc.ScheduleClient().GetHandle(context.Background(), workflows.ErasureScheduleID(taskQueue)).Delete(context.Background())
		})
	}
	workerOptions := syncworker.Options{
		TaskQueue: taskQueue, Store: st, Clerk: cfg.ClerkClient(), TrialPeriod: cfg.TrialPeriod,
		KeepHistories: !cfg.EraseDeletedHistories,
	}
	var w worker.Worker
	startWorker := func() {
		w = syncworker.New(tc, workerOptions) // its store as remap last set it
		require.NoError(t, w.Start())
	}
	stopWorker := func() { w.Stop() }
	startWorker()
	t.Cleanup(func() { w.Stop() })

	verifier, err := service.NewSignatureVerifier(testSecret)
	require.NoError(t, err)
	mux, err := service.NewMux(cfg, verifier, service.Connections{Store: st, Temporal: tc, Namespace: "default"}, logger)
	require.NoError(t, err)
	srv := httptest.NewServer(openapitest.Check(t, mux))
	t.Cleanup(srv.Close)

	// A pool: a test's parallel subtests read the tables at once, which
	// one connection does not allow.
	db, err := pgxpool.New(context.Background(), dbURL)
	require.NoError(t, err)
	t.Cleanup(db.Close)
	s = &system{
		url: srv.URL, stopWorker: stopWorker, startWorker: startWorker,
		clerk: fake, store: st, temporal: tc, db: db, taskQueue: taskQueue, secret: testSecret, trialPeriod: cfg.TrialPeriod,
		logs: logs, dbURL: dbURL,
	}
	s.remapWorker = func(st *store.Store) {
		w.Stop()
		workerOptions.Store = st
		startWorker()
	}
	return s
}

// remap restarts the worker under another mapping of the same tables (an
// operator's edited CLERKSYNC_MAPPING), its bookkeeping migrated and the
// mapping proved as a worker's start does. The starter keeps its own.
func (s *system) remap(t *testing.T, doc string) {
	t.Helper()
	m, err := mapping.Parse([]byte(doc))
	require.NoError(t, err)
	ctx := context.Background()
	st, err := store.Open(ctx, s.dbURL, store.Layout{Mapping: m})
	require.NoError(t, err)
	t.Cleanup(st.Close)
	require.NoError(t, migrations.Apply(ctx, st))
	s.remapWorker(st)
}

// checkLogs fails the test if a log line holds a secret, a session token,
// an email address or a name the test sent.
func (s *system) checkLogs(t *testing.T) {
	t.Helper()
	forbidden := testenv.Forbidden{
		Literals: []string{testSecret, otherSecret, clerkfake.SecretKey},
		Patterns: []*regexp.Regexp{testenv.ScenarioNames},
	}
	s.mu.Lock()
	forbidden.Literals = append(forbidden.Literals, s.names...)
	s.mu.Unlock()
	for _, u := range s.clerk.Users() {
		forbidden.Literals = append(forbidden.Literals, personalName(u.FirstName), personalName(u.LastName))
	}
	testenv.CheckLogs(t, t.Name(), s.logs.Bytes(), forbidden)
}

// personalName is name, or "" when it is too short to tell from the words of
// a log line.
func personalName(name string) string {
	if len(name) < 4 {
		return ""
	}
	return name
}

// noteNames records the names in a webhook body, for checkLogs.
func (s *system) noteNames(body []byte) {
	var ev struct {
		Data struct {
			FirstName *string `json:"first_name"`
			LastName  *string `json:"last_name"`
			Username  *string `json:"username"`
		} `json:"data"`
	}
	if json.Unmarshal(body, &ev) != nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, n := range []*string{ev.Data.FirstName, ev.Data.LastName, ev.Data.Username} {
		if n != nil && personalName(*n) != "" {
			s.names = append(s.names, *n)
		}
	}
}

// post sends body signed now, as Svix would, with the given message ID.
func (s *system) post(t *testing.T, msgID string, body []byte) int {
	t.Helper()
	return s.postSigned(t, s.secret, time.Now(), msgID, body)
}

// postSigned sends body signed with secret at the given time.
func (s *system) postSigned(t *testing.T, secret string, at time.Time, msgID string, body []byte) int {
	t.Helper()
	s.noteNames(body)
	h, err := clerkwebhook.Sign(secret, msgID, at, body)
	require.NoError(t, err)
	req, err := http.NewRequest(http.MethodPost, s.url+"/webhooks/clerk", bytes.NewReader(body))
	require.NoError(t, err)
	req.Header = h
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

// count runs a count(*) query against the system's database.
func (s *system) count(t *testing.T, sql string) int {
	t.Helper()
	var n int
	require.NoError(t, s.db.QueryRow(context.Background(), sql).Scan(&n))
	return n
}

// TestEndToEnd_ShuffledDuplicatedConcurrentWebhooksConverge is the walking
// skeleton's promise: 200 users, each created, updated several times and
// some deleted, delivered signed, shuffled, 20% twice, by 8 concurrent
// senders. Once idle, the table holds exactly the newest version of every
// live user, and every deleted user is absent and tombstoned.
func TestEndToEnd_ShuffledDuplicatedConcurrentWebhooksConverge(t *testing.T) {
	t.Parallel()
	s := startSystem(t)
	seed := uint64(time.Now().UnixNano())
	sc := testenv.NewScenario(t, testenv.ScenarioOptions{Users: 200, DuplicateRate: 0.2, Seed: seed, Prefix: "e2e"})
	t.Logf("seed %d: %d deliveries, %d live and %d deleted users", seed, len(sc.Deliveries), len(sc.Live), len(sc.Deleted))

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	stats, err := testenv.Deliver(ctx, s.url+"/webhooks/clerk", s.secret, sc.Deliveries, 8, 0)
	require.NoError(t, err)
	require.Zero(t, stats.Refused, "a delivery is acknowledged, or deferred (503) while Temporal is slow on a loaded machine, never refused")

	var last testenv.Divergence
	require.Eventually(t, func() bool {
		last, err = sc.Compare(ctx, s.db)
		require.NoError(t, err)
		return last.Zero()
	}, 2*time.Minute, 250*time.Millisecond, "table never converged: %v", &last)

	// Idle: every workflow completes, and nothing late changes the table.
	require.Eventually(t, func() bool {
		n, err := s.temporal.CountWorkflow(ctx, &workflowservice.CountWorkflowExecutionsRequest{
			Query: fmt.Sprintf("WorkflowType = 'UserWorkflow' AND TaskQueue = '%s' AND ExecutionStatus = 'Running'", s.taskQueue),
		})
		return err == nil && n.GetCount() == 0
	}, time.Minute, 500*time.Millisecond, "user workflows did not complete after the idle timeout")
	last, err = sc.Compare(ctx, s.db)
	require.NoError(t, err)
	require.True(t, last.Zero(), "after idle: %v", last)

	// An operator finds a user's history by Clerk ID and sync state.
	require.Eventually(t, func() bool {
		resp, err := s.temporal.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
			Query: "ClerkUserId = 'user_e2e0002' AND ClerkSyncState = 'synced'",
		})
		return err == nil && len(resp.GetExecutions()) > 0
	}, 30*time.Second, 250*time.Millisecond)
}

// TestEndToEnd_BadInputStartsNoWorkflow sends each class of bad input through
// the real stack: each gets its status and no workflow exists afterwards.
func TestEndToEnd_BadInputStartsNoWorkflow(t *testing.T) {
	t.Parallel()
	s := startSystem(t)
	now := time.Now()
	event := func(id string) []byte {
		b, err := clerkwebhook.UserEvent("user.created", clerkwebhook.UserFields{ClerkID: id, CreatedAt: now, UpdatedAt: now})
		require.NoError(t, err)
		return b
	}
	send := func(secret string, at time.Time, body []byte) int {
		return s.postSigned(t, secret, at, "msg_bad", body)
	}
	big := append([]byte(`{"type":"user.created","data":{"id":"user_bad_big","pad":"`), bytes.Repeat([]byte("x"), 2<<20)...)
	for _, tc := range []struct {
		name, clerkID string
		status        int
	}{
		{"wrong secret", "user_bad_sig", send(otherSecret, now, event("user_bad_sig"))},
		{"stale timestamp", "user_bad_stale", send(testSecret, now.Add(-10*time.Minute), event("user_bad_stale"))},
		{"malformed JSON", "user_bad_json", send(testSecret, now, []byte(`{"type":"user.created","data":{"id":"user_bad_json"`))},
		{"too large", "user_bad_big", send(testSecret, now, append(big, `"}}`...))},
		{"unhandled type", "user_bad_type", send(testSecret, now, []byte(`{"type":"email.created","data":{"id":"user_bad_type"}}`))},
	} {
		want := map[string]int{
			"wrong secret": 401, "stale timestamp": 401, "malformed JSON": 400, "too large": 413, "unhandled type": 200,
		}[tc.name]
		require.Equal(t, want, tc.status, tc.name)
		_, err := s.temporal.DescribeWorkflowExecution(context.Background(), contract.User.WorkflowID(s.taskQueue, tc.clerkID), "")
		var notFound *serviceerror.NotFound
		require.True(t, errors.As(err, &notFound), "%s: workflow exists (err %v)", tc.name, err)
	}
	require.Equal(t, http.StatusBadRequest,
		send(testSecret, now, []byte(`{"type":"user.updated","data":{"first_name":"no id","updated_at":1}}`)))
	n, err := s.temporal.CountWorkflow(context.Background(), &workflowservice.CountWorkflowExecutionsRequest{
		// The trial-expiry Schedule's runs share the task queue.
		Query: fmt.Sprintf("TaskQueue = '%s' AND WorkflowType != 'TrialExpiryWorkflow'", s.taskQueue),
	})
	require.NoError(t, err)
	require.Zero(t, n.GetCount(), "no input above starts a workflow")
	require.Zero(t, s.count(t, "select count(*) from users"))
	require.Zero(t, s.count(t, "select count(*) from clerksync.user_tombstones"))
}

// TestReadyz_SaysWhichEndpointsCanServe: the webhook endpoint needs only
// Temporal with clerksync's search attributes, so a PostgreSQL outage leaves
// the starter ready (ensure is not); a namespace without the search
// attributes, where every signal-with-start fails, is not ready.
func TestReadyz_SaysWhichEndpointsCanServe(t *testing.T) {
	t.Parallel()
	s := startSystem(t)
	code, report := readyz(t, s.url)
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, service.ReadinessReport{Webhooks: "ok", Ensure: "ok", Checks: map[string]string{
		"postgres": "ok", "mapping": "ok", "temporal": "ok", "search_attributes": "ok", "clerk": "ok",
	}}, report)

	verifier, err := service.NewSignatureVerifier(testSecret)
	require.NoError(t, err)
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	serveWith := func(conns service.Connections, cfg config.Config) string {
		mux, err := service.NewMux(cfg, verifier, conns, logger)
		require.NoError(t, err)
		srv := httptest.NewServer(openapitest.Check(t, mux))
		t.Cleanup(srv.Close)
		return srv.URL
	}

	t.Run("postgres down", func(t *testing.T) {
		down, err := store.Open(context.Background(), "postgres://127.0.0.1:1/nowhere?connect_timeout=1", store.Layout{})
		require.NoError(t, err)
		t.Cleanup(down.Close)
		url := serveWith(service.Connections{Store: down, Temporal: s.temporal, Namespace: "default"},
			config.Config{TaskQueue: s.taskQueue, WebhookMaxBytes: 1 << 20, EnsureTimeout: time.Second})
		code, report := readyz(t, url)
		require.Equal(t, http.StatusOK, code, "webhooks can still be taken")
		require.Equal(t, "ok", report.Webhooks)
		require.Equal(t, "not ready: postgres, mapping, clerk", report.Ensure)
		// What /readyz answered is a series an alert can watch.
		metrics := scrape(t, url+"/metrics")
		require.Len(t, metrics.series("clerksync_ready"), 2)
		require.Equal(t, 1.0, metrics.value(t, "clerksync_ready", map[string]string{"endpoint": "webhooks"}))
		require.Equal(t, 0.0, metrics.value(t, "clerksync_ready", map[string]string{"endpoint": "ensure"}))
	})

	t.Run("a mapping the database cannot take", func(t *testing.T) {
		doc, err := os.ReadFile(testenv.Prisma.MappingFile())
		require.NoError(t, err)
		m, err := mapping.Parse([]byte(strings.Replace(string(doc), "username: username", "handle: username", 1)))
		require.NoError(t, err)
		misfit, err := store.Open(context.Background(), testenv.Prisma.ProductDatabase(t, "UTC"), store.Layout{Mapping: m})
		require.NoError(t, err)
		t.Cleanup(misfit.Close)
		url := serveWith(service.Connections{Store: misfit, Temporal: s.temporal, Namespace: "default"},
			config.Config{TaskQueue: s.taskQueue, WebhookMaxBytes: 1 << 20, EnsureTimeout: time.Second})
		code, report := readyz(t, url)
		require.Equal(t, http.StatusOK, code, "webhooks can still be taken")
		require.Equal(t, "not ready: mapping, clerk", report.Ensure)
		require.Contains(t, report.Checks["mapping"], "users table public.User, column handle: no such column")
	})

	t.Run("namespace without search attributes", func(t *testing.T) {
		ns := "bare-" + strings.ToLower(rand.Text()[:8])
		nc, err := client.NewNamespaceClient(client.Options{HostPort: testenv.TemporalAddress(t)})
		require.NoError(t, err)
		defer nc.Close()
		require.NoError(t, nc.Register(context.Background(), &workflowservice.RegisterNamespaceRequest{
			Namespace: ns, WorkflowExecutionRetentionPeriod: durationpb.New(24 * time.Hour),
		}))
		url := serveWith(service.Connections{Store: s.store, Temporal: s.temporal, Namespace: ns},
			config.Config{TaskQueue: s.taskQueue, WebhookMaxBytes: 1 << 20, EnsureTimeout: time.Second})
		var report service.ReadinessReport
		require.Eventually(t, func() bool {
			code, report = readyz(t, url)
			return code == http.StatusServiceUnavailable && strings.Contains(report.Checks["search_attributes"], "ClerkUserId")
		}, 30*time.Second, 200*time.Millisecond, "last: %+v", &report)
		require.Equal(t, "not ready: search_attributes", report.Webhooks)
	})
}

func readyz(t *testing.T, url string) (int, service.ReadinessReport) {
	t.Helper()
	resp, err := http.Get(url + "/readyz")
	require.NoError(t, err)
	defer resp.Body.Close()
	var report service.ReadinessReport
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&report))
	return resp.StatusCode, report
}

// userState queries the user's workflow for its UserState.
func (s *system) userState(clerkID string) (workflows.UserState, error) {
	var st workflows.UserState
	v, err := s.temporal.QueryWorkflow(context.Background(), contract.User.WorkflowID(s.taskQueue, clerkID), "", contract.StateQuery)
	if err != nil {
		return st, err
	}
	return st, v.Get(&st)
}

// findsBySyncState: an operator's search in the Temporal UI,
// ClerkUserId = id AND ClerkSyncState = state, finds the user's run.
func (s *system) findsBySyncState(t *testing.T, clerkID, state string) {
	t.Helper()
	require.Eventually(t, func() bool {
		resp, err := s.temporal.ListWorkflow(context.Background(), &workflowservice.ListWorkflowExecutionsRequest{
			Query: fmt.Sprintf("ClerkUserId = '%s' AND ClerkSyncState = '%s'", clerkID, state),
		})
		return err == nil && len(resp.GetExecutions()) > 0
	}, 30*time.Second, 100*time.Millisecond, "ClerkSyncState = %q does not find %s", state, clerkID)
}
