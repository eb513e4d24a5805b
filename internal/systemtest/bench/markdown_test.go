package bench

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/clerksync/clerksync/internal/clerkevent"
	"github.com/clerksync/clerksync/internal/config"
	"github.com/clerksync/clerksync/internal/testsupport/cluster"
)

// markdown renders the report as docs/benchmarks.md.
func (r report) markdown() string {
	var w strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&w, format+"\n", args...) }
	n := r.users
	p("# Benchmarks")
	p("")
	p("Written by `make bench` (`internal/systemtest/bench`) on %s: %d cores, %s, PostgreSQL %s,", r.date, r.cores, r.goVersion, r.postgres)
	p("the Temporal CLI's dev server (%s, in-memory), clerksync's worker and starter as", r.temporalCLI)
	p("built binaries at their default settings. Every figure below comes from this one run,")
	p("side by side, on one server where a section does not say otherwise; the machine's two cores are shared by the server,")
	p("the worker, the starter, PostgreSQL and the senders, so ingest and processing trade off.")
	p("")
	p("## Temporal work per sync")
	p("")
	p("History events across every execution carrying the user's `ClerkUserId`:")
	p("")
	p("| sync | events | budget |")
	p("| --- | --- | --- |")
	p("| signup (`user.created`, row and trial) | %d | 10 |", r.signupEvents)
	p("| a later `user.updated` | %d | 10 |", r.updateEvents)
	p("| signup into the Prisma example's tables, mapped | %d | 10 |", r.mappedSignupEvents)
	p("| a later `user.updated` there | %d | 10 |", r.mappedUpdateEvents)
	p("")
	r.throughputMarkdown(p)
	r.settingSections(p)
	bf := r.backfill
	bfRate := float64(bf.users) / bf.elapsed.Seconds()
	loopRate := float64(bf.users) / bf.loopElapsed.Seconds()
	p("## Backfill: %d users", bf.users)
	p("")
	p("`BackfillWorkflow` listing the fake Clerk Backend API (500 users a page, the worker's")
	p("`CLERK_API_RPS` lifted; the fake's JSON encoded before the clock starts, as Clerk's")
	p("servers would do it elsewhere) into the table, and then into the Prisma example's")
	p("tables, each once autovacuum has finished with the phases before it: users Clerk")
	p("created 30 days ago, an existing user base whose 14-day trials have ended, so rows")
	p("and no trials;")
	p("beside the same users written by a loop of single-row upserts (`store.UpsertUser`,")
	p("one at a time, as a one-shot script would) into a database of its own:")
	p("")
	p("| | users/s | elapsed | Clerk requests | Temporal history events |")
	p("| --- | --- | --- | --- | --- |")
	p("| `BackfillWorkflow` | %.0f | %s | %d (%d pages) | %d |", bfRate, bf.elapsed.Round(time.Millisecond), bf.requests, bf.pages, bf.events)
	p("| loop of single-row upserts | %.0f | %s | - | - |", loopRate, bf.loopElapsed.Round(time.Millisecond))
	if mb := r.mappedBackfill; mb.users > 0 {
		p("| `BackfillWorkflow` into the Prisma example's tables, mapped | %.0f | %s | %d (%d pages) | %d |",
			float64(mb.users)/mb.elapsed.Seconds(), mb.elapsed.Round(time.Millisecond), mb.requests, mb.pages, mb.events)
	}
	p("")
	p("The backfill is %.1fx the loop.", bfRate/loopRate)
	p("")
	r.limited.markdown(p)
	scaleMarkdown(r.scale, p)
	if cr := r.cluster; len(cr.rounds) > 0 {
		per := perThousand(n)
		p("## On a production-shaped Temporal")
		p("")
		p("The cluster of `make test-cluster` (`internal/testsupport/cluster`): temporal-server %s,", cluster.ServerVersion)
		p("each of its four services a process, on PostgreSQL with SQL visibility, %d history shards,", cr.shards)
		p("every client over mutual TLS. In each round the same raw baseline and the same %d signups,", n)
		p("through one starter, applied by one worker or two, in turn (the second round in the first's")
		p("reverse order); the machine's two cores now also run four server processes in place of one.")
		p("A webhook the starter answered 503 (Temporal did not take it within the starter's timeout)")
		p("was sent again a second later, as Svix would; its ack time includes the wait:")
		p("")
		p("| | end-to-end | vs raw | ingest (acks) | vs raw | ack p99 | 503s retried | tasks failed `UnhandledCommand` | server CPU s / 1,000 | workers' CPU s / 1,000 |")
		p("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
		var raw, one clusterSums
		for i, round := range cr.rounds {
			rw := round.raw
			raw.add(rw, n)
			p("| round %d: raw signal-with-start, trivial workflow | %.0f/s | 1.00x | %.0f/s | 1.00x | %s | - | - | %s | (in the benchmark process) |",
				i+1, rw.rate(n), rw.ingestRate(n), ms(rw.ack.pct(99)), per(serverCPU(rw)))
			for _, wr := range round.workers {
				if wr.workers == 1 {
					one.add(wr.phase, n)
				}
				p("| round %d: clerksync, %d worker%s | %.0f/s | %.2fx | %.0f/s | %.2fx | %s | %d | %d | %s | %s |", i+1, wr.workers, plural(wr.workers),
					wr.phase.rate(n), wr.phase.rate(n)/rw.rate(n), wr.phase.ingestRate(n), wr.phase.ingestRate(n)/rw.ingestRate(n),
					ms(wr.phase.ack.pct(99)), wr.phase.retried, wr.phase.unhandled, per(serverCPU(wr.phase)), per(workerCPU(wr.phase)))
			}
		}
		p("")
		p("Over both rounds, clerksync's signups with one worker against the raw baseline: end-to-end %.2fx, ingest %.2fx,",
			one.rate/raw.rate, one.ingest/raw.ingest)
		p("Temporal server CPU per event %.2fx.", one.cpu.Seconds()/raw.cpu.Seconds())
		devRaw, devClerk := meanRates(r.throughput, n)
		k := float64(len(cr.rounds))
		p("Beside the dev server's throughput section in this run (the mean of each side's rounds): raw signal-with-start %.2fx,",
			raw.rate/k/devRaw)
		p("clerksync signup %.2fx (one worker).", one.rate/k/devClerk)
		p("")
	}
	p("## Ensure over HTTP (session token verified)")
	p("")
	p("| path | p50 | p99 | calls |")
	p("| --- | --- | --- | --- |")
	p("| fast (the row exists) | %s | %s | %d |", ms(r.ensureFast.pct(50)), ms(r.ensureFast.pct(99)), len(r.ensureFast))
	p("| slow (no row: signal-with-start, minimal row, wait) | %s | %s | %d |", ms(r.ensureSlow.pct(50)), ms(r.ensureSlow.pct(99)), len(r.ensureSlow))
	p("")
	p("## Connection pool size")
	p("")
	p("64 writers drain 10,000 new-user upserts (each one transaction under the per-user")
	p("advisory lock, with the trial), as the worker does when PostgreSQL returns after an")
	p("outage:")
	p("")
	p("| pool (`pool_max_conns`) | writes/s |")
	p("| --- | --- |")
	p("| 4 (pgxpool's default on 2 cores) | %.0f |", r.pool[4])
	p("| 16 (clerksync's default) | %.0f |", r.pool[16])
	p("")
	p("`go test -run XXX -bench PoolSize -benchtime 20000x ./internal/store` compares 4, 8, 16")
	p("and 32 connections without the rest of the system running: on 2 cores, 16 drained")
	p("35-45%% faster than 4 there, and 32 no faster than 16.")
	return w.String()
}

// throughputMarkdown is the throughput section: each round of the raw
// baseline beside clerksync's signups, and the ratios over both.
func (r report) throughputMarkdown(p func(string, ...any)) {
	p("## Throughput: %d new users, %d senders", r.users, senders)
	p("")
	p("The raw baseline is a trivial entity workflow (signal-with-start, take the signal,")
	p("complete), with a worker polling like clerksync's. clerksync's figure is signed")
	p("`user.created` webhooks through the starter, until every user's row and trial")
	p("subscription is in PostgreSQL. Every phase runs on a dev server of its own, started")
	p("for it (clerksync's also on a database of its own): on one server shared by every")
	p("phase, the server's CPU per event grew with the histories the phases before had left,")
	p("by as much as the gap measured. Each dev server runs with `system.forceSearchAttributesCacheRefreshOnRead`")
	p("off: the CLI turns it on, so that a new search attribute shows at once, and then every request")
	p("carrying one reads the cluster's metadata from the database; a production server caches them.")
	p("%d rounds, each in the one before's reverse order, each", len(r.throughput))
	p("clerksync figure beside the raw one of its round; CPU seconds per 1,000 events (one")
	p("event: one webhook, or one raw signal-with-start), the machine's summed over every")
	p("process and core (`/proc/stat`), with the share of the cores' time it was busy:")
	p("")
	r.throughputTable(p, r.throughput)
	if len(r.ownCore) == 0 {
		return
	}
	p("### The server on a core of its own")
	p("")
	p("The same phases in %d more round%s, with the dev server's process pinned to one core and the", len(r.ownCore), plural(len(r.ownCore)))
	p("benchmark, the worker, the starter and pgbench to the other (`taskset`; PostgreSQL, the")
	p("machine's own service, still runs on either). Above, whatever runs beside the server takes")
	p("its core from it, and clerksync's phases always run a worker, a starter and PostgreSQL")
	p("there, while the raw baseline runs nothing but the benchmark; here each side's figures are")
	p("the server's own work:")
	p("")
	r.throughputTable(p, r.ownCore)
}

// throughputTable is one set of the throughput section's rounds: each
// phase's figures, and clerksync's against the raw baseline's over them.
func (r report) throughputTable(p func(string, ...any), rounds []throughputRound) {
	n := r.users
	per := perThousand(n)
	p("| | end-to-end | vs raw | ingest (acks) | vs raw | ack p50 | ack p99 | server CPU | worker CPU | starter CPU | machine CPU (busy) |")
	p("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
	machine := func(ph phase) string {
		return fmt.Sprintf("%s (%.0f%%)", per(ph.machine.busy), 100*ph.machine.busyShare())
	}
	var rawMachine, clerkMachine machineCPU
	var raw, clerk, rawIn, clerkIn float64
	var rawCPU, stateCPU, clerkCPU, loadedCPU time.Duration
	var e2eRatios, cpuRatios []float64
	unhandled, failed := 0, 0
	for i, tr := range rounds {
		p("| round %d: raw signal-with-start, trivial workflow | %.0f/s | 1.00x | %.0f/s | 1.00x | %s | %s | %s | (in the benchmark process) | - | %s |",
			i+1, tr.raw.rate(n), tr.raw.ingestRate(n), ms(tr.raw.ack.pct(50)), ms(tr.raw.ack.pct(99)), per(tr.raw.cpu["server"]), machine(tr.raw))
		ws := tr.withState
		p("| round %d: the same, started with clerksync's search attributes, one upsert | %.0f/s | %.2fx | %.0f/s | %.2fx | %s | %s | %s | (in the benchmark process) | - | %s |",
			i+1, ws.rate(n), ws.rate(n)/tr.raw.rate(n), ws.ingestRate(n), ws.ingestRate(n)/tr.raw.ingestRate(n),
			ms(ws.ack.pct(50)), ms(ws.ack.pct(99)), per(ws.cpu["server"]), machine(ws))
		stateCPU += ws.cpu["server"]
		p("| round %d: clerksync signup (webhook to row and trial) | %.0f/s | %.2fx | %.0f/s | %.2fx | %s | %s | %s | %s | %s | %s |",
			i+1, tr.clerk.rate(n), tr.clerk.rate(n)/tr.raw.rate(n), tr.clerk.ingestRate(n), tr.clerk.ingestRate(n)/tr.raw.ingestRate(n),
			ms(tr.clerk.ack.pct(50)), ms(tr.clerk.ack.pct(99)), per(tr.clerk.cpu["server"]), per(tr.clerk.cpu["worker"]), per(tr.clerk.cpu["starter"]),
			machine(tr.clerk))
		if ld := tr.loaded; ld.done > 0 {
			p("| round %d: the raw baseline beside a PostgreSQL load (pgbench, %d transactions/s) | %.0f/s | %.2fx | %.0f/s | %.2fx | %s | %s | %s | (in the benchmark process) | - | %s |",
				i+1, pgLoadTPS, ld.rate(n), ld.rate(n)/tr.raw.rate(n), ld.ingestRate(n), ld.ingestRate(n)/tr.raw.ingestRate(n),
				ms(ld.ack.pct(50)), ms(ld.ack.pct(99)), per(ld.cpu["server"]), machine(ld))
			loadedCPU += ld.cpu["server"]
		}
		raw, clerk = raw+tr.raw.rate(n), clerk+tr.clerk.rate(n)
		rawIn, clerkIn = rawIn+tr.raw.ingestRate(n), clerkIn+tr.clerk.ingestRate(n)
		rawCPU, clerkCPU = rawCPU+tr.raw.cpu["server"], clerkCPU+tr.clerk.cpu["server"]
		rawMachine, clerkMachine = rawMachine.plus(tr.raw.machine), clerkMachine.plus(tr.clerk.machine)
		unhandled, failed = unhandled+tr.clerk.unhandled, failed+tr.clerk.failed
		e2eRatios = append(e2eRatios, tr.clerk.rate(n)/tr.raw.rate(n))
		cpuRatios = append(cpuRatios, tr.clerk.cpu["server"].Seconds()/tr.raw.cpu["server"].Seconds())
	}
	p("")
	if raw > 0 && rawCPU > 0 {
		p("Over the %d round%s, clerksync's signups against the raw baseline: end-to-end %.2fx (the rounds' %s),",
			len(rounds), plural(len(rounds)), clerk/raw, spread(e2eRatios))
		p("ingest %.2fx, Temporal server CPU per event %.2fx (the rounds' %s); the trivial workflow with", clerkIn/rawIn, clerkCPU.Seconds()/rawCPU.Seconds(), spread(cpuRatios))
		p("clerksync's search attributes and one upsert in the task that completes the run (7 events")
		p("against 6) costs the server %.2fx.", stateCPU.Seconds()/rawCPU.Seconds())
		if rawMachine.busy > 0 {
			p("Every process on the machine together (the server, the benchmark, PostgreSQL and, in clerksync's")
			p("phases, its worker and starter) used %.2fx raw's CPU per event in clerksync's phases; the", clerkMachine.busy.Seconds()/rawMachine.busy.Seconds())
			p("cores were busy %.0f%% of raw's phases and %.0f%% of clerksync's. Where both sides keep the", 100*rawMachine.busyShare(), 100*clerkMachine.busyShare())
			p("cores busy, that ratio, not the server's own CPU, sets how far clerksync's rate stays under raw's.")
		}
		if loadedCPU > 0 {
			p("The raw baseline's own work beside the PostgreSQL load costs the server %.2fx: how far the server's", loadedCPU.Seconds()/rawCPU.Seconds())
			p("CPU per event moves with what else the two cores run (clerksync's phases run its worker, its")
			p("starter and PostgreSQL beside the server; the raw baseline's, nothing but the benchmark).")
		}
		p("")
	}
	p("Workflow tasks failed over every run of the %d signups: %d with `UnhandledCommand` (an event", n*len(rounds), unhandled)
	p("arrived as the task completed the run, and the task ran again), %d for any other cause.", failed)
	p("")
}

// perThousand formats CPU time spent on n events as seconds per 1,000.
func perThousand(n int) func(time.Duration) string {
	return func(d time.Duration) string { return fmt.Sprintf("%.2f", d.Seconds()*1000/float64(n)) }
}

// spread is the range of ratios, as "0.71x to 0.88x".
func spread(ratios []float64) string {
	if len(ratios) == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2fx to %.2fx", slices.Min(ratios), slices.Max(ratios))
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// clusterSums adds up phases of the cluster's rounds: their end-to-end
// and ingest rates, and the server's CPU time.
type clusterSums struct {
	rate, ingest float64
	cpu          time.Duration
}

func (c *clusterSums) add(p phase, n int) {
	c.rate, c.ingest, c.cpu = c.rate+p.rate(n), c.ingest+p.ingestRate(n), c.cpu+serverCPU(p)
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000) }

// workflowsUser is a new user as a signup brings it.
func workflowsUser(clerkID string) clerkevent.User {
	now := time.Now().Truncate(time.Millisecond).UTC()
	return clerkevent.User{ClerkID: clerkID, ClerkCreatedAt: now, ClerkUpdatedAt: now}
}

// quietLogger drops the SDK's logs.
type quietLogger struct{}

func (quietLogger) Debug(string, ...any) {}
func (quietLogger) Info(string, ...any)  {}
func (quietLogger) Warn(string, ...any)  {}
func (quietLogger) Error(string, ...any) {}

// settingSections writes the sections that compare a setting of the
// worker and the starter: pollers, encryption, compression, and the
// tables written.
func (r report) settingSections(p func(string, ...any)) {
	n := r.users
	const settingsMethod = "each phase on a dev server and a database of its own, as the throughput section's, the second " +
		"round in the first's reverse order; CPU seconds per 1,000 signups"
	p("## Worker workflow task pollers")
	p("")
	p("The same %d signups per round, the worker started with each `WORKER_WORKFLOW_POLLERS`", n)
	p("value; %s:", settingsMethod)
	p("")
	settingsMarkdown(p, "pollers", r.pollerRounds, n)
	p("")
	p("## Payload encryption")
	p("")
	p("The same %d signups per round, worker and starter started with and without", n)
	p("`PAYLOAD_KEYS` (AES-256-GCM on every payload); %s:", settingsMethod)
	p("")
	settingsMarkdown(p, "payloads", r.encryptionRounds, n)
	p("")
	p("## gRPC compression")
	p("")
	p("The same %d signups per round, worker and starter started with each", n)
	p("`TEMPORAL_GRPC_COMPRESSION`: `gzip`, the Temporal SDK's default, compresses every request")
	p("and the server every answer, `none` neither (clerksync's default is `%s`, and the raw baselines", config.DefaultTemporalGRPCCompression)
	p("above send as it does); %s:", settingsMethod)
	p("")
	settingsMarkdown(p, "compression", r.compressionRounds, n)
	p("")
	p("## An app's own tables, mapped")
	p("")
	p("The same %d signups per round into clerksync's own tables and into the Prisma example's", n)
	p("(`docs/examples/prisma`, `CLERKSYNC_MAPPING`: `User` and `Subscription`); %s:", settingsMethod)
	p("")
	settingsMarkdown(p, "tables", r.mappingRounds, n)
	var own, mapped float64
	for _, sr := range r.mappingRounds {
		switch sr.setting {
		case ownTablesLabel:
			own += sr.phase.rate(n)
		case mappedTablesLabel:
			mapped += sr.phase.rate(n)
		}
	}
	if own > 0 {
		p("")
		p("Mapped end-to-end over both rounds: %.2fx clerksync's own tables.", mapped/own)
	}
	p("")
}

// settingsMarkdown writes rounds' table, one row a phase, CPU seconds per
// 1,000 signups.
func settingsMarkdown(p func(string, ...any), column string, rounds []settingRound, n int) {
	per := perThousand(n)
	p("| round | %s | end-to-end | ingest (acks) | ack p50 | ack p99 | server CPU | worker CPU | starter CPU |", column)
	p("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
	for i, sr := range rounds {
		ph := sr.phase
		p("| %d | %s | %.0f/s | %.0f/s | %s | %s | %s | %s | %s |", i/2+1, sr.setting, ph.rate(n), ph.ingestRate(n),
			ms(ph.ack.pct(50)), ms(ph.ack.pct(99)), per(ph.cpu["server"]), per(ph.cpu["worker"]), per(ph.cpu["starter"]))
	}
}
