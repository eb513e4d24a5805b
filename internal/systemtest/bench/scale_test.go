package bench

import (
	"bytes"
	"context"
	"fmt"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"go.temporal.io/sdk/client"

	"github.com/clerksync/clerksync/internal/config"
	"github.com/clerksync/clerksync/internal/testsupport/clerkfake"
	"github.com/clerksync/clerksync/internal/testsupport/testenv"
)

// scaleSizes are the user bases the scale section builds, each from the
// one before (BENCH_SCALE_MAX drops the larger ones, for a quick look).
func scaleSizes() []int {
	sizes := []int{10_000, 100_000, 1_000_000}
	if n, err := strconv.Atoi(os.Getenv("BENCH_SCALE_MAX")); err == nil && n > 0 {
		for len(sizes) > 1 && sizes[len(sizes)-1] > n {
			sizes = sizes[:len(sizes)-1]
		}
	}
	return sizes
}

// scaleSpacing is the time between two users' signups in the scale
// section's Clerk: a million users over about a year.
const scaleSpacing = 30 * time.Second

// scalePoint is what the scale section measured with so many users.
type scalePoint struct {
	users               int
	backfill, reconcile time.Duration
	peakRSS             int64 // the worker's, bytes, over the backfill and the reconcile
	ensure              latencies
	signups             phase
	// limited is, at the smallest and the largest size, a backfill at
	// Clerk's latency and rate limit into a database of its own, beside a
	// raw COPY of as many rows (copyRate, rows/s) there.
	limited  limitedRun
	copyRate float64
}

// scaleBench builds each size's user base in a Clerk of its own (the
// fake) and, into a database of its own, by a fresh worker and starter on
// the dev server at address: a backfill of every user, a reconcile of the
// same, the ensure fast path for a user the backfill wrote, and users()
// webhook signups on top of that table.
func scaleBench(b *testing.B, address, bin string) []scalePoint {
	ctx := context.Background()
	tc, err := client.Dial(client.Options{HostPort: address, Logger: quietLogger{}})
	if err != nil {
		b.Fatal(err)
	}
	defer tc.Close()
	// The fake holds a million users' JSON (gigabytes): it goes, and the
	// memory with it, when the section ends.
	fake, err := clerkfake.New()
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(fake.Handler())
	fake.SetURL(srv.URL)
	defer func() { srv.Close(); debug.FreeOSMemory() }()
	epoch := time.Now().Add(-time.Duration(scaleSizes()[len(scaleSizes())-1]) * scaleSpacing).Truncate(time.Millisecond)
	var points []scalePoint
	have := 0
	for _, size := range scaleSizes() {
		users := make([]clerkfake.User, 0, size-have)
		for i := have; i < size; i++ {
			c := epoch.Add(time.Duration(i) * scaleSpacing)
			users = append(users, clerkfake.User{ID: fmt.Sprintf("user_scale%07d", i), Email: fmt.Sprintf("scale%d@example.com", i), FirstName: "Scale", CreatedAt: c, UpdatedAt: c})
		}
		fake.PutUsers(users...)
		have = size
		if err := fake.Warm(); err != nil {
			b.Fatal(err)
		}
		dbURL := testenv.Database(b)
		db, err := pgx.Connect(ctx, dbURL)
		if err != nil {
			b.Fatal(err)
		}
		httpAddr, workerHTTP := testenv.FreeAddr(b), testenv.FreeAddr(b)
		queue := fmt.Sprintf("scale-%d", size)
		env := []string{
			"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"),
			"DATABASE_URL=" + dbURL, "TEMPORAL_ADDRESS=" + address, "TEMPORAL_TASK_QUEUE=" + queue,
			"CLERK_WEBHOOK_SECRET=" + secret, "HTTP_ADDR=" + httpAddr, "CLERK_SECRET_KEY=" + clerkfake.SecretKey,
			"CLERK_API_URL=" + fake.URL(), "CLERK_API_RPS=0", "WORKER_HTTP_ADDR=" + workerHTTP,
		}
		w := startProcess(b, "worker-"+queue, env, filepath.Join(bin, "worker"))
		st := startProcess(b, "starter-"+queue, env, filepath.Join(bin, "starter"), "serve")
		waitReady(b, "the scale starter", httpAddr)
		waitReady(b, "the scale worker", workerHTTP)
		quiesce(b, db)

		pt := scalePoint{users: size}
		bf := limitedBackfill(b, tc, fake, queue, "scale", config.DefaultBackfillWindows, false)
		pt.backfill = bf.elapsed
		if bf.users != size {
			b.Fatalf("backfill of %d users saw %d", size, bf.users)
		}
		quiesce(b, db)
		pt.reconcile = limitedBackfill(b, tc, fake, queue, "scale-reconcile", config.DefaultBackfillWindows, true).elapsed
		pt.peakRSS = peakRSS(b, w.pid)

		// The reconcile's seen set, a row a user, is dropped as it ends:
		// its vacuum, beside the ensure calls, is no part of their path.
		quiesce(b, db)
		token := fake.Token(b, clerkfake.TokenClaims{Subject: "user_scale0000000", Expiry: time.Now().Add(time.Hour)})
		for range 1000 {
			pt.ensure = append(pt.ensure, timeEnsure(b, "http://"+httpAddr+"/v1/users/ensure", token))
		}
		pt.signups = signupPhase(b, tc, "http://"+httpAddr+"/webhooks/clerk", db, `select count(*) from subscriptions`,
			fmt.Sprintf("scale%d_", size), time.Now().Truncate(time.Millisecond), map[string]int{"worker": w.pid, "starter": st.pid})
		if sizes := scaleSizes(); size == sizes[0] || size == sizes[len(sizes)-1] {
			pt.limited, pt.copyRate = scaleLimited(b, tc, fake, env, bin, size)
		}
		points = append(points, pt)
		b.Logf("scale %d: backfill %s, reconcile %s, worker peak RSS %d MiB", size, pt.backfill, pt.reconcile, pt.peakRSS>>20)
		w.stop()
		st.stop()
		db.Close(ctx)
		dropDatabase(b, dbURL)
	}
	return points
}

// dropDatabase drops dbURL's database (testenv.Database's) now rather than
// when the benchmark ends: a million users' tables, vacuumed beside the
// sections after, would weigh on them.
func dropDatabase(b *testing.B, dbURL string) {
	ctx := context.Background()
	adminURL := os.Getenv("TEST_DATABASE_URL")
	if adminURL == "" {
		adminURL = testenv.DefaultAdminURL
	}
	u, err := url.Parse(dbURL)
	if err != nil {
		b.Fatal(err)
	}
	admin, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		b.Fatal(err)
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, "drop database if exists "+pgx.Identifier{strings.TrimPrefix(u.Path, "/")}.Sanitize()+" with (force)"); err != nil {
		b.Fatal(err)
	}
}

// scaleLimited backfills the fake's size users at Clerk's latency and
// rate limit (as the rate-limited section does) into a database of its
// own, by a worker of its own (env's, with CLERK_API_RPS=backfillRPS),
// and COPYs as many rows there.
func scaleLimited(b *testing.B, tc client.Client, fake *clerkfake.Server, env []string, bin string, size int) (limitedRun, float64) {
	fake.Pace(clerkLatency, clerkLimit)
	defer fake.Pace(0, 0)
	dbURL := testenv.Database(b)
	queue := "scale-limited"
	w := startLimitedWorker(b, env, bin, queue, dbURL, config.DefaultBackfillWindows)
	run := limitedBackfill(b, tc, fake, queue, "scale-limited", config.DefaultBackfillWindows, false)
	if run.users != size {
		b.Fatalf("rate-limited backfill of %d users saw %d", size, run.users)
	}
	w.stop()
	rate := copyRate(b, dbURL, size, ownUsers)
	dropDatabase(b, dbURL)
	return run, rate
}

// peakRSS reads a process's peak resident set size (VmHWM) from /proc.
func peakRSS(b *testing.B, pid int) int64 {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	for line := range bytes.Lines(raw) {
		if v, ok := bytes.CutPrefix(line, []byte("VmHWM:")); ok {
			kb, err := strconv.ParseInt(string(bytes.TrimSpace(bytes.TrimSuffix(bytes.TrimSpace(v), []byte("kB")))), 10, 64)
			if err != nil {
				b.Fatalf("VmHWM of %d: %v", pid, err)
			}
			return kb << 10
		}
	}
	b.Fatalf("no VmHWM for process %d", pid)
	return 0
}

// scaleMarkdown is the section's report.
func scaleMarkdown(points []scalePoint, p func(string, ...any)) {
	if len(points) == 0 {
		return
	}
	n := users()
	p("## Scale")
	p("")
	p("User bases of growing size in a Clerk of their own (the fake, users signed up %s apart,", scaleSpacing)
	p("its JSON encoded before the clock starts), each into a database of its own by a fresh worker")
	p("and starter at their defaults (`CLERK_API_RPS` lifted), on a dev server of their own, after")
	p("every other section: a backfill")
	p("of every user, a reconcile of the same users, the ensure fast path (1,000 calls for a user")
	p("the backfill wrote) and %d webhook signups on top of the table, each once autovacuum has", n)
	p("finished with the steps before it:")
	p("")
	p("| users | backfill users/s | reconcile | worker peak RSS | ensure p50 | ensure p99 | signups end-to-end | signup ack p99 |")
	p("| --- | --- | --- | --- | --- | --- | --- | --- |")
	for _, pt := range points {
		p("| %d | %.0f | %s | %d MiB | %s | %s | %.0f/s | %s |", pt.users, float64(pt.users)/pt.backfill.Seconds(),
			pt.reconcile.Round(time.Millisecond), pt.peakRSS>>20, ms(pt.ensure.pct(50)), ms(pt.ensure.pct(99)),
			pt.signups.rate(n), ms(pt.signups.ack.pct(99)))
	}
	first, last := points[0], points[len(points)-1]
	if len(points) > 1 {
		p("")
		p("From %d to %d users: worker peak RSS %.2fx, ensure p99 %.2fx, backfill users/s %.2fx,", first.users, last.users,
			float64(last.peakRSS)/float64(first.peakRSS), float64(last.ensure.pct(99))/float64(first.ensure.pct(99)),
			(float64(last.users)/last.backfill.Seconds())/(float64(first.users)/first.backfill.Seconds()))
		p("reconcile time per user %.2fx.", (last.reconcile.Seconds()/float64(last.users))/(first.reconcile.Seconds()/float64(first.users)))
	}
	p("")
}

// BenchmarkScale runs the scale section alone, on a dev server of its
// own, and prints its table (make bench writes it with the rest).
func BenchmarkScale(b *testing.B) {
	for range b.N {
		server, address, tc := startDevServer(b)
		tc.Close()
		points := scaleBench(b, address, testenv.Build(b))
		scaleMarkdown(points, func(format string, args ...any) { fmt.Printf(format+"\n", args...) })
		for _, pt := range points {
			if l := pt.limited; l.users > 0 {
				fmt.Printf("At Clerk's rate limit: %d users in %s (%.0f users/s, %.2fx of min(the budget, a raw COPY)), %d requests, %d answered 429\n",
					l.users, l.elapsed.Round(time.Millisecond), float64(l.users)/l.elapsed.Seconds(), share(l, pt.copyRate), l.requests, l.limit)
			}
		}
		server.stop()
	}
}
