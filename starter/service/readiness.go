package service

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/clerksync/clerksync/ensure/contract"
	"github.com/clerksync/clerksync/internal/store"
)

// readinessTimeout bounds each dependency check of /readyz.
const readinessTimeout = 2 * time.Second

// searchAttributesRecheck is how long a successful search attribute check
// is trusted: they are not removed in normal operation, and querying by
// them on every probe would cost the server a call per probe.
const searchAttributesRecheck = time.Minute

// readinessQuery names every search attribute clerksync sets, each with a
// value no workflow has.
var readinessQuery = func() string {
	var terms []string
	for _, k := range contract.SearchAttributeKeys {
		terms = append(terms, k.GetName()+" = 'clerksync-readyz'")
	}
	return strings.Join(terms, " AND ")
}()

// readiness serves GET /readyz: whether each endpoint can serve, and why
// not. It answers 200 when the webhook endpoint can serve, since taking
// webhooks is the starter's first job and needs only Temporal (with
// clerksync's search attributes, which every signal-with-start sets). Ensure
// also needs PostgreSQL, a mapping that fits it (CLERKSYNC_MAPPING) and
// CLERK_SECRET_KEY; its state is in the body, so a PostgreSQL outage does
// not stop webhooks from being taken.
type readiness struct {
	store         *store.Store
	temporal      client.Client
	namespace     string
	ensureEnabled bool
	// ready records each endpoint's answer (clerksync_ready), so that
	// what the load balancer's probes see can be alerted on.
	ready *prometheus.GaugeVec

	mu              sync.Mutex
	attributesFound time.Time
}

// ReadinessReport is the body of /readyz: "ok" or the reason, per endpoint
// and per dependency.
type ReadinessReport struct {
	Webhooks string            `json:"webhooks"`
	Ensure   string            `json:"ensure"`
	Checks   map[string]string `json:"checks"`
}

func (rd *readiness) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), readinessTimeout)
	defer cancel()
	checks := map[string]string{"postgres": "ok", "mapping": "ok", "temporal": "ok", "search_attributes": "ok", "clerk": "ok"}
	if err := rd.store.Ping(ctx); err != nil {
		checks["postgres"] = err.Error()
		checks["mapping"] = "unknown: PostgreSQL unreachable"
	} else if err := rd.store.RecheckMapping(ctx); err != nil {
		// A mapping that stopped fitting the database (a product
		// migration dropped a mapped column) fails every ensure; it is
		// checked against the catalog on every probe, not only at start.
		checks["mapping"] = err.Error()
	}
	if _, err := rd.temporal.CheckHealth(ctx, &client.CheckHealthRequest{}); err != nil {
		checks["temporal"] = err.Error()
		checks["search_attributes"] = "unknown: Temporal unreachable"
	} else if err := rd.searchAttributes(ctx); err != nil {
		checks["search_attributes"] = err.Error()
	}
	if !rd.ensureEnabled {
		checks["clerk"] = errEnsureNotEnabled.Error()
	}
	report := ReadinessReport{
		Webhooks: failing(checks, "temporal", "search_attributes"),
		Ensure:   failing(checks, "temporal", "search_attributes", "postgres", "mapping", "clerk"),
		Checks:   checks,
	}
	for endpoint, state := range map[string]string{"webhooks": report.Webhooks, "ensure": report.Ensure} {
		ready := 0.0
		if state == "ok" {
			ready = 1
		}
		rd.ready.WithLabelValues(endpoint).Set(ready)
	}
	code := http.StatusOK
	if report.Webhooks != "ok" {
		code = http.StatusServiceUnavailable
	}
	writeJSON(w, code, report)
}

// failing names the failed checks among names, or says "ok".
func failing(checks map[string]string, names ...string) string {
	var failed []string
	for _, n := range names {
		if checks[n] != "ok" {
			failed = append(failed, n)
		}
	}
	if len(failed) == 0 {
		return "ok"
	}
	return "not ready: " + strings.Join(failed, ", ")
}

// searchAttributes checks that the namespace takes every search attribute
// clerksync sets: without them every signal-with-start fails. It asks with a
// visibility query naming each one (readinessQuery), which the frontend
// validates against the same cached namespace mapping as a
// signal-with-start: a listing of the namespace's attributes is fresh, and
// on a self-hosted server answers them registered some seconds before the
// frontends take them. The query also works on Temporal Cloud, where the
// operator API that lists them is refused.
func (rd *readiness) searchAttributes(ctx context.Context) error {
	rd.mu.Lock()
	found := rd.attributesFound
	rd.mu.Unlock()
	if !found.IsZero() && time.Since(found) < searchAttributesRecheck {
		return nil
	}
	_, err := rd.temporal.CountWorkflow(ctx, &workflowservice.CountWorkflowExecutionsRequest{
		Namespace: rd.namespace, Query: readinessQuery})
	var invalid *serviceerror.InvalidArgument
	switch {
	case errors.As(err, &invalid):
		return fmt.Errorf("namespace %s does not take clerksync's search attributes yet (%s): the worker registers them at start-up, "+
			"or create them yourself (docs/temporal.md)", rd.namespace, invalid.Message)
	case err != nil:
		return fmt.Errorf("query by search attributes: %w", err)
	}
	rd.mu.Lock()
	rd.attributesFound = time.Now()
	rd.mu.Unlock()
	return nil
}
