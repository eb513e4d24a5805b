package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/clerksync/clerksync/internal/buildinfo"
	"github.com/clerksync/clerksync/internal/config"
	"github.com/clerksync/clerksync/internal/errreport"
	"github.com/clerksync/clerksync/internal/store"
	"github.com/clerksync/clerksync/internal/temporalclient"
	"github.com/clerksync/clerksync/starter/service"
)

// shutdownGrace is how long in-flight requests get to finish on SIGTERM.
const shutdownGrace = 15 * time.Second

// codecExposed refuses a starter whose /codec would decrypt payloads for
// anyone who reaches it: payload keys, no authentication, and an address
// other than loopback (make run's 127.0.0.1 is fine), unless the operator
// says the network keeps others out (CODEC_UNAUTHENTICATED).
func codecExposed(cfg config.Config) error {
	if cfg.PayloadKeys == nil || cfg.CodecAuthToken != "" || cfg.CodecOIDCIssuer != "" || cfg.CodecUnauthenticated || loopback(cfg.HTTPAddr) {
		return nil
	}
	return fmt.Errorf("HTTP_ADDR=%s is not loopback, and /codec would decrypt payloads for anyone who reaches it: "+
		"set CODEC_AUTH_TOKEN (or CODEC_OIDC_ISSUER and CODEC_OIDC_AUDIENCE), listen on 127.0.0.1, "+
		"or set CODEC_UNAUTHENTICATED=true where the network keeps others out", cfg.HTTPAddr)
}

// serve runs the HTTP service until ctx is done, then drains it.
func serve(ctx context.Context, cfg config.Config, logger *slog.Logger) error {
	verifier, err := service.NewSignatureVerifier(cfg.WebhookSecret)
	if err != nil {
		return err
	}
	logger, flushReports, err := errreport.Wrap(logger, cfg.ErrorReports("starter"))
	if err != nil {
		return err
	}
	defer flushReports()
	conns, err := service.Connect(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer conns.Close()
	if err := conns.Store.CheckMapping(ctx); err != nil {
		var bad *store.MappingError
		if errors.As(err, &bad) {
			return err
		}
		// The database may be starting: ensure builds the mapping's SQL on
		// its first call.
		logger.Warn("Could not check CLERKSYNC_MAPPING against the database yet", "error", err)
	}
	temporalclient.WarnIfPlaintext(logger, cfg.PayloadKeys)
	if err := codecExposed(cfg); err != nil {
		return err
	}

	mux, err := service.NewMux(cfg, verifier, conns, logger)
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
	logger.Info("Starter serving", "addr", cfg.HTTPAddr, "task_queue", cfg.TaskQueue,
		"version", buildinfo.Version, "commit", buildinfo.CommitOrUnknown())
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
