// Package telemetry sets up what operators watch a clerksync process by: its
// structured log (LOG_FORMAT, LOG_LEVEL) and its Prometheus registry, which
// holds clerksync's own series, the Go runtime's and the Temporal SDK's.
package telemetry

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.temporal.io/sdk/client"
	temporalotel "go.temporal.io/sdk/contrib/opentelemetry"
	tlog "go.temporal.io/sdk/log"

	"github.com/clerksync/clerksync/internal/buildinfo"
)

// Log formats LOG_FORMAT accepts.
const (
	FormatJSON = "json"
	FormatText = "text"
)

// ParseLevel reads LOG_LEVEL: debug, info, warn or error.
func ParseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return 0, fmt.Errorf("want debug, info, warn or error")
	}
	return l, nil
}

// NewLogger returns the process's logger: every line carries process (the
// binary's name), so the lines of several processes sharing one stream (make
// run, a compose log) say where they come from.
func NewLogger(w io.Writer, format string, level slog.Level, process string) (*slog.Logger, error) {
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler
	switch strings.ToLower(format) {
	case FormatJSON:
		h = slog.NewJSONHandler(w, opts)
	case FormatText:
		h = slog.NewTextHandler(w, opts)
	default:
		return nil, fmt.Errorf("log format %q: want %s or %s", format, FormatJSON, FormatText)
	}
	return slog.New(h).With("process", process), nil
}

// TemporalLogger routes the Temporal SDK's log through logger, so its lines
// share the process's format, level and labels. A poll the worker's own
// stop cuts short, which the SDK reports as a warning, is logged at debug:
// a clean shutdown writes no warning.
func TemporalLogger(logger *slog.Logger) tlog.Logger {
	return quietStop{tlog.NewStructuredLogger(logger)}
}

// quietStop demotes the SDK's "Failed to poll for task." when the cause is
// the worker stopping.
type quietStop struct{ tlog.Logger }

func (q quietStop) Warn(msg string, keyvals ...any) {
	if msg == "Failed to poll for task." && stopping(keyvals) {
		q.Logger.Debug(msg, keyvals...)
		return
	}
	q.Logger.Warn(msg, keyvals...)
}

// With keeps the filter on loggers the SDK derives.
func (q quietStop) With(keyvals ...any) tlog.Logger {
	return quietStop{tlog.With(q.Logger, keyvals...)}
}

func stopping(keyvals []any) bool {
	for i := 1; i < len(keyvals); i += 2 {
		if err, ok := keyvals[i].(error); ok && strings.Contains(err.Error(), "worker stopping") {
			return true
		}
	}
	return false
}

// NewRegistry returns a registry holding the Go runtime's and the process's
// standard series; clerksync's and the SDK's are registered on it by their
// owners.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), buildInfo())
	return reg
}

// buildInfo is clerksync_build_info, 1 with the release and commit as
// labels: during a rolling upgrade it tells which processes run which code
// (count by (version) (clerksync_build_info)).
func buildInfo() prometheus.Collector {
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "clerksync_build_info",
		Help:        "1, labelled with the clerksync release and commit this process runs.",
		ConstLabels: prometheus.Labels{"version": buildinfo.Version, "commit": buildinfo.CommitOrUnknown()},
	})
	g.Set(1)
	return g
}

// Register registers every collector on reg, stopping at the first
// refusal (a series registered twice).
func Register(reg prometheus.Registerer, cs ...prometheus.Collector) error {
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}

// Handler serves reg in Prometheus's exposition format, for GET /metrics.
func Handler(reg *prometheus.Registry) http.Handler {
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})
}

// latencyBuckets are the SDK's latency histograms' bounds, in seconds: from
// a local activity (milliseconds) to a long poll (a minute). OpenTelemetry's
// default bounds are meant for milliseconds and would put every Temporal
// latency in the first buckets.
var latencyBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}

// TemporalMetrics returns a metrics handler for the Temporal client that
// exports the SDK's series on reg under the SDK's standard names, as the
// OpenTelemetry Prometheus exporter spells them (temporal_request_total,
// temporal_workflow_task_schedule_to_start_latency_seconds, ...: the names
// Temporal's own SDK dashboards use). Call it once per registry.
func TemporalMetrics(reg prometheus.Registerer) (client.MetricsHandler, error) {
	exporter, err := otelprom.New(otelprom.WithRegisterer(reg), otelprom.WithoutScopeInfo(), otelprom.WithoutTargetInfo())
	if err != nil {
		return nil, fmt.Errorf("temporal metrics exporter: %w", err)
	}
	seconds := sdkmetric.NewView(
		sdkmetric.Instrument{Kind: sdkmetric.InstrumentKindHistogram, Unit: "s"},
		sdkmetric.Stream{Aggregation: sdkmetric.AggregationExplicitBucketHistogram{Boundaries: latencyBuckets}},
	)
	provider := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exporter), sdkmetric.WithView(seconds))
	return temporalotel.NewMetricsHandler(temporalotel.MetricsHandlerOptions{
		Meter: provider.Meter("go.temporal.io/sdk"),
		// Counters as Prometheus counters (with _total), not gauges.
		UseMonotonicCounters: true,
	}), nil
}
