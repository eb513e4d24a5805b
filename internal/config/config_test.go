package config

import (
	"os"
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"
)

func TestLoadFrom_DefaultsAreTheLocalSetup(t *testing.T) {
	t.Parallel()
	c, err := LoadFrom(func(string) (string, bool) { return "", false })
	require.NoError(t, err)
	require.Equal(t, "postgres://127.0.0.1:5432/clerksync", c.DatabaseURL)
	require.Equal(t, "clerksync", c.TaskQueue)
	require.Equal(t, ":8080", c.HTTPAddr)
	require.Equal(t, time.Minute, c.TrialExpiryInterval)
	require.Equal(t, 16, c.WorkflowPollers)
	require.Equal(t, 5*time.Second, c.EnsureTimeout)
	require.Equal(t, 14*24*time.Hour, c.TrialPeriod)
	require.Equal(t, int64(1<<20), c.WebhookMaxBytes)
	require.Empty(t, c.WebhookSecret, "secrets have no default")
	require.IsType(t, &client.GrpcCompressionNone{}, c.TemporalGRPCCompression)
}

// TestLoadFrom_GRPCCompression: gzip, the SDK's own default, stays one
// setting away for a Temporal far off; a misspelling is refused, not taken
// for either.
func TestLoadFrom_GRPCCompression(t *testing.T) {
	t.Parallel()
	for value, want := range map[string]client.GrpcCompression{"gzip": &client.GrpcCompressionGzip{}, "none": &client.GrpcCompressionNone{}} {
		c, err := LoadFrom(func(k string) (string, bool) { return value, k == "TEMPORAL_GRPC_COMPRESSION" })
		require.NoError(t, err)
		require.IsType(t, want, c.TemporalGRPCCompression, value)
	}
	_, err := LoadFrom(func(k string) (string, bool) { return "gz", k == "TEMPORAL_GRPC_COMPRESSION" })
	require.ErrorContains(t, err, `TEMPORAL_GRPC_COMPRESSION="gz": want none or gzip`)
}

func TestLoadFrom_NamesEveryBadValue(t *testing.T) {
	t.Parallel()
	env := map[string]string{"TRIAL_EXPIRY_INTERVAL": "soon", "WEBHOOK_MAX_BYTES": "-1", "ENSURE_TIMEOUT": "0s", "WORKER_WORKFLOW_POLLERS": "many"}
	_, err := LoadFrom(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	require.ErrorContains(t, err, `TRIAL_EXPIRY_INTERVAL="soon"`)
	require.ErrorContains(t, err, `WORKER_WORKFLOW_POLLERS="many"`)
	require.ErrorContains(t, err, `WEBHOOK_MAX_BYTES="-1"`)
	require.ErrorContains(t, err, `ENSURE_TIMEOUT="0s"`)
}

// TestReadmeTableListsEveryVariable keeps docs/configuration.md's table
// and --help telling the same story.
func TestReadmeTableListsEveryVariable(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile("../../docs/configuration.md")
	require.NoError(t, err)
	for _, v := range Vars {
		def := "-"
		if v.Default != "" {
			def = "`" + v.Default + "`"
		}
		row := regexp.MustCompile(`(?m)^\| ` + "`" + regexp.QuoteMeta(v.Name) + "`" + ` \| ` + regexp.QuoteMeta(def) + ` \| .* \| ` + regexp.QuoteMeta(v.ReadBy) + ` \|$`)
		require.True(t, row.Match(readme),
			"docs/configuration.md's table lacks the row for %s with default %s, read by %s", v.Name, def, v.ReadBy)
	}
}

// TestLoad_AnIssuerNeedsAnAudience: CODEC_OIDC_ISSUER without
// CODEC_OIDC_AUDIENCE would accept the issuer's tokens for any
// application, so the configuration is refused.
func TestLoad_AnIssuerNeedsAnAudience(t *testing.T) {
	t.Parallel()
	env := map[string]string{"CODEC_OIDC_ISSUER": "https://sso.example.com"}
	_, err := LoadFrom(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	require.ErrorContains(t, err, "CODEC_OIDC_AUDIENCE is required")
	env["CODEC_OIDC_AUDIENCE"] = "temporal-ui"
	_, err = LoadFrom(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	require.NoError(t, err)
}
