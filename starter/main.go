// Command starter is clerksync's front door: the HTTP service that turns Clerk
// webhooks into Temporal workflows (serve), and operator commands.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"text/tabwriter"

	"go.temporal.io/sdk/converter"

	"github.com/clerksync/clerksync/internal/buildinfo"
	"github.com/clerksync/clerksync/internal/config"
)

// command is one of the starter's subcommands; commands lists them, and
// the usage is made from that list (token.go adds the dev-only token
// outside release builds).
type command struct {
	name, summary string
	run           func(ctx context.Context, args []string, stdout io.Writer, logger *slog.Logger) error
}

var commands = []command{
	{"serve", "run the HTTP service: POST /webhooks/clerk, POST /v1/users/ensure, GET /healthz, /readyz, /metrics, /codec", serveCommand},
	{"send", "sign and POST a Clerk webhook to a running service (for trying it out)",
		func(ctx context.Context, args []string, stdout io.Writer, _ *slog.Logger) error {
			return send(ctx, args, stdout)
		}},
	{"status", "print a user's or an organization's row and workflow as JSON", status},
	{"backfill", "list every Clerk user and organization into the tables, with progress",
		func(ctx context.Context, args []string, stdout io.Writer, logger *slog.Logger) error {
			return backfill(ctx, args, stdout, logger, false)
		}},
	{"reconcile", "backfill, then remove what Clerk confirms gone (behind a safety stop)",
		func(ctx context.Context, args []string, stdout io.Writer, logger *slog.Logger) error {
			return backfill(ctx, args, stdout, logger, true)
		}},
	{"schedule", "run reconciliation on a Temporal Schedule: reconcile --every 24h, list, delete reconcile", schedule},
	{"check-mapping", "check CLERKSYNC_MAPPING against the database before deploying: every table, column, type and NOT NULL", checkMapping},
	{"probe", "exit 0 when a URL answers 200 (a container health check)",
		func(ctx context.Context, args []string, stdout io.Writer, _ *slog.Logger) error {
			return probe(ctx, args, stdout)
		}},
}

func main() {
	logger, err := config.NewLogger(os.Stderr, "starter")
	if err != nil {
		fmt.Fprintln(os.Stderr, "starter: configuration:", err)
		os.Exit(1)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, logger); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		fmt.Fprintln(os.Stderr, "starter:", withPayloadKeysHint(err, os.Getenv("PAYLOAD_KEYS")))
		os.Exit(1)
	}
}

// withPayloadKeysHint says what to set when a command met encrypted
// payloads (a workflow's state or result) without PAYLOAD_KEYS, whose
// error from the SDK names no variable.
func withPayloadKeysHint(err error, payloadKeys string) error {
	if payloadKeys != "" || !errors.Is(err, converter.ErrEncodingIsNotSupported) {
		return err
	}
	return fmt.Errorf("%w: the workflows' payloads are encrypted and PAYLOAD_KEYS is not set here; "+
		"set it as on the worker (make run's local key is LOCAL_PAYLOAD_KEYS in the Makefile, which the README's Try it exports)", err)
}

func run(ctx context.Context, args []string, stdout io.Writer, logger *slog.Logger) error {
	if len(args) > 0 && (args[0] == "--version" || args[0] == "-version") {
		fmt.Fprintln(stdout, buildinfo.String("starter"))
		return nil
	}
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		printUsage(stdout)
		if len(args) == 0 {
			return errors.New("no command given")
		}
		return nil
	}
	for _, c := range commands {
		if c.name == args[0] {
			return c.run(ctx, args[1:], stdout, logger)
		}
	}
	printUsage(stdout)
	return fmt.Errorf("unknown command %q", args[0])
}

// serveCommand runs the HTTP service until SIGINT or SIGTERM.
func serveCommand(ctx context.Context, args []string, stdout io.Writer, logger *slog.Logger) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stdout)
	fs.Usage = func() {
		fmt.Fprint(stdout, "Usage: starter serve\n\nRuns the HTTP service until SIGINT or SIGTERM, then drains in-flight requests.\n\nEnvironment:\n")
		config.PrintVars(stdout, config.Starter)
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := config.Load()
	if err != nil {
		return err
	}
	return serve(ctx, cfg, logger)
}

func printUsage(w io.Writer) {
	fmt.Fprint(w, "Usage: starter <command> [flags]\n\nCommands:\n")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, c := range commands {
		fmt.Fprintf(tw, "  %s\t%s\n", c.name, c.summary)
	}
	fmt.Fprintf(tw, "  --version\tprint the release and commit this starter was built from\n")
	_ = tw.Flush() // w is a terminal or a buffer
	fmt.Fprint(w, "\nRun \"starter <command> --help\" for a command's flags.\n\nEnvironment:\n")
	config.PrintVars(w, config.Starter)
}
