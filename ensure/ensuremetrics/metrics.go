// Package ensuremetrics counts ensure calls in Prometheus: the series the
// starter serves, for a product that calls ensure from its own Go backend
// and wants the same ones.
//
//	m, err := ensuremetrics.New(prometheus.DefaultRegisterer)
//	ensurer, err := ensure.New(ensure.Options{..., Metrics: m})
package ensuremetrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are an Ensurer's Prometheus series. Build them once per registry
// with New and share them between Ensurers.
type Metrics struct {
	calls    *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// New registers the ensure series on reg: clerksync_ensure_total{path,outcome}
// and clerksync_ensure_duration_seconds{path}.
func New(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "clerksync_ensure_total",
			Help: "Ensure calls, by path (fast: the row was there; slow: through Temporal) and outcome (ok, deleted, timeout, unavailable, invalid).",
		}, []string{"path", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "clerksync_ensure_duration_seconds",
			Help: "Time an ensure call took, in seconds, by path (fast, slow).",
			// The fast path is a fraction of a millisecond, the slow one a
			// workflow task or a timeout of seconds.
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"path"}),
	}
	for _, c := range []prometheus.Collector{m.calls, m.duration} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// ObserveEnsure records one call (ensure.Observer).
func (m *Metrics) ObserveEnsure(path, outcome string, took time.Duration) {
	m.calls.WithLabelValues(path, outcome).Inc()
	m.duration.WithLabelValues(path).Observe(took.Seconds())
}
