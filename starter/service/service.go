// Package service is the starter's HTTP service: the Clerk webhook
// endpoint, the ensure endpoint for backends in other languages, and health,
// readiness and metrics. `starter serve` runs it; the whole-system tests
// drive it in-process.
package service

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"go.temporal.io/sdk/client"

	"github.com/clerksync/clerksync/ensure"
	"github.com/clerksync/clerksync/internal/config"
	"github.com/clerksync/clerksync/internal/payloadcodec"
	"github.com/clerksync/clerksync/internal/payloadcodec/oidcauth"
	"github.com/clerksync/clerksync/internal/store"
	"github.com/clerksync/clerksync/internal/telemetry"
	"github.com/clerksync/clerksync/internal/temporalclient"
)

// Connections are the starter's clients of PostgreSQL and Temporal.
type Connections struct {
	Store    *store.Store
	Temporal client.Client
	// Namespace is the Temporal namespace the client works in.
	Namespace string
	// Registry holds the process's metrics, the Temporal client's among
	// them; NewMux adds the starter's and serves it on /metrics. Nil: NewMux
	// starts an empty one.
	Registry *prometheus.Registry
}

// Close closes both clients.
func (c Connections) Close() {
	c.Temporal.Close()
	c.Store.Close()
}

// Connect opens the database pool and a lazy Temporal client: neither
// connects yet, so the starter starts (and answers 503 on /readyz) while
// PostgreSQL or Temporal is down.
func Connect(ctx context.Context, cfg config.Config, logger *slog.Logger) (Connections, error) {
	st, err := store.Open(ctx, cfg.DatabaseURL, cfg.Layout())
	if err != nil {
		return Connections{}, err
	}
	reg := telemetry.NewRegistry()
	sdkMetrics, err := telemetry.TemporalMetrics(reg)
	if err == nil {
		err = telemetry.Register(reg, telemetry.PoolCollector(st.Pool()))
	}
	if err != nil {
		st.Close()
		return Connections{}, err
	}
	opts, err := temporalclient.Options(cfg, logger, sdkMetrics)
	if err != nil {
		st.Close()
		return Connections{}, err
	}
	tc, err := temporalclient.Lazy(opts)
	if err != nil {
		st.Close()
		return Connections{}, err
	}
	return Connections{Store: st, Temporal: tc, Namespace: opts.Namespace, Registry: reg}, nil
}

// NewMux wires every endpoint of the starter's HTTP service.
func NewMux(cfg config.Config, verifier *SignatureVerifier, conns Connections, logger *slog.Logger) (*http.ServeMux, error) {
	st, tc := conns.Store, conns.Temporal
	reg := conns.Registry
	if reg == nil {
		reg = telemetry.NewRegistry()
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, fmt.Errorf("starter metrics: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("POST /webhooks/clerk", &webhookHandler{
		verifier: verifier,
		signaler: entityWorkflows{client: tc, taskQueue: cfg.TaskQueue},
		maxBytes: cfg.WebhookMaxBytes,
		metrics:  m,
		logger:   logger,
		// Without organization tables (a mapping), organization events
		// are acknowledged and not applied.
		organizationsOff: st.Mapping().OrganizationsOff(),
		trim:             st.Mapping().TrimEvent,
		instance:         &recordedInstance{read: st.RecordedClerkInstance},
	})
	ensurer, err := ensure.New(ensure.Options{
		Temporal: tc, Pool: st.Pool(), Schema: cfg.Schema, MappingFile: cfg.MappingFile, TaskQueue: cfg.TaskQueue,
		Timeout: cfg.EnsureTimeout, Metrics: m.ensure,
	})
	if err != nil {
		return nil, err
	}
	eh := &ensureHandler{ensurer: ensurer, logger: logger}
	for _, k := range cfg.EnsureAPIKeys {
		eh.apiKeys = append(eh.apiKeys, []byte(k))
	}
	if cc := cfg.ClerkClient(); cc != nil {
		eh.sessions = newSessionVerifier(cc, cfg.AuthorizedParties, m.jwksFetches)
		if len(eh.apiKeys) == 0 {
			logger.Warn("ENSURE_API_KEYS is not set: ensure takes a user's session token alone, which the user's browser holds too, " +
				"so a signed-in user can call it from outside the product's backend; set ENSURE_API_KEYS and send one from the backend " +
				"in the " + APIKeyHeader + " header (docs/integrating.md)")
		}
	} else {
		logger.Warn("Ensure answers 503 until CLERK_SECRET_KEY is set: it verifies session tokens with Clerk's keys")
	}
	mux.Handle("POST /v1/users/ensure", eh)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.Handle("GET /readyz", &readiness{store: st, temporal: tc, namespace: conns.Namespace, ensureEnabled: eh.sessions != nil, ready: m.ready})
	mux.Handle("GET /metrics", telemetry.Handler(reg))
	mux.Handle("GET /openapi.json", &openAPIHandler{store: st, logger: logger})
	codecOpts := payloadcodec.ServerOptions{AuthToken: cfg.CodecAuthToken, CORSOrigins: cfg.CodecCORSOrigins}
	if cfg.CodecOIDCIssuer != "" {
		v, err := oidcauth.NewVerifier(cfg.CodecOIDCIssuer, cfg.CodecOIDCAudience)
		if err != nil {
			return nil, err
		}
		codecOpts.AccessTokens = v
	}
	mux.Handle("/codec/", payloadcodec.Handler(cfg.PayloadKeys, codecOpts))
	return mux, nil
}
