package bench

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"go.temporal.io/sdk/client"

	"github.com/clerksync/clerksync/internal/config"
	"github.com/clerksync/clerksync/internal/testsupport/clerkfake"
	"github.com/clerksync/clerksync/internal/testsupport/testenv"
	"github.com/clerksync/clerksync/workflows"
)

// Clerk as a production instance answers it: a page of 500 users takes
// about 200 ms, and the instance allows 100 requests a second, of which a
// backfill is given half (CLERK_API_RPS), leaving the rest to the app.
const (
	clerkLatency = 200 * time.Millisecond
	clerkLimit   = 100
	backfillRPS  = 50
)

// limitedRun is one backfill (or reconcile) of the fake's users at Clerk's
// latency and rate limit, read in windows.
type limitedRun struct {
	windows, users  int
	elapsed         time.Duration
	requests, limit int // Clerk requests, and those answered 429
}

// rateLimited is the backfill at Clerk's rate limit: read in one and in
// the default windows, each into a database of its own, a reconcile of
// the same users, a backfill into an app's own tables (mapped), and a raw
// COPY of as many rows into the same PostgreSQL for each kind of table.
type rateLimited struct {
	runs      []limitedRun
	reconcile limitedRun
	copyRate  float64 // rows/s
	// mapped is the default windows' backfill into the Prisma example's
	// tables, mapped, beside a raw COPY into a table like its "User".
	mapped copiedRun
	// scaled are backfills of the scale section's smallest and largest
	// user bases at the same latency and limit, each beside a raw COPY of
	// as many rows.
	scaled []copiedRun
}

// copiedRun is a backfill at Clerk's rate limit, and the rows/s of a raw
// COPY of as many rows into a table like the one it wrote.
type copiedRun struct {
	run      limitedRun
	copyRate float64
}

// share is run's users/s as a share of min(the budget, copyRate).
func share(run limitedRun, copyRate float64) float64 {
	return float64(run.users) / run.elapsed.Seconds() / min(float64(backfillRPS*500), copyRate)
}

// rateLimitedBench runs workers with CLERK_API_RPS=backfillRPS against
// the fake answering at clerkLatency within clerkLimit, each on a task
// queue and a database of its own: one for each window count into
// clerksync's own tables, then the default windows into the Prisma
// example's, mapped.
func rateLimitedBench(b *testing.B, tc client.Client, fake *clerkfake.Server, bin string, env []string) rateLimited {
	var r rateLimited
	fake.Pace(clerkLatency, clerkLimit)
	defer fake.Pace(0, 0)
	for _, windows := range []int{1, config.DefaultBackfillWindows} {
		dbURL := testenv.Database(b)
		queue := fmt.Sprintf("ratelimit-%d", windows)
		w := startLimitedWorker(b, env, bin, queue, dbURL, windows)
		r.runs = append(r.runs, limitedBackfill(b, tc, fake, queue, "limited", windows, false))
		if windows > 1 {
			r.reconcile = limitedBackfill(b, tc, fake, queue, "limited-reconcile", windows, true)
			r.copyRate = copyRate(b, dbURL, r.runs[len(r.runs)-1].users, ownUsers)
		}
		w.stop()
	}
	dbURL := prismaTables.database(b)
	w := startLimitedWorker(b, env, bin, "ratelimit-mapped", dbURL, config.DefaultBackfillWindows, prismaTables.env...)
	r.mapped.run = limitedBackfill(b, tc, fake, "ratelimit-mapped", "limited-mapped", config.DefaultBackfillWindows, false)
	w.stop()
	r.mapped.copyRate = copyRate(b, dbURL, r.mapped.run.users, prismaUsers)
	return r
}

// startLimitedWorker starts a worker as the rate-limited runs take it
// (env's, on queue and dbURL's database, CLERK_API_RPS=backfillRPS and
// BACKFILL_WINDOWS=windows, then extra) and waits until it polls: a run
// started before would wait for its pollers.
func startLimitedWorker(b *testing.B, env []string, bin, queue, dbURL string, windows int, extra ...string) process {
	workerHTTP := testenv.FreeAddr(b)
	env = append(slices.Clone(env), "DATABASE_URL="+dbURL, "TEMPORAL_TASK_QUEUE="+queue, fmt.Sprintf("CLERK_API_RPS=%d", backfillRPS),
		fmt.Sprintf("BACKFILL_WINDOWS=%d", windows), "WORKER_HTTP_ADDR="+workerHTTP)
	w := startProcess(b, "worker-"+queue, append(env, extra...), filepath.Join(bin, "worker"))
	waitReady(b, "the rate-limited worker on "+queue, workerHTTP)
	return w
}

// limitedBackfill times one run on queue (a reconcile when reconcile is
// set): windows is what the worker was given, for the report.
func limitedBackfill(b *testing.B, tc client.Client, fake *clerkfake.Server, queue, name string, windows int, reconcile bool) limitedRun {
	ctx := context.Background()
	limitedBefore := fake.RateLimited()
	start := time.Now()
	run, err := tc.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: workflows.BackfillWorkflowID(queue, name), TaskQueue: queue},
		workflows.BackfillWorkflow, workflows.BackfillInput{Reconcile: reconcile})
	if err != nil {
		b.Fatal(err)
	}
	var p workflows.BackfillProgress
	if err := run.Get(ctx, &p); err != nil {
		b.Fatal(err)
	}
	return limitedRun{windows: windows, users: p.Stats.Seen, elapsed: time.Since(start), requests: p.Stats.Requests,
		limit: fake.RateLimited() - limitedBefore}
}

// copyTable is a table a raw COPY writes a backfill's users into, made
// like the table the backfill writes them to: its name, the columns a
// user fills, and their values for user i created at created.
type copyTable struct {
	like    string
	columns []string
	row     func(i int, created time.Time) []any
}

// ownUsers is clerksync's own users table; prismaUsers the Prisma
// example's "User".
var (
	ownUsers = copyTable{like: "users", columns: []string{"clerk_id", "email", "first_name", "clerk_created_at", "clerk_updated_at"},
		row: func(i int, created time.Time) []any {
			return []any{fmt.Sprintf("user_copy%06d", i), fmt.Sprintf("copy%06d@example.com", i), "Backfill", created, created}
		}}
	prismaUsers = copyTable{like: `"User"`, columns: []string{"id", "clerkId", "email", "firstName", "createdAt", "updatedAt"},
		row: func(i int, created time.Time) []any {
			return []any{fmt.Sprintf("c%024d", i), fmt.Sprintf("user_copy%06d", i), fmt.Sprintf("copy%06d@example.com", i), "Backfill", created, created}
		}}
)

// copyRate is how many rows a second a raw COPY writes into a table like
// t in dbURL's database: n rows of what the backfill writes, the fastest
// PostgreSQL takes them.
func copyRate(b *testing.B, dbURL string, n int, t copyTable) float64 {
	ctx := context.Background()
	db, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close(ctx)
	if _, err := db.Exec(ctx, `create table copied (like `+t.like+` including all)`); err != nil {
		b.Fatal(err)
	}
	created := time.Now().Add(-30 * 24 * time.Hour)
	rows := make([][]any, n)
	for i := range rows {
		rows[i] = t.row(i, created)
	}
	start := time.Now()
	if _, err := db.CopyFrom(ctx, pgx.Identifier{"copied"}, t.columns, pgx.CopyFromRows(rows)); err != nil {
		b.Fatal(err)
	}
	return float64(n) / time.Since(start).Seconds()
}

// row is run's line of the section's table, named what.
func (run limitedRun) row(p func(string, ...any), what string) {
	p("| %s | %.0f | %s | %d | %d |", what, float64(run.users)/run.elapsed.Seconds(), run.elapsed.Round(time.Millisecond), run.requests, run.limit)
}

// markdown is the section's report.
func (r rateLimited) markdown(p func(string, ...any)) {
	if len(r.runs) == 0 {
		return
	}
	p("## Backfill at Clerk's rate limit")
	p("")
	p("The same users from the fake Clerk answering as a production instance does: every answer")
	p("after %s, at most %d requests a second (429 and `Retry-After` beyond), the worker", clerkLatency, clerkLimit)
	p("given half (`CLERK_API_RPS=%d`), on a dev server of their own, each run into a database of its own, beside a raw", backfillRPS)
	p("`COPY` of as many rows into the same PostgreSQL. The budget allows %d users/s", backfillRPS*500)
	p("(%d requests of 500 users a second).", backfillRPS)
	p("")
	p("| | users/s | elapsed | Clerk requests | answered 429 |")
	p("| --- | --- | --- | --- | --- |")
	for _, run := range append(slices.Clone(r.runs), r.reconcile) {
		if run.users == 0 {
			continue
		}
		what := fmt.Sprintf("`BackfillWorkflow`, `BACKFILL_WINDOWS=%d`", run.windows)
		if run == r.reconcile {
			what = fmt.Sprintf("reconcile of the same users, `BACKFILL_WINDOWS=%d`", run.windows)
		}
		run.row(p, what)
	}
	p("| raw `COPY` of as many rows | %.0f | - | - | - |", r.copyRate)
	if m := r.mapped; m.run.users > 0 {
		m.run.row(p, fmt.Sprintf("`BackfillWorkflow` into the Prisma example's tables, mapped, `BACKFILL_WINDOWS=%d`", m.run.windows))
		p("| raw `COPY` of as many rows into a table like its `\"User\"` | %.0f | - | - | - |", m.copyRate)
	}
	for _, sc := range r.scaled {
		sc.run.row(p, fmt.Sprintf("`BackfillWorkflow`, `BACKFILL_WINDOWS=%d`, the scale section's %d users", sc.run.windows, sc.run.users))
		p("| raw `COPY` of %d rows | %.0f | - | - | - |", sc.run.users, sc.copyRate)
	}
	if last := r.runs[len(r.runs)-1]; last.users > 0 && r.copyRate > 0 {
		p("")
		p("Read in windows, the backfill of %d users is %.2fx of min(the budget, the raw `COPY`), and the reconcile takes %.2fx",
			last.users, share(last, r.copyRate), r.reconcile.elapsed.Seconds()/last.elapsed.Seconds())
		p("the backfill's time.")
		if m := r.mapped; m.run.users > 0 {
			p("Into the Prisma example's tables, mapped, the backfill is %.2fx of min(the budget, its raw `COPY`).", share(m.run, m.copyRate))
		}
		for _, sc := range r.scaled {
			p("The backfill of %d users is %.2fx of min(the budget, its raw `COPY`).", sc.run.users, share(sc.run, sc.copyRate))
		}
		p("What a run spends beside its pages weighs on the smaller ones: a request's latency before the listing (the")
		p("instance checked, the listing's extent asked) and its last page's after it, and the requests beyond one a")
		p("page of 500 (a partial page where each window ends, a count for each window's bound, the instance, the")
		p("organizations): %d requests for the %d pages that hold %d users.", last.requests, (last.users+499)/500, last.users)
	}
	p("")
}

// BenchmarkRateLimit runs the rate-limited section alone, on a dev server
// of its own, with the report's users (the backfill's, and the 200 ensure
// created today), and prints its table (make bench writes it with the
// rest).
func BenchmarkRateLimit(b *testing.B) {
	for range b.N {
		server, address, tc := startDevServer(b)
		fake := clerkfake.Start(b)
		fake.PutUsers(backfillUserBase()...)
		for i := range 200 {
			now := time.Now().Truncate(time.Millisecond)
			fake.PutUser(clerkfake.User{ID: fmt.Sprintf("user_bench_ensure%04d", i), CreatedAt: now, UpdatedAt: now})
		}
		if err := fake.Warm(); err != nil {
			b.Fatal(err)
		}
		// binaryEnv's CLERK_API_RPS=0 is overridden by each worker's own.
		env := append(binaryEnv(fake), "TEMPORAL_ADDRESS="+address)
		r := rateLimitedBench(b, tc, fake, testenv.Build(b), env)
		r.markdown(func(format string, args ...any) { fmt.Printf(format+"\n", args...) })
		tc.Close()
		server.stop()
	}
}
