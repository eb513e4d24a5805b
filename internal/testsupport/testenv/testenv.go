// Package testenv starts the real dependencies of clerksync's integration
// tests: a PostgreSQL database of their own (created and dropped per test) and
// a Temporal dev server (one per test binary, on a free port) built from the
// pinned Temporal CLI.
//
// Outside CI a missing dependency skips the test with the reason; with
// CI=true it fails it, so a CI run never passes by skipping.
package testenv

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/testsuite"

	"github.com/clerksync/clerksync/ensure/contract"
	"github.com/clerksync/clerksync/internal/store"
	"github.com/clerksync/clerksync/internal/store/migrations"
)

// DefaultAdminURL is the server the test databases are created on.
const DefaultAdminURL = "postgres://127.0.0.1:5432/postgres"

// unavailable fails the test under CI and skips it elsewhere.
func unavailable(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s (CI=true: integration tests must not skip)", msg)
	}
	t.Skipf("%s; set CI=true to make this a failure", msg)
}

// Database creates an empty database for the test, drops it at cleanup, and
// returns its URL. TEST_DATABASE_URL names the server (default DefaultAdminURL).
func Database(t testing.TB) string {
	t.Helper()
	adminURL := os.Getenv("TEST_DATABASE_URL")
	if adminURL == "" {
		adminURL = DefaultAdminURL
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admin, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		unavailable(t, "PostgreSQL at %s: %v", redact(adminURL), err)
	}
	defer admin.Close(context.Background())
	name := "clerksync_test_" + strings.ToLower(rand.Text()[:12])
	if _, err := admin.Exec(ctx, "create database "+name); err != nil {
		t.Fatalf("create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, adminURL)
		if err != nil {
			t.Errorf("drop database %s: %v", name, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "drop database if exists "+name+" with (force)"); err != nil {
			t.Errorf("drop database %s: %v", name, err)
		}
	})
	u, err := url.Parse(adminURL)
	if err != nil {
		t.Fatalf("TEST_DATABASE_URL: %v", err)
	}
	u.Path = "/" + name
	return u.String()
}

// Store opens a migrated store on a fresh database, closed at cleanup.
func Store(t testing.TB) (*store.Store, string) {
	t.Helper()
	dbURL := Database(t)
	return migratedStore(t, dbURL, store.Layout{}), dbURL
}

// migratedStore opens a store on dbURL with layout and migrates it, closed
// at cleanup.
func migratedStore(t testing.TB, dbURL string, layout store.Layout) *store.Store {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, dbURL, layout)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	if err := migrations.Apply(ctx, st); err != nil {
		t.Fatal(err)
	}
	return st
}

var (
	devServerOnce sync.Once
	devServer     *testsuite.DevServer
	devServerErr  error
)

// Temporal returns a client of the package's dev server, starting it on first
// use. TEMPORAL_CLI names the pinned CLI binary (make temporal-cli builds it).
func Temporal(t testing.TB) client.Client {
	t.Helper()
	devServerOnce.Do(func() { devServer, devServerErr = startDevServer() })
	if devServerErr != nil {
		unavailable(t, "Temporal dev server: %v", devServerErr)
	}
	return devServer.Client()
}

// TemporalAddress returns the host:port of the dev server Temporal started.
func TemporalAddress(t testing.TB) string {
	t.Helper()
	Temporal(t)
	return devServer.FrontendHostPort()
}

// Main runs the package's tests, then stops the dev server if one started.
// Call it from TestMain: os.Exit(testenv.Main(m)).
func Main(m *testing.M) int {
	code := m.Run()
	if devServer != nil {
		if err := devServer.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "stop Temporal dev server:", err)
		}
	}
	return code
}

// TemporalCLI returns the path of the pinned Temporal CLI, for tests that
// run it as an operator would.
func TemporalCLI(t testing.TB) string {
	t.Helper()
	cli, err := temporalCLI()
	if err != nil {
		unavailable(t, "%v", err)
	}
	return cli
}

func temporalCLI() (string, error) {
	cli := os.Getenv("TEMPORAL_CLI")
	if cli == "" {
		found, err := exec.LookPath("temporal")
		if err != nil {
			return "", fmt.Errorf("TEMPORAL_CLI is not set and no temporal on PATH: run the tests with make test, which builds the pinned CLI")
		}
		cli = found
	}
	if _, err := os.Stat(cli); err != nil {
		return "", fmt.Errorf("TEMPORAL_CLI: %w", err)
	}
	return cli, nil
}

func startDevServer() (*testsuite.DevServer, error) {
	cli, err := temporalCLI()
	if err != nil {
		return nil, err
	}
	quiet := tlog.NewStructuredLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var extra []string
	for _, k := range contract.SearchAttributeKeys {
		extra = append(extra, "--search-attribute", k.GetName()+"="+k.GetValueType().String())
	}
	// A deleted closed execution (erasure) goes once the transfer queue's
	// ack level has passed its close task, which the server updates every
	// 30 s by default, and then on a backoff: each second here, so a
	// deletion lands within seconds on a busy test server.
	extra = append(extra, "--dynamic-config-value", `history.transferProcessorUpdateAckInterval="1s"`)
	return testsuite.StartDevServer(ctx, testsuite.DevServerOptions{
		ExistingPath:  cli,
		ClientOptions: &client.Options{Logger: quiet},
		LogLevel:      "error",
		ExtraArgs:     extra,
		// The dev server logs client disconnects (the chaos test's cuts) as
		// errors; the tests judge by their own assertions instead.
		Stdout: io.Discard,
		Stderr: io.Discard,
	})
}

func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}
