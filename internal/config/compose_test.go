package config_test

import (
	"context"
	"net"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/stretchr/testify/require"

	"github.com/clerksync/clerksync/internal/buildinfo"
	"github.com/clerksync/clerksync/internal/config"
	"github.com/clerksync/clerksync/workflows"
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
	version := regexp.MustCompile(`^\d+(\.\d+)+`)
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
	for _, k := range workflows.SearchAttributeKeys {
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
