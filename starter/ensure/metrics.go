package ensure

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/clerksync/clerksync/internal/telemetry"
)

// Paths an ensure takes, the "path" label of its series.
const (
	// PathFast: the row was there (one indexed SELECT, no Temporal call).
	PathFast = "fast"
	// PathSlow: the row was missing, so the ensure went through Temporal.
	PathSlow = "slow"
)

// Outcomes of an ensure, the "outcome" label of clerksync_ensure_total.
const (
	OutcomeOK          = "ok"
	OutcomeDeleted     = "deleted"
	OutcomeTimeout     = "timeout"
	OutcomeUnavailable = "unavailable"
	OutcomeInvalid     = "invalid"
)

// Metrics are an Ensurer's Prometheus series. Build them once per registry
// with NewMetrics and share them between Ensurers.
type Metrics struct {
	calls    *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// NewMetrics registers the ensure series on reg:
// clerksync_ensure_total{path,outcome} and
// clerksync_ensure_duration_seconds{path}.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
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
	if err := telemetry.Register(reg, m.calls, m.duration); err != nil {
		return nil, err
	}
	return m, nil
}

// observe records one call. A nil *Metrics records nothing.
func (m *Metrics) observe(path string, err error, took time.Duration) {
	if m == nil {
		return
	}
	m.calls.WithLabelValues(path, Outcome(err)).Inc()
	m.duration.WithLabelValues(path).Observe(took.Seconds())
}

// Outcome names what an error returned by Ensure means, as the outcome label
// of clerksync_ensure_total spells it.
func Outcome(err error) string {
	switch {
	case err == nil:
		return OutcomeOK
	case errors.Is(err, ErrDeleted):
		return OutcomeDeleted
	case errors.Is(err, ErrTimeout):
		return OutcomeTimeout
	case errors.Is(err, ErrInvalidID):
		return OutcomeInvalid
	default:
		return OutcomeUnavailable
	}
}
