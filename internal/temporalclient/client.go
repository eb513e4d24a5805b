// Package temporalclient builds clerksync's Temporal client, in one place, from
// Temporal's standard environment (TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE,
// TEMPORAL_API_KEY, TEMPORAL_TLS_*), so the same binaries run against the dev
// server, a self-hosted cluster or Temporal Cloud.
package temporalclient

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/contrib/envconfig"
	"go.temporal.io/sdk/temporal"

	"github.com/clerksync/clerksync/internal/config"
	"github.com/clerksync/clerksync/internal/payloadcodec"
	"github.com/clerksync/clerksync/internal/telemetry"
)

// Options reads the client options from Temporal's standard environment,
// and takes from cfg the payloads' keys (PAYLOAD_KEYS; none: plaintext) and
// the requests' compression. The SDK logs through logger and reports its
// metrics to metrics (nil: not at all).
func Options(cfg config.Config, logger *slog.Logger, metrics client.MetricsHandler) (client.Options, error) {
	opts, err := envconfig.LoadDefaultClientOptions()
	if err != nil {
		return client.Options{}, fmt.Errorf("temporal client options: %w", err)
	}
	if opts.HostPort == "" {
		opts.HostPort = config.DefaultTemporalAddress
	}
	if opts.Namespace == "" {
		opts.Namespace = client.DefaultNamespace
	}
	opts.Logger = telemetry.TemporalLogger(logger)
	opts.MetricsHandler = metrics
	opts.ConnectionOptions.GrpcCompression = cfg.TemporalGRPCCompression
	payloadcodec.Apply(&opts, cfg.PayloadKeys)
	return opts, nil
}

// WarnIfPlaintext logs, once at start-up, that payloads go to Temporal
// unencrypted when no PAYLOAD_KEYS are set.
func WarnIfPlaintext(logger *slog.Logger, keys *payloadcodec.Keys) {
	if keys == nil {
		logger.Warn("PAYLOAD_KEYS is not set: users' emails and names are stored in Temporal's history in plaintext; set it to encrypt them")
	}
}

// Lazy returns a client that connects on first use, so a process can start
// (and answer /readyz with "not ready") while Temporal is unreachable.
func Lazy(opts client.Options) (client.Client, error) {
	c, err := client.NewLazyClient(opts)
	if err != nil {
		return nil, fmt.Errorf("temporal client for %s: %w", opts.HostPort, err)
	}
	return c, nil
}

// SearchAttributeCommands are the commands that create keys in namespace
// by hand, for where EnsureSearchAttributes may not: the Temporal CLI's
// (a self-hosted cluster, as an operator with the admin role) and tcld's
// (Temporal Cloud, whose data plane refuses the operator API).
func SearchAttributeCommands(namespace string, keys []temporal.SearchAttributeKey) (cli, cloud string) {
	cli = "temporal operator search-attribute create --namespace " + namespace
	cloud = "tcld namespace search-attributes add --namespace " + namespace
	for _, k := range keys {
		typ := strings.TrimPrefix(k.GetValueType().String(), "INDEXED_VALUE_TYPE_")
		typ = strings.ToUpper(typ[:1]) + strings.ToLower(typ[1:])
		cli += fmt.Sprintf(" --name %s --type %s", k.GetName(), typ)
		cloud += fmt.Sprintf(" --search-attribute %s=%s", k.GetName(), typ)
	}
	return cli, cloud
}

// EnsureSearchAttributes registers the search attributes that are
// missing from the namespace. It needs the operator API: on a self-hosted
// cluster or the dev server it works; on Temporal Cloud create them in the
// Cloud UI or with tcld, and this returns the server's refusal.
func EnsureSearchAttributes(ctx context.Context, c client.Client, namespace string, keys []temporal.SearchAttributeKey) error {
	have, err := c.OperatorService().ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: namespace})
	if err != nil {
		return fmt.Errorf("list search attributes: %w", err)
	}
	missing := map[string]enumspb.IndexedValueType{}
	for _, k := range keys {
		if _, ok := have.GetCustomAttributes()[k.GetName()]; !ok {
			missing[k.GetName()] = k.GetValueType()
		}
	}
	if len(missing) == 0 {
		return nil
	}
	if _, err := c.OperatorService().AddSearchAttributes(ctx, &operatorservice.AddSearchAttributesRequest{
		Namespace: namespace, SearchAttributes: missing,
	}); err != nil {
		return fmt.Errorf("add search attributes: %w", err)
	}
	return nil
}
