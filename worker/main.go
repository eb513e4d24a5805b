// Command worker runs clerksync's Temporal worker: it applies the database
// migrations, registers the search attributes it needs, then polls the task
// queue until SIGINT or SIGTERM. It is stateless; run more for more capacity.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/clerksync/clerksync/activities"
	"github.com/clerksync/clerksync/ensure/contract"
	"github.com/clerksync/clerksync/internal/buildinfo"
	"github.com/clerksync/clerksync/internal/config"
	"github.com/clerksync/clerksync/internal/errreport"
	"github.com/clerksync/clerksync/internal/store"
	"github.com/clerksync/clerksync/internal/store/migrations"
	"github.com/clerksync/clerksync/internal/syncworker"
	"github.com/clerksync/clerksync/internal/telemetry"
	"github.com/clerksync/clerksync/internal/temporalclient"
)

func main() {
	// --help is asked for: it goes to stdout, like the starter's.
	flag.CommandLine.SetOutput(os.Stdout)
	flag.Usage = func() {
		fmt.Fprint(flag.CommandLine.Output(), `Usage: worker [--version]

Applies clerksync's database migrations, then runs the Temporal worker that
executes the user workflows and writes PostgreSQL, until SIGINT or SIGTERM.

Flags:
  --version  print the release and commit this worker was built from, and exit

Environment:
`)
		config.PrintVars(flag.CommandLine.Output(), config.Worker)
	}
	version := flag.Bool("version", false, "print the release and commit this worker was built from, and exit")
	flag.Parse()
	if *version {
		fmt.Println(buildinfo.String("worker"))
		return
	}
	logger, err := config.NewLogger(os.Stderr, "worker")
	if err != nil {
		fmt.Fprintln(os.Stderr, "worker: configuration:", err)
		os.Exit(1)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, logger); err != nil {
		fmt.Fprintln(os.Stderr, "worker:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, logger *slog.Logger) error {
	cfg, err := config.Load()
	if err != nil {
		return err
	}
	logger, flushReports, err := errreport.Wrap(logger, cfg.ErrorReports("worker"))
	if err != nil {
		return err
	}
	defer flushReports()
	reg := telemetry.NewRegistry()
	sdkMetrics, err := telemetry.TemporalMetrics(reg)
	if err != nil {
		return err
	}
	metrics, err := activities.NewMetrics(reg)
	if err != nil {
		return err
	}
	st, err := store.Open(ctx, cfg.DatabaseURL, cfg.Layout())
	if err != nil {
		return err
	}
	defer st.Close()
	if err := telemetry.Register(reg, telemetry.PoolCollector(st.Pool())); err != nil {
		return err
	}
	// Health and metrics are served from the start: /readyz says what the
	// worker still waits for.
	ready := &readiness{store: st}
	stopHTTP, err := serveHTTP(cfg.WorkerHTTPAddr, reg, ready, logger)
	if err != nil {
		return err
	}
	defer stopHTTP()
	// A worker started while PostgreSQL or Temporal is still coming up (or
	// briefly gone) waits for it rather than exiting: nothing is lost while
	// it waits, since Temporal holds every event.
	if err := retry(ctx, logger, "migrate the database", func() error { return migrations.Apply(ctx, st) }, migrations.IsPermanent); err != nil {
		return err
	}
	logger.Info("Database migrated")

	temporalclient.WarnIfPlaintext(logger, cfg.PayloadKeys)
	opts, err := temporalclient.Options(cfg, logger, sdkMetrics)
	if err != nil {
		return err
	}
	var c client.Client
	if err := retry(ctx, logger, "connect to Temporal at "+opts.HostPort, func() (err error) {
		c, err = client.DialContext(ctx, opts)
		return err
	}, nil); err != nil {
		return err
	}
	defer c.Close()
	ready.temporal.Store(&c)
	if err := temporalclient.EnsureSearchAttributes(ctx, c, opts.Namespace, contract.SearchAttributeKeys); err != nil {
		// Not fatal: on Temporal Cloud they are created with tcld or in the
		// Cloud UI, and the starter's signal-with-start says clearly if one
		// is missing.
		cli, cloud := temporalclient.SearchAttributeCommands(opts.Namespace, contract.SearchAttributeKeys)
		logger.Warn("Could not register the search attributes clerksync needs; create them once with the command for your Temporal",
			"error", err, "self_hosted", cli, "temporal_cloud", cloud)
	}

	if cfg.ClerkClient() == nil {
		logger.Warn("CLERK_SECRET_KEY is not set: ensured users keep their minimal row until it is")
	}
	// The Schedules are set up beside polling, retried until they are: the
	// server's Schedules (its worker service) can be down while user
	// workflows run, and users' syncs need not wait for trial expiry.
	go func() {
		_ = retry(ctx, logger, "set up the trial-expiry Schedule", func() error {
			return syncworker.EnsureTrialExpirySchedule(ctx, c, cfg.TaskQueue, cfg.TrialExpiryInterval)
		}, nil)
	}()
	go func() {
		if cfg.EraseDeletedHistories {
			_ = retry(ctx, logger, "set up the erasure Schedule", func() error {
				return syncworker.EnsureErasureSchedule(ctx, c, cfg.TaskQueue, cfg.ErasureInterval)
			}, nil)
			return
		}
		_ = retry(ctx, logger, "remove the erasure Schedule (ERASE_DELETED_HISTORIES=false)", func() error {
			return syncworker.RemoveErasureSchedule(ctx, c, cfg.TaskQueue)
		}, nil)
	}()
	w := syncworker.New(c, syncworker.Options{
		TaskQueue: cfg.TaskQueue, Store: st, Clerk: cfg.ClerkClient(), ClerkRPS: cfg.ClerkAPIRPS, BackfillWindows: cfg.BackfillWindows,
		TrialPeriod: cfg.TrialPeriod, WorkflowPollers: cfg.WorkflowPollers, Metrics: metrics,
		KeepHistories: !cfg.EraseDeletedHistories,
	})
	logger.Info("Worker polling", "task_queue", cfg.TaskQueue, "namespace", opts.Namespace,
		"version", buildinfo.Version, "commit", buildinfo.CommitOrUnknown())
	// Run returns on ctx's end (SIGINT, SIGTERM) after finishing running
	// activities, or on an error the worker cannot recover from (the
	// namespace does not exist, the server refuses this client): then the
	// process ends with the cause rather than living on without polling.
	ready.polling.Store(true)
	err = w.Run(interrupted(ctx))
	ready.polling.Store(false)
	if err != nil {
		return fmt.Errorf("worker stopped polling %s in namespace %s at %s: %w",
			cfg.TaskQueue, opts.Namespace, opts.HostPort, err)
	}
	logger.Info("Worker stopped")
	return nil
}

// interrupted adapts ctx's end to the channel worker.Run waits on.
func interrupted(ctx context.Context) <-chan any {
	ch := make(chan any, 1)
	context.AfterFunc(ctx, func() { ch <- struct{}{} })
	return ch
}

// retry calls fn until it succeeds or ctx ends, backing off up to 30 s; an
// error permanent (when set) says can never pass ends it at once.
func retry(ctx context.Context, logger *slog.Logger, what string, fn func() error, permanent func(error) bool) error {
	for wait := time.Second; ; wait = min(2*wait, 30*time.Second) {
		err := fn()
		if err == nil {
			return nil
		}
		if permanent != nil && permanent(err) {
			return fmt.Errorf("%s: %w", what, err)
		}
		logger.Warn("Could not "+what+"; retrying", "retry_in", wait.String(), "error", err)
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: %w", what, err)
		case <-time.After(wait):
		}
	}
}
