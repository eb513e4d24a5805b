package main

import (
	"context"
	"fmt"
	"log/slog"

	"go.temporal.io/sdk/client"

	"github.com/clerksync/clerksync/internal/config"
	"github.com/clerksync/clerksync/internal/temporalclient"
)

// dialTemporal connects to Temporal for an operator command: at once, so a
// wrong address fails the command instead of hanging it.
func dialTemporal(ctx context.Context, cfg config.Config, logger *slog.Logger) (client.Client, error) {
	opts, err := temporalclient.Options(cfg, logger, nil)
	if err != nil {
		return nil, err
	}
	tc, err := client.DialContext(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("connect to Temporal at %s: %w", opts.HostPort, err)
	}
	return tc, nil
}
