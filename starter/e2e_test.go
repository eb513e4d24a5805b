package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/clerksync/clerksync/internal/clerkwebhook"
	"github.com/clerksync/clerksync/internal/config"
	"github.com/clerksync/clerksync/internal/syncworker"
	"github.com/clerksync/clerksync/internal/testenv"
	"github.com/clerksync/clerksync/workflows"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

// system is the whole of clerksync in one test: the real HTTP handler, a
// worker on a task queue of its own, a Temporal dev server and PostgreSQL.
type system struct {
	url       string
	temporal  client.Client
	db        *pgx.Conn
	taskQueue string
	secret    string
}

func startSystem(t *testing.T) *system {
	t.Helper()
	st, dbURL := testenv.Store(t)
	tc := testenv.Temporal(t)
	taskQueue := "e2e-" + strings.ToLower(t.Name())
	w := syncworker.New(tc, taskQueue, st)
	require.NoError(t, w.Start())
	t.Cleanup(w.Stop)

	verifier, err := newSignatureVerifier(testSecret)
	require.NoError(t, err)
	cfg := config.Config{TaskQueue: taskQueue, UserIdleTimeout: 2 * time.Second, WebhookMaxBytes: 1 << 20}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv := httptest.NewServer(newMux(cfg, verifier, st, tc, logger))
	t.Cleanup(srv.Close)

	db, err := pgx.Connect(context.Background(), dbURL)
	require.NoError(t, err)
	t.Cleanup(func() { db.Close(context.Background()) })
	return &system{url: srv.URL, temporal: tc, db: db, taskQueue: taskQueue, secret: testSecret}
}

// post sends body signed as Svix would, now, with the given message ID.
func (s *system) post(t *testing.T, msgID string, body []byte) int {
	t.Helper()
	h, err := clerkwebhook.Sign(s.secret, msgID, time.Now(), body)
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

// row is the part of a users row the scenario decides.
type row struct {
	Email, FirstName, LastName *string
	Version                    time.Time
}

func (r row) String() string {
	s := func(p *string) string {
		if p == nil {
			return "NULL"
		}
		return *p
	}
	return fmt.Sprintf("{%s %s %s %s}", s(r.Email), s(r.FirstName), s(r.LastName), r.Version.UTC().Format(time.RFC3339Nano))
}

// table reads users and tombstones.
func (s *system) table(t *testing.T) (users map[string]row, tombstones map[string]bool) {
	t.Helper()
	ctx := context.Background()
	rows, err := s.db.Query(ctx, `select clerk_id, email, first_name, last_name, clerk_updated_at from users`)
	require.NoError(t, err)
	users = map[string]row{}
	for rows.Next() {
		var id string
		var r row
		require.NoError(t, rows.Scan(&id, &r.Email, &r.FirstName, &r.LastName, &r.Version))
		users[id] = r
	}
	require.NoError(t, rows.Err())
	tombstones = map[string]bool{}
	rows, err = s.db.Query(ctx, `select clerk_id from user_tombstones`)
	require.NoError(t, err)
	for rows.Next() {
		var id string
		require.NoError(t, rows.Scan(&id))
		tombstones[id] = true
	}
	require.NoError(t, rows.Err())
	return users, tombstones
}

// divergence counts how the table differs from what the scenario implies.
type divergence struct{ lost, stale, resurrected, unexpected, untombstoned int }

func (d divergence) zero() bool { return d == divergence{} }

func diverge(want map[string]row, deleted map[string]bool, users map[string]row, tombstones map[string]bool) divergence {
	var d divergence
	for id, w := range want {
		got, ok := users[id]
		switch {
		case !ok:
			d.lost++
		case got.String() != w.String():
			d.stale++
		}
	}
	for id := range users {
		if deleted[id] {
			d.resurrected++
		} else if _, ok := want[id]; !ok {
			d.unexpected++
		}
	}
	for id := range deleted {
		if !tombstones[id] {
			d.untombstoned++
		}
	}
	return d
}

type delivery struct {
	msgID string
	body  []byte
}

// TestEndToEnd_ShuffledDuplicatedConcurrentWebhooksConverge is the walking
// skeleton's promise: 200 users, each created, updated several times and
// sometimes deleted, delivered signed, shuffled, 20% twice, by concurrent
// senders. Once idle, the table holds exactly the newest version of every
// live user, and every deleted user is absent and tombstoned.
func TestEndToEnd_ShuffledDuplicatedConcurrentWebhooksConverge(t *testing.T) {
	t.Parallel()
	s := startSystem(t)
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0))

	const users, senders = 200, 8
	base := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	want := map[string]row{}
	deleted := map[string]bool{}
	var deliveries []delivery
	for i := range users {
		id := fmt.Sprintf("user_e2e%03d", i)
		versions := 2 + rng.IntN(4)
		var last row
		for k := range versions {
			f := clerkwebhook.UserFields{
				ClerkID: id, FirstName: fmt.Sprintf("First %d.%d", i, k), CreatedAt: base,
				UpdatedAt: base.Add(time.Duration(k) * time.Second),
			}
			if k%2 == 0 { // some versions have no email at all
				f.Email = fmt.Sprintf("u%d.v%d@example.com", i, k)
			}
			if k == versions-1 && i%3 == 0 {
				f.LastName = "Last"
			}
			typ := "user.updated"
			if k == 0 {
				typ = "user.created"
			}
			body, err := clerkwebhook.UserEvent(typ, f)
			require.NoError(t, err)
			deliveries = append(deliveries, delivery{fmt.Sprintf("msg_%s_%d", id, k), body})
			last = row{Email: opt(f.Email), FirstName: opt(f.FirstName), LastName: opt(f.LastName), Version: f.UpdatedAt}
		}
		if i%4 == 0 {
			body, err := clerkwebhook.DeletedEvent(id, base.Add(time.Minute))
			require.NoError(t, err)
			deliveries = append(deliveries, delivery{"msg_" + id + "_del", body})
			deleted[id] = true
		} else {
			want[id] = last
		}
	}
	for _, d := range deliveries[:len(deliveries):len(deliveries)] {
		if rng.Float64() < 0.2 {
			deliveries = append(deliveries, d) // Svix redelivers with the same svix-id
		}
	}
	rng.Shuffle(len(deliveries), func(i, j int) { deliveries[i], deliveries[j] = deliveries[j], deliveries[i] })
	t.Logf("%d users, %d deliveries (%d deleted users)", users, len(deliveries), len(deleted))

	queue := make(chan delivery)
	var wg sync.WaitGroup
	var mu sync.Mutex
	statuses := map[int]int{}
	for range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for d := range queue {
				code := s.post(t, d.msgID, d.body)
				mu.Lock()
				statuses[code]++
				mu.Unlock()
			}
		}()
	}
	for _, d := range deliveries {
		queue <- d
	}
	close(queue)
	wg.Wait()
	require.Equal(t, map[int]int{http.StatusOK: len(deliveries)}, statuses)

	var last divergence
	require.Eventually(t, func() bool {
		u, tomb := s.table(t)
		last = diverge(want, deleted, u, tomb)
		return last.zero()
	}, 2*time.Minute, 250*time.Millisecond, "table never converged: %+v", &last)

	// Idle: every workflow completes, and nothing late changes the table.
	require.Eventually(t, func() bool {
		n, err := s.temporal.CountWorkflow(context.Background(), &workflowservice.CountWorkflowExecutionsRequest{
			Query: fmt.Sprintf("TaskQueue = '%s' AND ExecutionStatus = 'Running'", s.taskQueue),
		})
		return err == nil && n.GetCount() == 0
	}, time.Minute, 500*time.Millisecond, "user workflows did not complete after the idle timeout")
	u, tomb := s.table(t)
	require.Equal(t, divergence{}, diverge(want, deleted, u, tomb))
	require.Len(t, u, len(want), "no duplicate or extra rows")
	require.Len(t, tomb, len(deleted))

	// An operator finds a user's history by Clerk ID.
	require.Eventually(t, func() bool {
		resp, err := s.temporal.ListWorkflow(context.Background(), &workflowservice.ListWorkflowExecutionsRequest{
			Query: "ClerkUserId = 'user_e2e001' AND ClerkSyncState = 'synced'",
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
		h, err := clerkwebhook.Sign(secret, "msg_bad", at, body)
		require.NoError(t, err)
		req, err := http.NewRequest(http.MethodPost, s.url+"/webhooks/clerk", bytes.NewReader(body))
		require.NoError(t, err)
		req.Header = h
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
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
		_, err := s.temporal.DescribeWorkflowExecution(context.Background(), workflows.UserWorkflowID(tc.clerkID), "")
		var notFound *serviceerror.NotFound
		require.True(t, errors.As(err, &notFound), "%s: workflow exists (err %v)", tc.name, err)
	}
	require.Equal(t, http.StatusBadRequest,
		send(testSecret, now, []byte(`{"type":"user.updated","data":{"first_name":"no id","updated_at":1}}`)))
	n, err := s.temporal.CountWorkflow(context.Background(), &workflowservice.CountWorkflowExecutionsRequest{
		Query: fmt.Sprintf("TaskQueue = '%s'", s.taskQueue),
	})
	require.NoError(t, err)
	require.Zero(t, n.GetCount(), "no input above starts a workflow")
	users, tombstones := s.table(t)
	require.Empty(t, users)
	require.Empty(t, tombstones)
}

func TestEndToEnd_ReadyzChecksPostgresAndTemporal(t *testing.T) {
	t.Parallel()
	s := startSystem(t)
	resp, err := http.Get(s.url + "/readyz")
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	require.JSONEq(t, `{"postgres":"ok","temporal":"ok"}`, string(body))
}

func opt(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
