package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/clerksync/clerksync/internal/config"
	"github.com/clerksync/clerksync/internal/store"
	"github.com/clerksync/clerksync/internal/temporalclient"
	"github.com/clerksync/clerksync/starter/ensure"
)

// shutdownGrace is how long in-flight requests get to finish on SIGTERM.
const shutdownGrace = 15 * time.Second

// serve runs the HTTP service until ctx is done, then drains it.
func serve(ctx context.Context, cfg config.Config, logger *slog.Logger) error {
	verifier, err := newSignatureVerifier(cfg.WebhookSecret)
	if err != nil {
		return err
	}
	conns, err := connect(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer conns.Close()

	mux, err := newMux(cfg, verifier, conns, logger)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Addr:              cfg.HTTPAddr,
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	logger.Info("Starter serving", "addr", cfg.HTTPAddr, "task_queue", cfg.TaskQueue)
	select {
	case err := <-errc:
		return fmt.Errorf("http server: %w", err)
	case <-ctx.Done():
	}
	logger.Info("Shutting down: draining in-flight requests", "grace", shutdownGrace)
	shutdownCtx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("http shutdown: %w", err)
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("http server: %w", err)
	}
	return nil
}

// connections are the starter's clients of PostgreSQL and Temporal.
type connections struct {
	store    *store.Store
	temporal client.Client
	// namespace is the Temporal namespace the client works in.
	namespace string
}

// Close closes both clients.
func (c connections) Close() {
	c.temporal.Close()
	c.store.Close()
}

// connect opens the database pool and a lazy Temporal client: neither
// connects yet, so the starter starts (and answers 503 on /readyz) while
// PostgreSQL or Temporal is down.
func connect(ctx context.Context, cfg config.Config, logger *slog.Logger) (connections, error) {
	st, err := store.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		return connections{}, err
	}
	opts, err := temporalclient.Options(logger)
	if err != nil {
		st.Close()
		return connections{}, err
	}
	tc, err := temporalclient.Lazy(opts)
	if err != nil {
		st.Close()
		return connections{}, err
	}
	return connections{store: st, temporal: tc, namespace: opts.Namespace}, nil
}

// newMux wires every endpoint of the starter's HTTP service.
func newMux(cfg config.Config, verifier *signatureVerifier, conns connections, logger *slog.Logger) (*http.ServeMux, error) {
	st, tc := conns.store, conns.temporal
	m := newMetrics()
	mux := http.NewServeMux()
	mux.Handle("POST /webhooks/clerk", &webhookHandler{
		verifier: verifier,
		signaler: userWorkflows{client: tc, taskQueue: cfg.TaskQueue},
		maxBytes: cfg.WebhookMaxBytes,
		metrics:  m,
		logger:   logger,
	})
	ensurer, err := ensure.New(ensure.Options{
		Temporal: tc, Pool: st.Pool(), TaskQueue: cfg.TaskQueue,
		Timeout: cfg.EnsureTimeout,
	})
	if err != nil {
		return nil, err
	}
	eh := &ensureHandler{ensurer: ensurer, logger: logger}
	if cc := cfg.ClerkClient(); cc != nil {
		eh.sessions = newSessionVerifier(cc, cfg.AuthorizedParties)
	}
	mux.Handle("POST /v1/users/ensure", eh)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.Handle("GET /readyz", &readiness{store: st, temporal: tc, namespace: conns.namespace, ensureEnabled: eh.sessions != nil})
	mux.Handle("GET /metrics", m.handler())
	return mux, nil
}
