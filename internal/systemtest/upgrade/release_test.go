//go:build upgrade

package upgrade_test

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/clerksync/clerksync/internal/testsupport/testenv"
)

// release is a deployed clerksync release, built from the repository's own
// history.
type release struct {
	name, commit string
}

// releases are every release an upgrade to this checkout must start from:
// the oldest deployed one and the newest (docs/upgrading.md). Add each
// release here when it is cut.
var releases = []release{
	{name: "v0.1.0", commit: "154ae89efd48885668c255284d9ee19fb575cefa"},
}

// build is one build of clerksync's worker and starter binaries.
type build struct {
	name string // the release's name, or "checkout"
	dir  string // holds worker and starter
}

// buildRelease builds r's worker and starter from the repository's history
// into the cache (RELEASE_CACHE, which make test-upgrade sets; a temporary
// directory otherwise), once: a release never changes.
func buildRelease(t *testing.T, r release) build {
	t.Helper()
	cache := os.Getenv("RELEASE_CACHE")
	if cache == "" {
		cache = t.TempDir()
	}
	dir := filepath.Join(cache, r.commit)
	if _, err := os.Stat(filepath.Join(dir, "starter")); err == nil {
		return build{name: r.name, dir: dir}
	}
	top, err := exec.Command("git", "rev-parse", "--show-toplevel").Output()
	require.NoError(t, err, "make test-upgrade builds releases from the repository's history: run it in a git checkout")
	if out, err := exec.Command("git", "-C", strings.TrimSpace(string(top)), "cat-file", "-e", r.commit+"^{commit}").CombinedOutput(); err != nil {
		t.Fatalf("release %s (commit %s) is not in this clone (a shallow clone? git fetch --unshallow): %v %s", r.name, r.commit, err, out)
	}
	src := t.TempDir()
	archive := exec.Command("git", "-C", strings.TrimSpace(string(top)), "archive", "--format=tar", r.commit)
	extract := exec.Command("tar", "-x", "-C", src)
	var stderr bytes.Buffer
	extract.Stdin, err = archive.StdoutPipe()
	require.NoError(t, err)
	archive.Stderr, extract.Stderr = &stderr, &stderr
	require.NoError(t, extract.Start())
	require.NoError(t, archive.Run(), "git archive %s: %s", r.commit, &stderr)
	require.NoError(t, extract.Wait(), "tar: %s", &stderr)
	// Built into a fresh directory, renamed into place whole: a build cut
	// short never passes for a release.
	tmp, err := os.MkdirTemp(cache, r.commit+".partial-")
	require.NoError(t, err)
	defer os.RemoveAll(tmp)
	for _, pkg := range []string{"worker", "starter"} {
		cmd := exec.Command("go", "build", "-trimpath", "-o", filepath.Join(tmp, pkg), "./"+pkg)
		cmd.Dir = src
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "build %s of %s: %s", pkg, r.name, out)
	}
	if err := os.Rename(tmp, dir); err != nil && !os.IsExist(err) {
		// Another run cached it meanwhile: the same commit builds the same.
		if _, statErr := os.Stat(filepath.Join(dir, "starter")); statErr != nil {
			t.Fatalf("cache %s: %v", r.name, err)
		}
	}
	return build{name: r.name, dir: dir}
}

// process is a running worker or starter of a build.
type process struct {
	*testenv.Process
	url string // its HTTP address: the starter's service, the worker's health
}

// startWorker runs b's worker with env and waits until it is ready.
func (b build) startWorker(t *testing.T, logs string, env []string) process {
	t.Helper()
	addr := testenv.FreeAddr(t)
	p := testenv.StartProcess(t, logs, b.name+"-worker-"+nextStart(), append(env, "WORKER_HTTP_ADDR="+addr), filepath.Join(b.dir, "worker"))
	waitReady(t, "http://"+addr, b.name+"'s worker")
	return process{p, "http://" + addr}
}

// startStarter runs b's starter with env and waits until it is ready.
func (b build) startStarter(t *testing.T, logs string, env []string) process {
	t.Helper()
	addr := testenv.FreeAddr(t)
	p := testenv.StartProcess(t, logs, b.name+"-starter-"+nextStart(), append(env, "HTTP_ADDR="+addr, "WORKER_HTTP_ADDR="+testenv.FreeAddr(t)),
		filepath.Join(b.dir, "starter"), "serve")
	waitReady(t, "http://"+addr, b.name+"'s starter")
	return process{p, "http://" + addr}
}

var (
	startsMu sync.Mutex
	starts   int
)

// nextStart numbers the processes' logs.
func nextStart() string {
	startsMu.Lock()
	defer startsMu.Unlock()
	starts++
	return fmt.Sprint(starts)
}

func waitReady(t *testing.T, base, what string) {
	t.Helper()
	require.Eventually(t, func() bool {
		resp, err := http.Get(base + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 2*time.Minute, 100*time.Millisecond, "%s never became ready", what)
}

// frontDoor is the load balancer in front of the starters during a
// rolling deploy: it sends each request to the next starter in rotation,
// and answers 503 (as a balancer with no healthy backend does, so Svix
// retries) when the one it picked is gone.
type frontDoor struct {
	mu       sync.Mutex
	backends []*url.URL
	next     int
	server   *http.Server
	URL      string
}

func startFrontDoor(t *testing.T) *frontDoor {
	t.Helper()
	f := &frontDoor{}
	proxy := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) { r.SetURL(f.pick()) },
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, _ error) {
			w.WriteHeader(http.StatusServiceUnavailable)
		},
	}
	addr := testenv.FreeAddr(t)
	f.server = &http.Server{Addr: addr, Handler: proxy, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = f.server.ListenAndServe() }()
	t.Cleanup(func() { _ = f.server.Close() })
	f.URL = "http://" + addr
	waitListening(t, addr)
	return f
}

// route sends every later request to the starters at urls, in rotation.
func (f *frontDoor) route(t *testing.T, starters ...process) {
	t.Helper()
	var backends []*url.URL
	for _, s := range starters {
		u, err := url.Parse(s.url)
		require.NoError(t, err)
		backends = append(backends, u)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.backends = backends
}

func (f *frontDoor) pick() *url.URL {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.next++
	return f.backends[f.next%len(f.backends)]
}

func waitListening(t *testing.T, addr string) {
	t.Helper()
	require.Eventually(t, func() bool {
		conn, err := net.Dial("tcp", addr)
		if err == nil {
			conn.Close()
		}
		return err == nil
	}, 10*time.Second, 20*time.Millisecond)
}
