package ensure_test

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// deps lists the packages a program importing pkg links.
func deps(t *testing.T, pkg string) []string {
	t.Helper()
	out, err := exec.Command("go", "list", "-deps", pkg).Output()
	require.NoError(t, err, "go list -deps %s", pkg)
	return strings.Fields(string(out))
}

// linked returns the packages of deps under any of the prefixes.
func linked(deps []string, prefixes ...string) []string {
	var found []string
	for _, d := range deps {
		for _, p := range prefixes {
			if strings.HasPrefix(d, p) {
				found = append(found, d)
			}
		}
	}
	return found
}

// The server's dependencies a product that imports the library must not
// link: migrations, the codec's OpenID Connect, the worker's metrics.
var serverOnly = []string{
	"github.com/jackc/tern", "github.com/Masterminds/sprig", "github.com/coreos/go-oidc",
	"go.opentelemetry.io/otel/exporters", "go.opentelemetry.io/otel/sdk", "github.com/prometheus/client_golang",
	"github.com/clerksync/clerksync/internal/telemetry", "github.com/clerksync/clerksync/internal/config",
	"github.com/clerksync/clerksync/workflows", "github.com/clerksync/clerksync/activities",
}

func TestLibrary_LinksNoneOfTheServersDependencies(t *testing.T) {
	require.Empty(t, linked(deps(t, "github.com/clerksync/clerksync/ensure"), serverOnly...))
}

func TestMetrics_AddPrometheusAlone(t *testing.T) {
	d := deps(t, "github.com/clerksync/clerksync/ensure/ensuremetrics")
	require.NotEmpty(t, linked(d, "github.com/prometheus/client_golang"), "the product asked for metrics")
	require.Empty(t, linked(d, "go.opentelemetry.io", "github.com/jackc/tern", "github.com/coreos/go-oidc"))
}

func TestContract_DependsOnTheTemporalSDKAlone(t *testing.T) {
	require.Empty(t, linked(deps(t, "github.com/clerksync/clerksync/ensure/contract"),
		"github.com/clerksync/clerksync/internal", "github.com/jackc", "github.com/clerk/"))
}
