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

	"go.temporal.io/sdk/converter"

	"github.com/clerksync/clerksync/internal/config"
)

const usage = `Usage: starter <command> [flags]

Commands:
  serve   run the HTTP service: POST /webhooks/clerk, POST /v1/users/ensure,
          GET /healthz, /readyz, /metrics
  send       sign and POST a Clerk user webhook to a running service (for trying it out)
  token      print a session token from make run's local Clerk stand-in (for trying ensure)
  status     print a user's row and workflows as JSON
  backfill   list every Clerk user into the users table, with progress
  reconcile  backfill, then remove the local users Clerk confirms gone (behind a safety stop)
  schedule   run reconciliation on a Temporal Schedule: reconcile --every 24h, list, delete reconcile
  probe      exit 0 when a URL answers 200 (a container health check)

Run "starter <command> --help" for a command's flags.

Environment:
`

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
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		printUsage(stdout)
		if len(args) == 0 {
			return errors.New("no command given")
		}
		return nil
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "serve":
		fs := flag.NewFlagSet("serve", flag.ContinueOnError)
		fs.SetOutput(stdout)
		fs.Usage = func() {
			fmt.Fprint(stdout, "Usage: starter serve\n\nRuns the HTTP service until SIGINT or SIGTERM, then drains in-flight requests.\n\nEnvironment:\n")
			config.PrintVars(stdout, config.Starter)
		}
		if err := fs.Parse(rest); err != nil {
			return err
		}
		cfg, err := config.Load()
		if err != nil {
			return err
		}
		return serve(ctx, cfg, logger)
	case "send":
		return send(ctx, rest, stdout)
	case "token":
		return token(ctx, rest, stdout)
	case "status":
		return status(ctx, rest, stdout, logger)
	case "backfill":
		return backfill(ctx, rest, stdout, logger, false)
	case "reconcile":
		return backfill(ctx, rest, stdout, logger, true)
	case "schedule":
		return schedule(ctx, rest, stdout, logger)
	case "probe":
		return probe(ctx, rest, stdout)
	default:
		printUsage(stdout)
		return fmt.Errorf("unknown command %q", cmd)
	}
}

func printUsage(w io.Writer) {
	fmt.Fprint(w, usage)
	config.PrintVars(w, config.Starter)
}
