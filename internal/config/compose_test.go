package config_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/clerksync/clerksync/ensure/contract"
	"github.com/clerksync/clerksync/internal/buildinfo"
	"github.com/clerksync/clerksync/internal/config"
)

// composeEnv is what the README tells an operator to export before
// `docker compose up`.
var composeEnv = []string{
	"CLERK_WEBHOOK_SECRET=whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
	"PAYLOAD_KEYS=k1:Y2xlcmtzeW5jIGxvY2FsIGRldmVsb3BtZW50IG9ubHk=",
}

// loadCompose loads ../../docker-compose.yml as `docker compose` does.
func loadCompose(t *testing.T, env []string) (*types.Project, error) {
	t.Helper()
	opts, err := cli.NewProjectOptions([]string{"../../docker-compose.yml"},
		cli.WithWorkingDirectory("../.."), cli.WithEnv(env), cli.WithName("clerksync"))
	require.NoError(t, err)
	return opts.LoadProject(context.Background())
}

// TestDockerCompose_MatchesTheCode checks docker-compose.yml against what
// the binaries read, since CI has no Docker engine to run it: the worker's
// and the starter's environment holds only variables internal/config knows,
// parses, and sets the ones they need; the ports are the defaults; every
// long-running service has a health check; every image is pinned.
func TestDockerCompose_MatchesTheCode(t *testing.T) {
	project, err := loadCompose(t, composeEnv)
	require.NoError(t, err)

	configs := map[string]config.Config{}
	for _, name := range []string{"worker", "starter"} {
		svc, ok := project.Services[name]
		require.True(t, ok, "no %s service", name)
		for k := range svc.Environment {
			require.True(t, known(k), "%s is given %s, which internal/config does not know", name, k)
		}
		lookup := func(k string) (string, bool) {
			v, ok := svc.Environment[k]
			if !ok || v == nil {
				return "", false
			}
			return *v, true
		}
		cfg, err := config.LoadFrom(lookup)
		require.NoError(t, err, "%s's environment does not load", name)
		configs[name] = cfg
		for _, k := range []string{"DATABASE_URL", "TEMPORAL_ADDRESS", "PAYLOAD_KEYS"} {
			v, _ := lookup(k)
			require.NotEmpty(t, v, "%s needs %s", name, k)
		}
		require.NotNil(t, cfg.PayloadKeys, "%s encrypts payloads", name)
	}
	secret := project.Services["starter"].Environment["CLERK_WEBHOOK_SECRET"]
	require.NotNil(t, secret, "the starter needs CLERK_WEBHOOK_SECRET")

	// Ports: the defaults, published where the UI and the README expect.
	starter, worker := project.Services["starter"], project.Services["worker"]
	require.Equal(t, port(t, config.DefaultHTTPAddr), port(t, configs["starter"].HTTPAddr))
	require.Equal(t, port(t, config.DefaultWorkerHTTPAddr), port(t, configs["worker"].WorkerHTTPAddr))
	require.Len(t, starter.Ports, 1)
	require.Equal(t, port(t, config.DefaultHTTPAddr), strconv.Itoa(int(starter.Ports[0].Target)))
	published := starter.Ports[0].Published
	require.Contains(t, strings.Join(starter.HealthCheck.Test, " "), ":"+port(t, configs["starter"].HTTPAddr)+"/readyz")
	require.Contains(t, strings.Join(worker.HealthCheck.Test, " "), ":"+port(t, configs["worker"].WorkerHTTPAddr)+"/readyz")
	ui := project.Services["temporal-ui"]
	require.Equal(t, "http://localhost:"+published+"/codec", deref(ui.Environment["TEMPORAL_CODEC_ENDPOINT"]),
		"the UI decodes through the starter's /codec")
	require.Contains(t, configs["starter"].CodecCORSOrigins, "http://localhost:"+ui.Ports[0].Published,
		"the starter lets the UI's origin call /codec")

	// Health checks on everything that keeps running; one-shot setup jobs
	// are gated on by service_completed_successfully instead.
	for name, svc := range project.Services {
		if svc.Restart == "no" {
			continue
		}
		require.NotNil(t, svc.HealthCheck, "%s has no health check", name)
		require.NotEmpty(t, svc.HealthCheck.Test, "%s has no health check", name)
	}
	// Pinned images: a version tag, never latest; clerksync's own is built
	// and tagged with the release this checkout is.
	version := regexp.MustCompile(`^v?\d+(\.\d+)+`)
	for name, svc := range project.Services {
		if svc.Build != nil {
			require.Equal(t, "clerksync:"+buildinfo.Version, svc.Image, "%s's image is not tagged with internal/buildinfo.Version", name)
			continue
		}
		_, tag, ok := strings.Cut(svc.Image, ":")
		require.True(t, ok && version.MatchString(tag), "%s's image %q is not pinned to a version", name, svc.Image)
	}
	// The Temporal server carries the fix for CVE-2025-14986 (1.29.2).
	_, serverTag, _ := strings.Cut(project.Services["temporal"].Image, ":")
	require.True(t, atLeast(serverTag, 1, 29, 2), "temporalio/server %s predates 1.29.2", serverTag)
	require.True(t, strings.HasPrefix(project.Services["temporal"].Image, "temporalio/server:"), "the server runs from temporalio/server")
	// The setup job registers every search attribute the workflows set.
	setup := strings.Join(project.Services["temporal-setup"].Command, " ")
	for _, k := range contract.SearchAttributeKeys {
		require.Contains(t, setup, k.GetName())
	}
}

func TestDockerCompose_RefusesToStartWithoutItsSecrets(t *testing.T) {
	for i, missing := range []string{"CLERK_WEBHOOK_SECRET", "PAYLOAD_KEYS"} {
		env := []string{composeEnv[1-i]}
		_, err := loadCompose(t, env)
		require.ErrorContains(t, err, missing, "compose starts without %s", missing)
	}
}

// atLeast says whether the version v (1.30.1) is at least major.minor.patch.
func atLeast(v string, major, minor, patch int) bool {
	var got [3]int
	for i, f := range strings.SplitN(v, ".", 3) {
		n, err := strconv.Atoi(strings.TrimFunc(f, func(r rune) bool { return r < '0' || r > '9' }))
		if err != nil {
			return false
		}
		got[i] = n
	}
	want := [3]int{major, minor, patch}
	for i := range got {
		if got[i] != want[i] {
			return got[i] > want[i]
		}
	}
	return true
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// known says whether internal/config reads the variable (TEMPORAL_TLS_* by
// prefix).
func known(name string) bool {
	for _, v := range config.Vars {
		if v.Name == name || (strings.HasSuffix(v.Name, "*") && strings.HasPrefix(name, strings.TrimSuffix(v.Name, "*"))) {
			return true
		}
	}
	return false
}

func port(t *testing.T, addr string) string {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	require.NoError(t, err, addr)
	return p
}

// TestDockerCompose_ProvisionsPrometheusAndGrafana: compose's Prometheus
// loads clerksync's alerting rules and scrapes the worker and the starter,
// at their ports, under the job names the rules use; its image is the
// release of the promtool that tests the rules; Grafana gets Prometheus as
// its datasource and the generated dashboard, from files that exist.
func TestDockerCompose_ProvisionsPrometheusAndGrafana(t *testing.T) {
	project, err := loadCompose(t, composeEnv)
	require.NoError(t, err)
	prom, ok := project.Services["prometheus"]
	require.True(t, ok, "no prometheus service")
	require.True(t, slices.ContainsFunc(prom.Volumes, func(v types.ServiceVolumeConfig) bool {
		return strings.HasSuffix(v.Source, "deploy/prometheus") && v.Target == "/etc/prometheus" && v.ReadOnly
	}), "prometheus mounts deploy/prometheus read-only: %+v", prom.Volumes)
	promtool := regexp.MustCompile(`(?m)^PROMTOOL_VERSION := v0\.3(\d\d)\.(\d+)$`).FindStringSubmatch(readFile(t, "../../Makefile"))
	require.NotNil(t, promtool, "the Makefile pins PROMTOOL_VERSION")
	minor, _ := strconv.Atoi(promtool[1])
	require.Equal(t, fmt.Sprintf("prom/prometheus:v3.%d.%s", minor, promtool[2]), prom.Image,
		"Prometheus runs the release whose promtool tests the rules")

	var cfg struct {
		RuleFiles     []string `yaml:"rule_files"`
		ScrapeConfigs []struct {
			JobName       string `yaml:"job_name"`
			StaticConfigs []struct {
				Targets []string `yaml:"targets"`
			} `yaml:"static_configs"`
		} `yaml:"scrape_configs"`
	}
	require.NoError(t, yaml.Unmarshal([]byte(readFile(t, "../../deploy/prometheus/prometheus.yml")), &cfg))
	for _, f := range cfg.RuleFiles {
		_, err := os.Stat(filepath.Join("../../deploy/prometheus", f))
		require.NoError(t, err, "rule file %s", f)
	}
	require.Contains(t, cfg.RuleFiles, "alerts.yml")
	targets := map[string][]string{}
	for _, sc := range cfg.ScrapeConfigs {
		for _, st := range sc.StaticConfigs {
			targets[sc.JobName] = append(targets[sc.JobName], st.Targets...)
		}
	}
	require.Equal(t, []string{"worker:" + port(t, config.DefaultWorkerHTTPAddr)}, targets["clerksync-worker"])
	require.Equal(t, []string{"starter:" + port(t, config.DefaultHTTPAddr)}, targets["clerksync-starter"])
	for _, job := range regexp.MustCompile(`job="([^"]+)"`).FindAllStringSubmatch(readFile(t, "../../deploy/prometheus/alerts.yml"), -1) {
		require.Contains(t, targets, job[1], "alerts.yml watches job %s, which Prometheus does not scrape", job[1])
	}

	grafana, ok := project.Services["grafana"]
	require.True(t, ok, "no grafana service")
	mounted := map[string]string{}
	for _, v := range grafana.Volumes {
		rel, err := filepath.Rel(project.WorkingDir, v.Source)
		require.NoError(t, err)
		_, err = os.Stat(filepath.Join("../..", rel))
		require.NoError(t, err, "grafana mounts %s, which is not in the repository", rel)
		mounted[v.Target] = rel
	}
	require.Equal(t, "deploy/grafana/clerksync.json", mounted["/var/lib/grafana/dashboards/clerksync.json"])
	require.Equal(t, "deploy/grafana/provisioning", mounted["/etc/grafana/provisioning"])
	require.Contains(t, readFile(t, "../../deploy/grafana/provisioning/datasources/prometheus.yml"), "url: http://prometheus:"+
		strconv.Itoa(int(prom.Ports[0].Target)))
	require.Contains(t, readFile(t, "../../deploy/grafana/provisioning/dashboards/clerksync.yml"), "path: /var/lib/grafana/dashboards")
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return string(b)
}
