package systemtest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"

	"github.com/clerksync/clerksync/internal/clerkwebhook"
	"github.com/clerksync/clerksync/internal/testsupport/clerkfake"
	"github.com/clerksync/clerksync/internal/testsupport/testenv"
)

// TestObservability_MetricsCountExactlyTheRequestsAndLogsHoldNoSecrets runs
// the real worker and starter binaries, at LOG_LEVEL=debug, sends a known
// set of webhooks and ensures one at a time, then scrapes both /metrics
// endpoints with Prometheus's text parser: clerksync's counters moved by
// exactly those requests, the Temporal SDK's series are there, no label
// holds a Clerk ID, email or name, and no log line of either process (the
// SDK's included) holds a secret, a token, an email address or a name.
func TestObservability_MetricsCountExactlyTheRequestsAndLogsHoldNoSecrets(t *testing.T) {
	t.Parallel()
	b := startBinaries(t, "observe", "LOG_LEVEL=debug")
	s, fake := b.system, b.clerk

	// One request at a time, each applied before the next, so every write's
	// outcome is known.
	base := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	people := []clerkwebhook.UserFields{
		{ClerkID: "user_obs_a", Email: "augusta@example.com", FirstName: "Augusta", LastName: "Kingsley"},
		{ClerkID: "user_obs_b", Email: "barbara@example.com", FirstName: "Barbarella", LastName: "Liskovna"},
		{ClerkID: "user_obs_c", Email: "claude@example.com", FirstName: "Claudette", LastName: "Shannonberg"},
	}
	for i, p := range people {
		p.CreatedAt, p.UpdatedAt = base, base
		body, err := clerkwebhook.UserEvent("user.created", p)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, s.post(t, fmt.Sprintf("msg_obs_create_%d", i), body))
		s.waitForRow(t, p.ClerkID, func(_, first *string) bool { return first != nil && *first == p.FirstName })
	}
	for k, first := range []string{"Augustina", "Augustine"} {
		p := people[0]
		p.FirstName, p.CreatedAt, p.UpdatedAt = first, base, base.Add(time.Duration(k+1)*time.Second)
		body, err := clerkwebhook.UserEvent("user.updated", p)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, s.post(t, fmt.Sprintf("msg_obs_update_%d", k), body))
		s.waitForRow(t, p.ClerkID, func(_, f *string) bool { return f != nil && *f == first })
	}
	body, err := clerkwebhook.DeletedEvent("user_obs_c", base.Add(time.Minute))
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, s.post(t, "msg_obs_delete", body))
	require.Eventually(t, func() bool { return s.count(t, `select count(*) from users where clerk_id = 'user_obs_c'`) == 0 },
		time.Minute, 100*time.Millisecond)
	require.Equal(t, http.StatusUnauthorized, s.postSigned(t, otherSecret, time.Now(), "msg_obs_forged", body))
	require.Equal(t, http.StatusOK, s.post(t, "msg_obs_session", []byte(`{"type":"session.created","data":{"id":"sess_obs"}}`)))

	// Ensures: one whose row is there (fast), one Clerk knows and clerksync
	// does not yet (slow: through Temporal, then the profile fetch).
	fake.PutUser(clerkfake.User{ID: "user_obs_d", Email: "dorothy@example.com", FirstName: "Dorothea", LastName: "Hodgkinson",
		CreatedAt: base, UpdatedAt: base})
	tokens := []string{s.token(t, "user_obs_a"), s.token(t, "user_obs_d")}
	for _, token := range tokens {
		code, _ := s.ensureCall(t, token)
		require.Equal(t, http.StatusOK, code)
	}
	s.waitForRow(t, "user_obs_d", func(_, first *string) bool { return first != nil && *first == "Dorothea" })
	trials := b.count(t, `select count(*) from subscriptions`)

	starter := scrape(t, b.url+"/metrics")
	for _, c := range []struct {
		labels map[string]string
		want   float64
	}{
		{map[string]string{"type": "user.created", "outcome": "accepted"}, 3},
		{map[string]string{"type": "user.updated", "outcome": "accepted"}, 2},
		{map[string]string{"type": "user.deleted", "outcome": "accepted"}, 1},
		{map[string]string{"type": "", "outcome": "bad_signature"}, 1},
		{map[string]string{"type": "session.created", "outcome": "unhandled"}, 1},
	} {
		require.Equal(t, c.want, starter.value(t, "clerksync_webhooks_total", c.labels), "webhooks %v", c.labels)
	}
	require.Equal(t, 8.0, starter.total("clerksync_webhooks_total"))
	require.Equal(t, 1.0, starter.value(t, "clerksync_webhook_signature_failures_total", nil))
	require.Equal(t, uint64(8), starter.histogramCount("clerksync_webhook_duration_seconds"))
	require.Equal(t, uint64(6), starter.histogramCount("clerksync_webhook_signal_with_start_duration_seconds"))
	require.Equal(t, 1.0, starter.value(t, "clerksync_ensure_total", map[string]string{"path": "fast", "outcome": "ok"}))
	require.Equal(t, 1.0, starter.value(t, "clerksync_ensure_total", map[string]string{"path": "slow", "outcome": "ok"}))
	require.Equal(t, 2.0, starter.total("clerksync_ensure_total"))
	require.Equal(t, uint64(2), starter.histogramCount("clerksync_ensure_duration_seconds"))
	require.Equal(t, 1.0, starter.value(t, "clerksync_jwks_fetches_total", map[string]string{"outcome": "ok"}))
	require.Positive(t, starter.value(t, "temporal_request_total", map[string]string{"operation": "SignalWithStartWorkflowExecution"}),
		"the SDK's request counter has no signal-with-start")
	require.Positive(t, starter.histogramCount("temporal_request_latency_seconds"))
	require.Positive(t, starter.value(t, "clerksync_db_pool_max_connections", nil), "the starter's PostgreSQL pool")
	require.Len(t, starter.series("clerksync_db_pool_connections"), 3, "by state")

	worker := scrape(t, b.workerURL+"/metrics")
	// Inserted: a, b, c by their creates, d by the ensure's minimal row;
	// updated: a twice, d by its profile.
	require.Equal(t, 4.0, worker.value(t, "clerksync_user_writes_total", map[string]string{"outcome": "inserted"}))
	require.Equal(t, 3.0, worker.value(t, "clerksync_user_writes_total", map[string]string{"outcome": "updated"}))
	require.Equal(t, 7.0, worker.total("clerksync_user_writes_total"))
	require.Equal(t, 1.0, worker.value(t, "clerksync_user_deletions_total", map[string]string{"outcome": "removed"}))
	require.Equal(t, 1.0, worker.total("clerksync_user_deletions_total"))
	require.Equal(t, 0.0, worker.total("clerksync_events_failed_total"))
	// c's trial went with its row; the others' are in the table.
	require.Equal(t, float64(trials+1), worker.value(t, "clerksync_trials_created_total", nil))
	require.Positive(t, worker.histogramCount("temporal_workflow_task_schedule_to_start_latency_seconds"))
	require.Positive(t, worker.histogramCount("temporal_workflow_endtoend_latency_seconds"))
	require.Positive(t, worker.total("temporal_workflow_completed_total"))
	require.Positive(t, worker.total("temporal_local_activity_total"))
	require.Positive(t, worker.value(t, "clerksync_db_pool_max_connections", nil), "the worker's PostgreSQL pool")
	require.Positive(t, worker.value(t, "clerksync_db_pool_connections", map[string]string{"state": "idle"})+
		worker.value(t, "clerksync_db_pool_connections", map[string]string{"state": "acquired"}), "connections in use or idle")

	personal := []string{"user_obs_", "@example.com"}
	for _, p := range people {
		personal = append(personal, p.FirstName, p.LastName)
	}
	personal = append(personal, "Augustina", "Augustine", "Dorothea", "Hodgkinson")
	starter.noLabelHolds(t, personal)
	worker.noLabelHolds(t, personal)

	// Stop both, so their shutdown lines are checked too.
	b.stop(t)
	all := testenv.ReadLogs(t, b.logs)
	testenv.CheckLogs(t, "observability", all, testenv.Forbidden{
		Literals: append(append([]string{testSecret, clerkfake.SecretKey}, tokens...), personal[2:]...),
	})
	checkLogLines(t, all)
}

// checkLogLines: every line is one JSON object labelled with its process,
// and every line about one event names its user and its Svix message.
func checkLogLines(t *testing.T, logs []byte) {
	t.Helper()
	sc := bufio.NewScanner(bytes.NewReader(logs))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	accepted := 0
	for sc.Scan() {
		var line map[string]any
		require.NoError(t, json.Unmarshal(sc.Bytes(), &line), "not a JSON log line: %s", sc.Bytes())
		require.Contains(t, []any{"worker", "starter"}, line["process"], "a line without its process: %s", sc.Bytes())
		if line["msg"] == "Webhook accepted" {
			accepted++
			require.NotEmpty(t, line["clerk_id"], "%s", sc.Bytes())
			require.NotEmpty(t, line["svix_id"], "%s", sc.Bytes())
		}
	}
	require.NoError(t, sc.Err())
	require.Equal(t, 6, accepted, "one line per accepted webhook")
}

// metricFamilies is one scrape, parsed.
type metricFamilies map[string]*dto.MetricFamily

func scrape(t *testing.T, url string) metricFamilies {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	parser := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := parser.TextToMetricFamilies(resp.Body)
	require.NoError(t, err)
	return mfs
}

// value is the counter's (or gauge's) value with exactly labels; 0 when no
// such series was ever written.
func (m metricFamilies) value(t *testing.T, name string, labels map[string]string) float64 {
	t.Helper()
	for _, s := range m.series(name) {
		got := map[string]string{}
		for _, l := range s.GetLabel() {
			got[l.GetName()] = l.GetValue()
		}
		if matches(got, labels) {
			return counterOrGauge(s)
		}
	}
	return 0
}

func matches(got, want map[string]string) bool {
	for k, v := range want {
		if got[k] != v {
			return false
		}
	}
	return len(want) == 0 || len(got) >= len(want)
}

// total sums every series of the counter.
func (m metricFamilies) total(name string) float64 {
	sum := 0.0
	for _, s := range m.series(name) {
		sum += counterOrGauge(s)
	}
	return sum
}

// histogramCount sums the observations of every series of the histogram.
func (m metricFamilies) histogramCount(name string) uint64 {
	var n uint64
	for _, s := range m.series(name) {
		n += s.GetHistogram().GetSampleCount()
	}
	return n
}

func (m metricFamilies) series(name string) []*dto.Metric {
	if mf, ok := m[name]; ok {
		return mf.GetMetric()
	}
	return nil
}

func counterOrGauge(s *dto.Metric) float64 {
	if s.GetCounter() != nil {
		return s.GetCounter().GetValue()
	}
	return s.GetGauge().GetValue()
}

// noLabelHolds fails if any label value of any series holds one of values.
func (m metricFamilies) noLabelHolds(t *testing.T, values []string) {
	t.Helper()
	for name, mf := range m {
		for _, s := range mf.GetMetric() {
			for _, l := range s.GetLabel() {
				for _, v := range values {
					require.False(t, strings.Contains(l.GetValue(), v), "%s has label %s=%q", name, l.GetName(), l.GetValue())
				}
			}
		}
	}
}
