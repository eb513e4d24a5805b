package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/clerksync/clerksync/internal/config"
	"github.com/clerksync/clerksync/internal/temporalclient"
	"github.com/clerksync/clerksync/workflows"
)

const scheduleUsage = `Usage:
  starter schedule reconcile --every 24h [--max-delete N]   create or update the reconciliation Schedule
  starter schedule list                                      list clerksync's Schedules on this task queue
  starter schedule delete reconcile                          remove the reconciliation Schedule
`

// schedule manages the Temporal Schedule that runs reconciliation.
func schedule(ctx context.Context, args []string, stdout io.Writer, logger *slog.Logger) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprint(stdout, scheduleUsage)
		if len(args) == 0 {
			return errors.New("schedule needs a subcommand")
		}
		return nil
	}
	cfg, err := config.Load()
	if err != nil {
		return err
	}
	id := workflows.ReconcileScheduleID(cfg.TaskQueue)
	switch args[0] {
	case "reconcile":
		fs := flag.NewFlagSet("schedule reconcile", flag.ContinueOnError)
		fs.SetOutput(stdout)
		every := fs.Duration("every", 24*time.Hour, "how often reconciliation runs")
		maxDelete := fs.Int("max-delete", 0, "safety stop of each run (default: 100 or 1% of local users, whichever is larger)")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		if *every < time.Minute {
			return fmt.Errorf("--every %s: want at least 1m", *every)
		}
		tc, err := dialTemporal(ctx, cfg, logger)
		if err != nil {
			return err
		}
		defer tc.Close()
		if err := ensureReconcileSchedule(ctx, tc, id, cfg.TaskQueue, *every, *maxDelete); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s: reconciliation every %s (workflow %s)\n", id, *every, workflows.BackfillWorkflowID(cfg.TaskQueue, "scheduled-reconcile"))
		return nil
	case "list":
		tc, err := dialTemporal(ctx, cfg, logger)
		if err != nil {
			return err
		}
		defer tc.Close()
		it, err := tc.ScheduleClient().List(ctx, client.ScheduleListOptions{})
		if err != nil {
			return fmt.Errorf("list schedules: %w", err)
		}
		for it.HasNext() {
			e, err := it.Next()
			if err != nil {
				return fmt.Errorf("list schedules: %w", err)
			}
			if !strings.HasSuffix(e.ID, "/"+cfg.TaskQueue) {
				continue
			}
			next := "-"
			if len(e.NextActionTimes) > 0 {
				next = e.NextActionTimes[0].Format(time.RFC3339)
			}
			fmt.Fprintf(stdout, "%s\t%s\tnext %s\tpaused %t\n", e.ID, e.WorkflowType.Name, next, e.Paused)
		}
		return nil
	case "delete":
		if len(args) != 2 || args[1] != "reconcile" {
			fmt.Fprint(stdout, scheduleUsage)
			return errors.New("schedule delete takes one name: reconcile")
		}
		tc, err := dialTemporal(ctx, cfg, logger)
		if err != nil {
			return err
		}
		defer tc.Close()
		if err := tc.ScheduleClient().GetHandle(ctx, id).Delete(ctx); err != nil {
			return fmt.Errorf("delete schedule %s: %w", id, err)
		}
		fmt.Fprintf(stdout, "%s: deleted\n", id)
		return nil
	}
	fmt.Fprint(stdout, scheduleUsage)
	return fmt.Errorf("unknown schedule subcommand %q", args[0])
}

// ensureReconcileSchedule creates the Schedule, or updates its interval and
// run options if it exists.
func ensureReconcileSchedule(ctx context.Context, tc client.Client, id, taskQueue string, every time.Duration, maxDelete int) error {
	return temporalclient.EnsureSchedule(ctx, tc, id, every, &client.ScheduleWorkflowAction{
		ID:        workflows.BackfillWorkflowID(taskQueue, "scheduled-reconcile"),
		Workflow:  workflows.BackfillWorkflow,
		Args:      []any{workflows.BackfillInput{Reconcile: true, MaxDelete: maxDelete}},
		TaskQueue: taskQueue,
	})
}
