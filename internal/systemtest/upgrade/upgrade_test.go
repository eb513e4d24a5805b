//go:build upgrade

// Package upgrade_test rolls each deployed release of clerksync forward to
// this checkout under live webhook traffic, and back again: `make
// test-upgrade` (docs/upgrading.md says what it proves).
package upgrade_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"regexp"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/serviceerror"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/worker"

	"github.com/clerksync/clerksync/internal/payloadcodec"
	"github.com/clerksync/clerksync/internal/syncworker"
	"github.com/clerksync/clerksync/internal/testsupport/clerkfake"
	"github.com/clerksync/clerksync/internal/testsupport/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

const (
	secret      = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	payloadKeys = "upgrade:Y2xlcmtzeW5jIGxvY2FsIGRldmVsb3BtZW50IG9ubHk="
	// streamSpread is how long each roll's stream of webhooks lasts; the
	// roll's steps happen at fixed shares of it, so each meets traffic.
	streamSpread = 30 * time.Second
	// users is how many users each roll's stream is about.
	users = 200
)

// TestUpgrade_RollingDeployUnderLiveTraffic: for each release, the
// release's worker and starter run on the dev server with v0.1.0's
// configuration while a stream of shuffled, duplicated webhooks flows
// through a load balancer. The checkout is rolled in as an operator would:
// its worker beside the old one, the old worker SIGKILLed with runs in
// flight, its starter beside the old one, the old starter stopped. The
// table ends exact, every webhook was taken, no run is left running, no
// workflow task failed on either build, and every run either build closed
// replays on the checkout's workflow code. Then the same roll backwards
// (a rollback after a partial roll-out) onto the release, with a new
// stream, ends the same way on the release's code.
func TestUpgrade_RollingDeployUnderLiveTraffic(t *testing.T) {
	checkout := build{name: "checkout", dir: testenv.Build(t)}
	for _, r := range releases {
		t.Run(r.name, func(t *testing.T) {
			rollForwardAndBack(t, buildRelease(t, r), checkout)
		})
	}
}

func rollForwardAndBack(t *testing.T, release, checkout build) {
	ctx := context.Background()
	dbURL := testenv.Database(t)
	fake := clerkfake.Start(t)
	taskQueue := "upgrade-" + release.name
	// v0.1.0's configuration, as an operator deployed it: the later
	// releases must start and serve webhooks on it unchanged.
	d := &deployment{logs: t.TempDir(), front: startFrontDoor(t), env: []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"),
		"DATABASE_URL=" + dbURL, "TEMPORAL_ADDRESS=" + testenv.TemporalAddress(t), "TEMPORAL_TASK_QUEUE=" + taskQueue,
		"CLERK_WEBHOOK_SECRET=" + secret, "CLERK_SECRET_KEY=" + clerkfake.SecretKey, "CLERK_API_URL=" + fake.URL(),
		"PAYLOAD_KEYS=" + payloadKeys, "LOG_FORMAT=json",
	}}
	db, err := pgx.Connect(ctx, dbURL)
	require.NoError(t, err)
	t.Cleanup(func() { db.Close(context.Background()) })
	tc := testenv.Temporal(t)

	d.worker = release.startWorker(t, d.logs, d.env)
	d.starter = release.startStarter(t, d.logs, d.env)
	d.front.route(t, d.starter)

	var earlier []string // the users of earlier steps, which each step's comparison leaves out
	for _, step := range []struct {
		onto   build
		prefix string
	}{
		{checkout, "up"},  // the upgrade
		{release, "down"}, // the rollback, before any contract step
	} {
		seed := uint64(time.Now().UnixNano())
		sc := testenv.NewScenario(t, testenv.ScenarioOptions{Users: users, DuplicateRate: 0.3, Unusual: true, Seed: seed, Prefix: step.prefix})
		ensured := "user_" + step.prefix + "_ensured"
		sc = sc.Ignoring(append(earlier, ensured))
		t.Logf("%s onto %s: seed %d, %d deliveries", step.prefix, step.onto.name, seed, len(sc.Deliveries))
		d.rollOnto(t, step.onto, sc.Deliveries)
		var last testenv.Divergence
		require.Eventually(t, func() bool {
			last, err = sc.Compare(ctx, db)
			require.NoError(t, err)
			return last.Zero()
		}, 3*time.Minute, 500*time.Millisecond, "rolled %s onto %s, the table never converged (seed %d): %v", step.prefix, step.onto.name, seed, &last)
		ensureThrough(t, d.starter, fake, ensured)
		earlier = append(earlier, ensured)
		for id := range sc.Live {
			earlier = append(earlier, id)
		}
		for id := range sc.Deleted {
			earlier = append(earlier, id)
		}
		noRunLeftRunning(t, tc, taskQueue)
		checkHistories(t, tc, taskQueue)
	}
	logs := testenv.ReadLogs(t, d.logs)
	require.NotRegexp(t, regexp.MustCompile(`(?i)nondetermin|TMPRL1100`), string(logs), "a build met a history it could not replay")
}

// deployment is a clerksync deployment being rolled: one worker and one
// starter of the build it runs, behind a load balancer.
type deployment struct {
	env             []string
	logs            string
	front           *frontDoor
	worker, starter process
}

// rollOnto rolls d onto next while deliveries stream in through the load
// balancer, in the order docs/upgrading.md gives: next's worker beside the
// running one, the running worker killed (SIGKILL: its runs in flight are
// taken over by next's), next's starter beside the running one, the
// running starter taken out of the balancer and stopped. It returns once
// every delivery was acknowledged.
func (d *deployment) rollOnto(t *testing.T, next build, deliveries []testenv.Delivery) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	type result struct {
		stats testenv.DeliveryStats
		err   error
	}
	done := make(chan result, 1)
	start := time.Now()
	go func() {
		stats, err := testenv.Deliver(ctx, d.front.URL+"/webhooks/clerk", secret, deliveries, 4, streamSpread)
		done <- result{stats, err}
	}()
	at := func(share float64) { time.Sleep(time.Until(start.Add(time.Duration(share * float64(streamSpread))))) }

	at(0.2)
	worker := next.startWorker(t, d.logs, d.env)
	at(0.4)
	d.worker.Kill(t)
	at(0.55)
	starter := next.startStarter(t, d.logs, d.env)
	d.front.route(t, d.starter, starter)
	at(0.75)
	d.front.route(t, starter)
	require.NoError(t, d.starter.Stop(), "the running starter did not stop cleanly")
	d.worker, d.starter = worker, starter

	r := <-done
	require.NoError(t, r.err)
	// Every webhook was taken by one starter or the other: a 503 (the
	// balancer finding a starter gone, Temporal slow) is retried as Svix
	// does, but nothing was refused (a 401 would be a configuration the new
	// starter does not read as the old one did).
	require.Zero(t, r.stats.Refused, "deliveries refused during the roll onto %s", next.name)
}

// ensureThrough ensures a user Clerk knows through starter, with a session
// token as the product's backend sends it, and expects the row.
func ensureThrough(t *testing.T, starter process, fake *clerkfake.Server, clerkID string) {
	t.Helper()
	now := time.Now().Truncate(time.Millisecond)
	fake.PutUser(clerkfake.User{ID: clerkID, Email: clerkID + "@example.com", CreatedAt: now, UpdatedAt: now})
	req, err := http.NewRequest(http.MethodPost, starter.url+"/v1/users/ensure", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+fake.Token(t, clerkfake.TokenClaims{Subject: clerkID}))
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, "ensure %s: %s", clerkID, body)
	require.Contains(t, string(body), clerkID)
}

// entityRuns are the runs that must all complete once their events are
// applied; the Schedules' runs come and go on their own.
const entityRuns = `WorkflowType IN ('UserWorkflow', 'OrganizationWorkflow', 'BackfillWorkflow')`

func noRunLeftRunning(t *testing.T, tc client.Client, taskQueue string) {
	t.Helper()
	query := fmt.Sprintf(`TaskQueue = %q AND ExecutionStatus = 'Running' AND %s`, taskQueue, entityRuns)
	var open []string
	require.Eventually(t, func() bool {
		open = nil
		for _, e := range listRuns(t, tc, query) {
			open = append(open, e.GetExecution().GetWorkflowId())
		}
		return len(open) == 0
	}, 2*time.Minute, time.Second, "runs left running: %v", &open)
}

// checkHistories reads every closed run on taskQueue, fails on any workflow
// task that failed other than for an event arriving as the run completed
// (UnhandledCommand, retried by design), and replays each on the
// checkout's workflow code.
func checkHistories(t *testing.T, tc client.Client, taskQueue string) {
	t.Helper()
	keys, err := payloadcodec.ParseKeys(payloadKeys)
	require.NoError(t, err)
	var opts client.Options
	payloadcodec.Apply(&opts, keys)
	replayer, err := worker.NewWorkflowReplayerWithOptions(worker.WorkflowReplayerOptions{
		DataConverter: opts.DataConverter, FailureConverter: opts.FailureConverter,
	})
	require.NoError(t, err)
	syncworker.RegisterWorkflows(replayer)
	quiet := tlog.NewStructuredLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))

	ctx := context.Background()
	replayed, erased := 0, 0
	for _, e := range listRuns(t, tc, fmt.Sprintf(`TaskQueue = %q AND ExecutionStatus != 'Running'`, taskQueue)) {
		id, runID := e.GetExecution().GetWorkflowId(), e.GetExecution().GetRunId()
		history := &historypb.History{}
		iter := tc.GetWorkflowHistory(ctx, id, runID, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
		for iter.HasNext() {
			event, err := iter.Next()
			var notFound *serviceerror.NotFound
			if errors.As(err, &notFound) {
				history = nil // erased since it was listed: a deleted user's
				break
			}
			require.NoError(t, err, "history of %s", id)
			if f := event.GetWorkflowTaskFailedEventAttributes(); f != nil {
				require.Equal(t, enumspb.WORKFLOW_TASK_FAILED_CAUSE_UNHANDLED_COMMAND, f.GetCause(),
					"%s (run %s): workflow task failed at event %d: %s", id, runID, event.GetEventId(), f.GetFailure().GetMessage())
			}
			history.Events = append(history.Events, event)
		}
		if history == nil {
			erased++
			continue
		}
		require.NoError(t, replayer.ReplayWorkflowHistory(quiet, history), "%s (run %s) does not replay on the checkout", id, runID)
		replayed++
	}
	t.Logf("%d closed runs replayed on the checkout's code, %d erased before they were read", replayed, erased)
	require.NotZero(t, replayed)
}

// listRuns lists every execution query matches.
func listRuns(t *testing.T, tc client.Client, query string) []*workflowpb.WorkflowExecutionInfo {
	t.Helper()
	var all []*workflowpb.WorkflowExecutionInfo
	var token []byte
	for {
		resp, err := tc.ListWorkflow(context.Background(), &workflowservice.ListWorkflowExecutionsRequest{
			Query: query, NextPageToken: token, PageSize: 1000,
		})
		require.NoError(t, err, "list %s", query)
		all = append(all, resp.GetExecutions()...)
		if token = resp.GetNextPageToken(); len(token) == 0 {
			return all
		}
	}
}
