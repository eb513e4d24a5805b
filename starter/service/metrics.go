package service

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are the starter's Prometheus series, on a registry of their own so
// tests can build as many handlers as they like.
type metrics struct {
	registry *prometheus.Registry
	webhooks *prometheus.CounterVec
}

func newMetrics() *metrics {
	m := &metrics{
		registry: prometheus.NewRegistry(),
		webhooks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "clerksync_webhooks_total",
			Help: "Clerk webhooks received, by event type and outcome (accepted, unhandled, bad_signature, malformed, too_large, unavailable).",
		}, []string{"type", "outcome"}),
	}
	m.registry.MustRegister(m.webhooks,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{})
}
