package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.temporal.io/sdk/client"

	"github.com/clerksync/clerksync/internal/store"
	"github.com/clerksync/clerksync/internal/telemetry"
)

// readinessTimeout bounds each dependency check of /readyz.
const readinessTimeout = 2 * time.Second

// readiness answers /readyz: 200 once the worker polls its task queue,
// both PostgreSQL and Temporal answer and the mapping (CLERKSYNC_MAPPING)
// still fits the product's tables, checked against the catalog on every
// probe; 503 with the reasons otherwise (while it migrates or waits for a
// dependency at start-up, during an outage, after a product migration
// dropped a mapped column).
type readiness struct {
	store    *store.Store
	temporal atomic.Pointer[client.Client] // set once connected
	polling  atomic.Bool
}

func (rd *readiness) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), readinessTimeout)
	defer cancel()
	checks := map[string]string{"postgres": "ok", "mapping": "ok", "temporal": "ok", "polling": "ok"}
	if err := rd.store.Ping(ctx); err != nil {
		checks["postgres"] = err.Error()
		checks["mapping"] = "unknown: PostgreSQL unreachable"
	} else if err := rd.store.RecheckMapping(ctx); err != nil {
		checks["mapping"] = err.Error()
	}
	if c := rd.temporal.Load(); c == nil {
		checks["temporal"] = "not connected yet"
	} else if _, err := (*c).CheckHealth(ctx, &client.CheckHealthRequest{}); err != nil {
		checks["temporal"] = err.Error()
	}
	if !rd.polling.Load() {
		checks["polling"] = "not polling yet"
	}
	status := http.StatusOK
	for _, v := range checks {
		if v != "ok" {
			status = http.StatusServiceUnavailable
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"checks": checks})
}

// serveHTTP listens on addr at once, so a taken port fails start-up, and
// serves /metrics, /healthz and /readyz until the returned stop is called.
func serveHTTP(addr string, reg *prometheus.Registry, ready *readiness, logger *slog.Logger) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("WORKER_HTTP_ADDR: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", telemetry.Handler(reg))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"ok"}` + "\n"))
	})
	mux.Handle("GET /readyz", ready)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, WriteTimeout: 30 * time.Second}
	go func() {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			logger.Error("Worker HTTP server stopped", "addr", addr, "error", err)
		}
	}()
	logger.Info("Worker serving metrics and health", "addr", ln.Addr().String())
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx) // only scrapes and probes are cut short
	}, nil
}
