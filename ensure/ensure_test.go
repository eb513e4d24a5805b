package ensure_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"os"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/clerk/clerk-sdk-go/v2"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"

	"github.com/clerksync/clerksync/ensure"
	"github.com/clerksync/clerksync/internal/clerkevent"
	"github.com/clerksync/clerksync/internal/store"
	"github.com/clerksync/clerksync/internal/syncworker"
	"github.com/clerksync/clerksync/internal/testsupport/clerkfake"
	"github.com/clerksync/clerksync/internal/testsupport/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

// unreachableTemporal is a client whose every call fails: proof that a code
// path makes no Temporal call when it still succeeds.
func unreachableTemporal(t testing.TB) client.Client {
	t.Helper()
	c, err := client.NewLazyClient(client.Options{HostPort: testenv.RefusingAddr(t),
		Logger: tlog.NewStructuredLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))})
	require.NoError(t, err)
	t.Cleanup(c.Close)
	return c
}

func seed(t testing.TB, st *store.Store, clerkID string) store.UpsertResult {
	t.Helper()
	res, err := st.UpsertUser(context.Background(), clerkevent.User{ClerkID: clerkID, ClerkUpdatedAt: time.Now()}, 0)
	require.NoError(t, err)
	return res
}

func TestEnsure_FastPathNeedsNoTemporal(t *testing.T) {
	t.Parallel()
	st, _ := testenv.Store(t)
	res := seed(t, st, "user_fast")
	e, err := ensure.New(ensure.Options{Temporal: unreachableTemporal(t), Pool: st.Pool()})
	require.NoError(t, err)
	u, err := e.Ensure(context.Background(), "user_fast")
	require.NoError(t, err)
	require.Equal(t, res.UserID, u.ID)

	// A tombstone alone (the row kept by a product's foreign key) is enough.
	require.NoError(t, st.TombstoneUser(context.Background(), "user_fast", time.Now()))
	_, err = e.Ensure(context.Background(), "user_fast")
	require.ErrorIs(t, err, ensure.ErrDeleted, "a tombstone answers without Temporal too")
}

func TestEnsure_MissWithTemporalDownIsUnavailable(t *testing.T) {
	t.Parallel()
	st, _ := testenv.Store(t)
	e, err := ensure.New(ensure.Options{Temporal: unreachableTemporal(t), Pool: st.Pool(), Timeout: time.Second})
	require.NoError(t, err)
	_, err = e.Ensure(context.Background(), "user_nobody")
	require.ErrorIs(t, err, ensure.ErrUnavailable)
}

func TestEnsure_NoWorkerTimesOut(t *testing.T) {
	t.Parallel()
	st, _ := testenv.Store(t)
	// Temporal accepts the signal, but no worker polls this task queue. The
	// timeout leaves the signal time to be accepted on a loaded machine:
	// what is under test is the wait's bound.
	const timeout = 2 * time.Second
	e, err := ensure.New(ensure.Options{Temporal: testenv.Temporal(t), Pool: st.Pool(),
		TaskQueue: "nobody-polls-" + strings.ToLower(t.Name()), Timeout: timeout})
	require.NoError(t, err)
	start := time.Now()
	_, err = e.Ensure(context.Background(), "user_waiting")
	require.ErrorIs(t, err, ensure.ErrTimeout)
	require.Less(t, time.Since(start), timeout+3*time.Second, "the wait is bounded by Timeout")
}

func TestEnsure_RefusesInvalidID(t *testing.T) {
	t.Parallel()
	st, _ := testenv.Store(t)
	e, err := ensure.New(ensure.Options{Temporal: unreachableTemporal(t), Pool: st.Pool()})
	require.NoError(t, err)
	for _, id := range []string{"", "user 1", strings.Repeat("x", 200)} {
		_, err := e.Ensure(context.Background(), id)
		require.ErrorIs(t, err, ensure.ErrInvalidID, "%q", id)
	}
}

// The benchmarks report what the README's ensure table shows:
//
//	go test -run XXX -bench . -benchtime 2000x ./ensure
func BenchmarkEnsure_FastPath(b *testing.B) {
	st, _ := testenv.Store(b)
	seed(b, st, "user_bench")
	e, err := ensure.New(ensure.Options{Temporal: unreachableTemporal(b), Pool: st.Pool()})
	require.NoError(b, err)
	ctx := context.Background()
	measure(b, func() error { _, err := e.Ensure(ctx, "user_bench"); return err })
}

func BenchmarkRawPgxLookup(b *testing.B) {
	st, _ := testenv.Store(b)
	seed(b, st, "user_bench")
	ctx := context.Background()
	var id string
	measure(b, func() error {
		return st.Pool().QueryRow(ctx, `select id from users where clerk_id = $1`, "user_bench").Scan(&id)
	})
}

// BenchmarkEnsure_SlowPath: a user without a row, through signal-with-start,
// the workflow's minimal-row write and the wait.
func BenchmarkEnsure_SlowPath(b *testing.B) {
	st, _ := testenv.Store(b)
	tc := testenv.Temporal(b)
	fake := clerkfake.Start(b)
	url, key := fake.URL(), clerkfake.SecretKey
	taskQueue := "bench-slow-path"
	w := syncworker.New(tc, syncworker.Options{TaskQueue: taskQueue, Store: st, Clerk: &clerk.ClientConfig{BackendConfig: clerk.BackendConfig{URL: &url, Key: &key}}})
	require.NoError(b, w.Start())
	b.Cleanup(w.Stop)
	e, err := ensure.New(ensure.Options{Temporal: tc, Pool: st.Pool(), TaskQueue: taskQueue})
	require.NoError(b, err)
	ctx := context.Background()
	run := time.Now().UnixNano()
	i := 0
	measure(b, func() error {
		i++
		_, err := e.Ensure(ctx, "user_slow_"+strconvI(run)+"_"+strconvI(int64(i)))
		return err
	})
}

// measure runs op b.N times and reports p50 and p99 latency beside ns/op.
func measure(b *testing.B, op func() error) {
	b.Helper()
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		if err := op(); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
}

func strconvI(n int64) string { return strconv.FormatInt(n, 10) }

// TestEnsure_HangingDatabaseIsBoundedByTimeout: a PostgreSQL that accepts
// connections and never answers costs the caller at most the Timeout (the
// HTTP endpoint then answers 503), not a hung request.
func TestEnsure_HangingDatabaseIsBoundedByTimeout(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { conn.Close() }) // held open, never answered
		}
	}()
	st, err := store.Open(context.Background(), "postgres://clerksync@"+ln.Addr().String()+"/clerksync?sslmode=disable", store.Layout{})
	require.NoError(t, err)
	t.Cleanup(st.Close)
	const timeout = 500 * time.Millisecond
	e, err := ensure.New(ensure.Options{Temporal: unreachableTemporal(t), Pool: st.Pool(), Timeout: timeout})
	require.NoError(t, err)

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // a safety net, not the bound under test
	defer cancel()
	start := time.Now()
	_, err = e.Ensure(ctx, "user_hanging_db")
	elapsed := time.Since(start)
	require.Error(t, err)
	require.NotErrorIs(t, err, ensure.ErrTimeout, "the row was never looked up: this is unavailability, not a slow workflow")
	require.Less(t, elapsed, timeout+2*time.Second, "bounded by the Timeout, not by the caller's context")
}

// TestEnsure_MinimalRowIsServedWhileTemporalIsAway: a minimal row (a
// membership's member) is returned at once; the signal that has the
// workflow fill it goes in the background, so neither a Temporal outage
// nor its wait reaches the caller.
func TestEnsure_MinimalRowIsServedWhileTemporalIsAway(t *testing.T) {
	t.Parallel()
	st, _ := testenv.Store(t)
	res, err := st.UpsertUser(context.Background(), clerkevent.User{ClerkID: "user_minimal", ClerkUpdatedAt: clerkevent.MinimalVersion}, 0)
	require.NoError(t, err)
	e, err := ensure.New(ensure.Options{Temporal: unreachableTemporal(t), Pool: st.Pool(), Timeout: 2 * time.Second})
	require.NoError(t, err)
	start := time.Now()
	u, err := e.Ensure(context.Background(), "user_minimal")
	require.NoError(t, err)
	require.Equal(t, res.UserID, u.ID)
	var row map[string]any
	require.NoError(t, u.Decode(&row))
	require.Nil(t, row["email"])
	require.Equal(t, "user_minimal", row["clerk_id"])
	require.Less(t, time.Since(start), time.Second, "the answer does not wait for Temporal")
}
