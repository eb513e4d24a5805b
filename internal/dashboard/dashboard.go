// Package dashboard builds clerksync's Grafana dashboard with Grafana's
// foundation SDK, so that its JSON is valid by construction and reviewed as
// a diff: deploy/grafana/clerksync.json is what JSON returns, checked by
// TestDashboard_IsTheCheckedInJSON (go test ./internal/dashboard -update
// rewrites it), and docker-compose.yml's Grafana provisions it.
package dashboard

import (
	"encoding/json"
	"fmt"

	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/prometheus"
	"github.com/grafana/grafana-foundation-sdk/go/timeseries"
)

// UID is the dashboard's stable ID: links to it survive its regeneration.
const UID = "clerksync"

// datasource is the dashboard's Prometheus, chosen by its variable.
var datasource = common.DataSourceRef{Type: ptr("prometheus"), Uid: ptr("${datasource}")}

// panel is one time series of the dashboard: its title, what it shows, its
// unit, and its queries (expression and legend).
type panel struct {
	title, description, unit string
	queries                  [][2]string
}

// rows are the dashboard's rows and their panels, in order: what an
// operator looks at first (webhooks in, ensure out) to what explains it
// (writes, Temporal, PostgreSQL).
var rows = []struct {
	title  string
	panels []panel
}{
	{"Webhooks", []panel{
		{"Webhooks by outcome", "Clerk's webhooks as the starter answered them: accepted, unhandled (acknowledged, not applied), and the refusals.", "reqps",
			[][2]string{{`sum by (outcome) (rate(clerksync_webhooks_total[$__rate_interval]))`, "{{outcome}}"}}},
		{"Webhook ack latency", "Time to answer Svix: one signal-with-start for an accepted event.", "s",
			[][2]string{
				{`histogram_quantile(0.5, sum by (le) (rate(clerksync_webhook_duration_seconds_bucket{outcome="accepted"}[$__rate_interval])))`, "p50"},
				{`histogram_quantile(0.99, sum by (le) (rate(clerksync_webhook_duration_seconds_bucket{outcome="accepted"}[$__rate_interval])))`, "p99"},
			}},
		{"Signature failures", "Webhooks whose Svix signature did not verify: a wrong CLERK_WEBHOOK_SECRET, or forged traffic.", "reqps",
			[][2]string{{`sum(rate(clerksync_webhook_signature_failures_total[$__rate_interval]))`, "failures"}}},
	}},
	{"Ensure", []panel{
		{"Ensures by path and outcome", "fast: the row was there; slow: through Temporal, the minimal row and the profile fetch.", "reqps",
			[][2]string{{`sum by (path, outcome) (rate(clerksync_ensure_total[$__rate_interval]))`, "{{path}} {{outcome}}"}}},
		{"Ensure latency", "The fast path is a point lookup; the slow path waits for the user's workflow.", "s",
			[][2]string{
				{`histogram_quantile(0.5, sum by (le, path) (rate(clerksync_ensure_duration_seconds_bucket[$__rate_interval])))`, "{{path}} p50"},
				{`histogram_quantile(0.99, sum by (le, path) (rate(clerksync_ensure_duration_seconds_bucket[$__rate_interval])))`, "{{path}} p99"},
			}},
		{"Readiness", "1 when the endpoint could serve at the starter's last /readyz.", "none",
			[][2]string{{`min by (endpoint) (clerksync_ready)`, "{{endpoint}}"}}},
	}},
	{"Writes", []panel{
		{"User writes by outcome", "inserted, updated, stale (older than the row), tombstoned (the user was deleted).", "ops",
			[][2]string{{`sum by (outcome) (rate(clerksync_user_writes_total[$__rate_interval]))`, "{{outcome}}"}}},
		{"Events failed for good", "Each shows ClerkSyncState = \"failed\" in the Temporal UI: someone must look.", "short",
			[][2]string{{`sum by (operation) (increase(clerksync_events_failed_total[$__rate_interval]))`, "{{operation}}"}}},
		{"Writes retried past their budget", "Write activities failing as scheduled activities: PostgreSQL down, a lock held, a table being migrated.", "short",
			[][2]string{{`sum by (activity_type) (increase(temporal_activity_execution_failed_total{activity_type=~"Upsert.*|Delete.*|RemoveDeleted.*"}[$__rate_interval]))`, "{{activity_type}}"}}},
	}},
	{"Backfill", []panel{
		{"Backfill users by outcome", "Users a backfill or reconcile wrote, by outcome (inserted, updated, unchanged, tombstoned, refused).", "ops",
			[][2]string{{`sum by (outcome) (rate(clerksync_backfill_users_total[$__rate_interval]))`, "{{outcome}}"}}},
		{"Backfill pages", "Pages of Clerk's listing written.", "ops",
			[][2]string{{`sum(rate(clerksync_backfill_pages_total[$__rate_interval]))`, "pages"}}},
		{"Safety stops", "Runs that stopped before writing or removing anything (another Clerk instance's key, or more missing users than --max-delete).", "short",
			[][2]string{{`sum by (reason) (increase(clerksync_backfill_safety_stops_total[$__rate_interval]))`, "{{reason}}"}}},
	}},
	{"Temporal", []panel{
		{"Workflow task schedule-to-start", "How long workflow tasks wait for a worker: rising means add workers or WORKER_WORKFLOW_POLLERS.", "s",
			[][2]string{{`histogram_quantile(0.99, sum by (le, task_queue) (rate(temporal_workflow_task_schedule_to_start_latency_seconds_bucket[$__rate_interval])))`, "{{task_queue}} p99"}}},
		{"Worker task slots in use", "Workflow and activity task slots each worker uses, beside those it has free.", "short",
			[][2]string{
				{`sum by (worker_type) (temporal_worker_task_slots_used)`, "{{worker_type}} used"},
				{`sum by (worker_type) (temporal_worker_task_slots_available)`, "{{worker_type}} available"},
			}},
		{"Workflows completed and failed", "Entity runs complete when they have applied their events.", "ops",
			[][2]string{
				{`sum by (workflow_type) (rate(temporal_workflow_completed_total[$__rate_interval]))`, "{{workflow_type}} completed"},
				{`sum by (workflow_type) (rate(temporal_workflow_failed_total[$__rate_interval]))`, "{{workflow_type}} failed"},
			}},
	}},
	{"PostgreSQL", []panel{
		{"Connection pool", "The pool's connections by state, against its size (DATABASE_MAX_CONNS), per process.", "short",
			[][2]string{
				{`sum by (job, state) (clerksync_db_pool_connections)`, "{{job}} {{state}}"},
				{`sum by (job) (clerksync_db_pool_max_connections)`, "{{job}} max"},
			}},
		{"Waits for a connection", "Seconds per second spent waiting for a PostgreSQL connection: the pool is too small, or its queries too slow.", "s",
			[][2]string{{`sum by (job) (rate(clerksync_db_pool_acquire_wait_seconds_total[$__rate_interval]))`, "{{job}}"}}},
	}},
}

// Build returns the dashboard, in the classic dashboard schema: the SDK
// prefers its v2 schema, which Grafana 12 provisions from files only
// behind a feature flag, while every Grafana an operator runs imports this
// one.
//
//lint:ignore SA1019 the v2 schema is not yet provisionable by default (see above)
func Build() (dashboard.Dashboard, error) {
	//lint:ignore SA1019 as above
	b := dashboard.NewDashboardBuilder("clerksync").
		Uid(UID).
		Description("clerksync's webhooks, ensure, writes, backfills, Temporal workers and PostgreSQL pool (generated by internal/dashboard).").
		Tags([]string{"clerksync"}).
		Refresh("30s").
		Time("now-3h", "now").
		Timezone(common.TimeZoneBrowser).
		WithVariable(dashboard.NewDatasourceVariableBuilder("datasource").Label("Prometheus").Type("prometheus"))
	for _, r := range rows {
		b = b.WithRow(dashboard.NewRowBuilder(r.title))
		for _, p := range r.panels {
			tp := timeseries.NewPanelBuilder().
				Title(p.title).
				Description(p.description).
				Unit(p.unit).
				Datasource(datasource).
				Height(8).
				Span(8)
			for _, q := range p.queries {
				tp = tp.WithTarget(prometheus.NewDataqueryBuilder().Expr(q[0]).LegendFormat(q[1]))
			}
			b = b.WithPanel(tp)
		}
	}
	return b.Build()
}

// JSON is the dashboard as Grafana imports it.
func JSON() ([]byte, error) {
	d, err := Build()
	if err != nil {
		return nil, fmt.Errorf("build the dashboard: %w", err)
	}
	out, err := json.MarshalIndent(d, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode the dashboard: %w", err)
	}
	return append(out, '\n'), nil
}

func ptr[T any](v T) *T { return &v }
