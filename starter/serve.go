package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/clerksync/clerksync/internal/config"
	"github.com/clerksync/clerksync/internal/temporalclient"
	"github.com/clerksync/clerksync/starter/service"
)

// shutdownGrace is how long in-flight requests get to finish on SIGTERM.
const shutdownGrace = 15 * time.Second

// loopback says whether addr (host:port) listens on loopback only.
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	return err == nil && loopbackHost(host)
}

// loopbackHost says whether host names this machine's loopback interface.
func loopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// serve runs the HTTP service until ctx is done, then drains it.
func serve(ctx context.Context, cfg config.Config, logger *slog.Logger) error {
	verifier, err := service.NewSignatureVerifier(cfg.WebhookSecret)
	if err != nil {
		return err
	}
	conns, err := service.Connect(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer conns.Close()
	temporalclient.WarnIfPlaintext(logger, cfg.PayloadKeys)
	if cfg.PayloadKeys != nil && cfg.CodecAuthToken == "" && cfg.CodecOIDCIssuer == "" && !loopback(cfg.HTTPAddr) {
		logger.Warn("CODEC_AUTH_TOKEN is not set: /codec decrypts payloads for anyone who can reach " + cfg.HTTPAddr)
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
