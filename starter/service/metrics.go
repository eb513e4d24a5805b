package service

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/clerksync/clerksync/ensure/ensuremetrics"
	"github.com/clerksync/clerksync/internal/telemetry"
)

// metrics are the starter's own Prometheus series. None is labelled with a
// Clerk ID, an email or a name: labels are event types and outcomes only.
type metrics struct {
	webhooks          *prometheus.CounterVec
	webhookDuration   *prometheus.HistogramVec
	signalDuration    prometheus.Histogram
	signatureFailures prometheus.Counter
	jwksFetches       *prometheus.CounterVec
	ready             *prometheus.GaugeVec
	ensure            *ensuremetrics.Metrics
}

// requestBuckets bound the webhook latencies, in seconds: a refusal takes
// microseconds, an accepted event one signal-with-start (milliseconds), a
// Temporal outage the whole 5 s signal timeout.
var requestBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// newMetrics registers the starter's series on reg.
func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		webhooks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "clerksync_webhooks_total",
			Help: "Clerk webhooks received, by event type and outcome (accepted, unhandled, bad_signature, malformed, wrong_instance, too_large, unavailable).",
		}, []string{"type", "outcome"}),
		webhookDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "clerksync_webhook_duration_seconds",
			Help:    "Time spent handling a webhook request, in seconds, by outcome.",
			Buckets: requestBuckets,
		}, []string{"outcome"}),
		signalDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "clerksync_webhook_signal_with_start_duration_seconds",
			Help:    "Time Temporal took to accept a webhook's signal-with-start, in seconds, failures included.",
			Buckets: requestBuckets,
		}),
		signatureFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "clerksync_webhook_signature_failures_total",
			Help: "Webhooks refused because their Svix signature did not verify (a wrong CLERK_WEBHOOK_SECRET, or a forgery).",
		}),
		jwksFetches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "clerksync_jwks_fetches_total",
			Help: "Fetches of Clerk's JSON Web Key Set for session tokens, by outcome (ok, error).",
		}, []string{"outcome"}),
		ready: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "clerksync_ready",
			Help: "1 when the endpoint (webhooks, ensure) could serve at the last /readyz, 0 when it could not: what /readyz answered, for alerting.",
		}, []string{"endpoint"}),
	}
	if err := telemetry.Register(reg, m.webhooks, m.webhookDuration, m.signalDuration, m.signatureFailures, m.jwksFetches, m.ready); err != nil {
		return nil, err
	}
	em, err := ensuremetrics.New(reg)
	if err != nil {
		return nil, err
	}
	m.ensure = em
	return m, nil
}
