package dashboard

import (
	"encoding/json"
	"flag"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite deploy/grafana/clerksync.json from the builder")

const checkedIn = "../../deploy/grafana/clerksync.json"

// TestDashboard_IsTheCheckedInJSON: the dashboard Grafana provisions is
// the builder's output, so a change to it is a reviewed diff of both (go
// test ./internal/dashboard -update rewrites the JSON).
func TestDashboard_IsTheCheckedInJSON(t *testing.T) {
	got, err := JSON()
	require.NoError(t, err)
	if *update {
		require.NoError(t, os.WriteFile(checkedIn, got, 0o644))
	}
	want, err := os.ReadFile(checkedIn)
	require.NoError(t, err, "no dashboard JSON: go test ./internal/dashboard -update")
	require.Equal(t, string(want), string(got), "deploy/grafana/clerksync.json is not the builder's output: go test ./internal/dashboard -update, and review the diff")
}

// TestDashboard_ShowsWhatTheIssueAsksAndOnlyRealSeries: every panel
// queries the chosen Prometheus and a series clerksync or the Temporal SDK
// exports (by the names docs/operating.md lists), and the dashboard has a
// panel for each thing an operator looks at.
func TestDashboard_ShowsWhatTheIssueAsksAndOnlyRealSeries(t *testing.T) {
	t.Parallel()
	raw, err := JSON()
	require.NoError(t, err)
	var d struct {
		UID    string `json:"uid"`
		Panels []struct {
			Type       string `json:"type"`
			Title      string `json:"title"`
			Datasource *struct {
				UID string `json:"uid"`
			} `json:"datasource"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	require.NoError(t, json.Unmarshal(raw, &d))
	require.Equal(t, UID, d.UID)
	doc, err := os.ReadFile("../../docs/operating.md")
	require.NoError(t, err)
	series := regexp.MustCompile(`\b(clerksync|temporal)_[a-z_]+`)
	var titles []string
	for _, p := range d.Panels {
		if p.Type == "row" {
			continue
		}
		titles = append(titles, p.Title)
		require.Equal(t, "${datasource}", p.Datasource.UID, p.Title)
		require.NotEmpty(t, p.Targets, p.Title)
		for _, target := range p.Targets {
			for _, name := range series.FindAllString(target.Expr, -1) {
				base := regexp.MustCompile(`_(bucket|sum|count)$`).ReplaceAllString(name, "")
				require.True(t, strings.Contains(string(doc), base), "%s: %s is not a series docs/operating.md lists", p.Title, name)
			}
		}
	}
	for _, want := range []string{"Webhooks by outcome", "Webhook ack latency", "Ensures by path and outcome", "Ensure latency",
		"User writes by outcome", "Events failed for good", "Backfill users by outcome", "Workflow task schedule-to-start",
		"Worker task slots in use", "Connection pool"} {
		require.Contains(t, titles, want)
	}
}
