package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync/atomic"
	"time"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/clerksync/clerksync/internal/config"
	"github.com/clerksync/clerksync/workflows"
)

// progressEvery is how often `starter backfill` asks a run for its progress.
const progressEvery = 500 * time.Millisecond

// backfill starts (or attaches to) a BackfillWorkflow and, unless
// --detach, follows its progress to the end.
func backfill(ctx context.Context, args []string, stdout io.Writer, logger *slog.Logger, reconcile bool) error {
	cmd := "backfill"
	if reconcile {
		cmd = "reconcile"
	}
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	fs.SetOutput(stdout)
	name := fs.String("name", cmd, "run name: the workflow ID is backfill/<name>; a running run of that name is followed, not started again")
	detach := fs.Bool("detach", false, "start the run and return; follow it in the Temporal UI")
	maxDelete := 0
	if reconcile {
		fs.IntVar(&maxDelete, "max-delete", 0, "safety stop: remove none if more than this many would go (default: 100 or 1% of local users, whichever is larger, and at most 10% of them)")
	}
	fs.Usage = func() {
		if reconcile {
			fmt.Fprint(stdout, "Usage: starter reconcile [--name N] [--max-delete N] [--detach]\n\nLists every Clerk user into the users table, as backfill does, then removes the\nlocal users Clerk no longer has, each confirmed by a 404 from GET /v1/users/{id},\nunless more than --max-delete would go.\n\n")
		} else {
			fmt.Fprint(stdout, "Usage: starter backfill [--name N] [--detach]\n\nLists every Clerk user from the Clerk Backend API into the users table, 500 per\npage, under the same rules as webhooks, and shows its progress.\n\n")
		}
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return fmt.Errorf("%s takes no arguments, got %q", cmd, fs.Args())
	}
	cfg, err := config.Load()
	if err != nil {
		return err
	}
	tc, err := dialTemporal(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer tc.Close()
	id := workflows.BackfillWorkflowID(cfg.TaskQueue, *name)
	run, err := tc.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID: id, TaskQueue: cfg.TaskQueue,
		// A running run of this name is followed; a finished one runs again.
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
	}, workflows.BackfillWorkflow, workflows.BackfillInput{Reconcile: reconcile, MaxDelete: maxDelete})
	if err != nil {
		return fmt.Errorf("start %s: %w", id, err)
	}
	fmt.Fprintf(stdout, "%s: run %s (Temporal UI: search WorkflowId = %q)\n", id, run.GetRunID(), id)
	if *detach {
		return nil
	}
	return follow(ctx, tc, run, stdout)
}

// follow shows a run's progress until it ends, then its summary: a
// progress bar on a terminal, a line every few seconds otherwise.
func follow(ctx context.Context, tc client.Client, run client.WorkflowRun, stdout io.Writer) error {
	done := make(chan error, 1)
	var result workflows.BackfillProgress
	go func() { done <- run.Get(ctx, &result) }()
	show := newProgressView(stdout, run.GetID())
	tick := time.NewTicker(progressEvery)
	defer tick.Stop()
	for {
		select {
		case err := <-done:
			show.finish(result, err == nil)
			if err != nil {
				return fmt.Errorf("%s: %w", run.GetID(), err)
			}
			fmt.Fprintln(stdout, summary(run.GetID(), result))
			if result.Phase == workflows.PhaseStopped {
				return errors.New(result.SafetyStop)
			}
			return nil
		case <-ctx.Done():
			show.finish(result, false)
			return fmt.Errorf("stopped following %s; it goes on (starter backfill --name ... follows it again): %w", run.GetID(), ctx.Err())
		case <-tick.C:
			v, err := tc.QueryWorkflow(ctx, run.GetID(), "", workflows.ProgressQuery)
			if err != nil {
				continue // not started yet, or a worker is restarting
			}
			var p workflows.BackfillProgress
			if err := v.Get(&p); err == nil {
				show.update(p)
			}
		}
	}
}

// progressView draws a run's progress.
type progressView struct {
	out      io.Writer
	id       string
	bars     *mpb.Progress // nil when stdout is not a terminal
	bar      *mpb.Bar
	lastLine time.Time
	// windows is the listing's windows done and all, as "3/12 windows"
	// (the bar's decorator reads it from its own goroutine).
	windows atomic.Value
}

func newProgressView(out io.Writer, id string) *progressView {
	v := &progressView{out: out, id: id}
	if f, ok := out.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			v.bars = mpb.New(mpb.WithOutput(out), mpb.WithWidth(40))
		}
	}
	return v
}

func (v *progressView) update(p workflows.BackfillProgress) {
	if v.bars == nil {
		if time.Since(v.lastLine) >= 5*time.Second {
			v.lastLine = time.Now()
			fmt.Fprintln(v.out, progressLine(p))
		}
		return
	}
	if v.bar == nil && p.Total > 0 {
		v.bar = v.bars.AddBar(int64(p.Total),
			mpb.PrependDecorators(decor.Name(v.id+" "), decor.CountersNoUnit("%d / %d users")),
			mpb.AppendDecorators(decor.Percentage(), decor.Name(" "), decor.AverageSpeed(0, "%.0f users/s"), decor.Name(" "), decor.Elapsed(decor.ET_STYLE_GO),
				decor.Any(func(decor.Statistics) string { s, _ := v.windows.Load().(string); return s })))
	}
	v.windows.Store(windowsText(p))
	if v.bar != nil {
		if p.Stats.Seen > p.Total {
			v.bar.SetTotal(int64(p.Stats.Seen), false) // users created since the count
		}
		v.bar.SetCurrent(int64(p.Stats.Seen))
	}
}

func (v *progressView) finish(p workflows.BackfillProgress, ok bool) {
	if v.bars == nil {
		return
	}
	if v.bar != nil {
		if ok {
			v.bar.SetTotal(int64(p.Stats.Seen), true)
		} else {
			v.bar.Abort(false)
		}
	}
	v.bars.Wait()
}

// progressLine is one plain line of progress, for logs and pipes.
func progressLine(p workflows.BackfillProgress) string {
	elapsed := p.UpdatedAt.Sub(p.StartedAt)
	rate := 0.0
	if elapsed > 0 {
		rate = float64(p.Stats.Seen) / elapsed.Seconds()
	}
	pct := 0.0
	if p.Total > 0 {
		pct = 100 * float64(p.Stats.Seen) / float64(p.Total)
	}
	return fmt.Sprintf("%s: %d of %d users (%.0f%%), %.0f users/s, %d pages%s, %d organizations, %d memberships, %d requests (%d rate-limited), elapsed %s",
		p.Phase, p.Stats.Seen, p.Total, pct, rate, p.Stats.Pages, windowsText(p), p.Stats.Organizations, p.Stats.Memberships,
		p.Stats.Requests, p.Stats.RateLimited, elapsed.Round(time.Second))
}

// windowsText says how many of the listing's windows, read side by side,
// are done: " (3/12 windows read)", or "" for a listing read in one.
func windowsText(p workflows.BackfillProgress) string {
	if len(p.Windows) < 2 {
		return ""
	}
	done := 0
	for _, w := range p.Windows {
		if w.Cursor.Done {
			done++
		}
	}
	return fmt.Sprintf(" (%d/%d windows read)", done, len(p.Windows))
}

// summary says what a finished run did.
func summary(id string, p workflows.BackfillProgress) string {
	s := fmt.Sprintf("%s %s in %s: %d users listed; %d created, %d updated, %d unchanged, %d skipped as deleted, %d refused; %d trials; "+
		"%d organizations and %d memberships written; %d Clerk requests (%d rate-limited, %d retried); Clerk instance %s",
		id, p.Phase, p.UpdatedAt.Sub(p.StartedAt).Round(time.Millisecond), p.Stats.Seen, p.Stats.Inserted, p.Stats.Updated,
		p.Stats.Unchanged, p.Stats.Tombstoned, p.Stats.Refused, p.Stats.Trials, p.Stats.Organizations, p.Stats.Memberships,
		p.Stats.Requests, p.Stats.RateLimited, p.Stats.Retried, p.Instance)
	if p.Stats.Refused > 0 {
		s += fmt.Sprintf("\nrefused: PostgreSQL refused %d users' data (every other user was written); the first:", p.Stats.Refused)
		for _, r := range p.Refused {
			s += fmt.Sprintf("\n  %s: %s", r.ClerkID, r.Reason)
		}
	}
	if p.OrganizationsSkipped != "" {
		s += "\norganizations: skipped: " + p.OrganizationsSkipped
	}
	if p.Reconcile {
		s += fmt.Sprintf("\nreconcile: %d local users not in Clerk's listing; %d removed (404 confirmed), %d still in Clerk and written, %d tombstoned with their row kept by a foreign key",
			p.Unseen, p.Removed, p.Restored, p.RowsKept)
		if o := p.OrganizationsOutcome; o != nil {
			s += fmt.Sprintf("\nreconcile: %d organizations and %d memberships not in Clerk's listing; %d organizations removed (404 confirmed), "+
				"%d memberships removed (absent from a second listing), %d still in Clerk and written",
				p.UnseenOrganizations, p.UnseenMemberships, o.RemovedOrganizations, o.RemovedMemberships, o.Restored)
		}
	}
	if p.SafetyStop != "" {
		s += "\nsafety stop: " + p.SafetyStop
	}
	return s
}
