package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/clerksync/clerksync/internal/testsupport/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

// TestWorker_ExitsWhenItsNamespaceIsDeleted: an error the worker cannot
// recover from (here its namespace deleted under it) ends the process with
// the cause, instead of a process that lives on without polling. The SDK
// retries such poll errors for two minutes first, in case a proxy answered
// wrongly.
func TestWorker_ExitsWhenItsNamespaceIsDeleted(t *testing.T) {
	t.Parallel()
	dbURL := testenv.Database(t)
	address := testenv.TemporalAddress(t)
	ns := "doomed-" + strings.ToLower(rand.Text()[:8])
	nc, err := client.NewNamespaceClient(client.Options{HostPort: address})
	require.NoError(t, err)
	defer nc.Close()
	ctx := context.Background()
	require.NoError(t, nc.Register(ctx, &workflowservice.RegisterNamespaceRequest{
		Namespace: ns, WorkflowExecutionRetentionPeriod: durationpb.New(24 * time.Hour),
	}))

	httpAddr := testenv.FreeAddr(t)
	logs, exited := startWorker(t, "DATABASE_URL="+dbURL, "TEMPORAL_ADDRESS="+address, "TEMPORAL_NAMESPACE="+ns,
		"WORKER_HTTP_ADDR="+httpAddr)
	require.Eventually(t, func() bool { return strings.Contains(logs.String(), "Worker polling") }, time.Minute, 100*time.Millisecond,
		"the worker never started polling: %s", logs)
	require.Eventually(t, func() bool { return get(httpAddr, "/readyz") == http.StatusOK }, 30*time.Second, 100*time.Millisecond,
		"the polling worker never said it was ready")

	c, err := client.Dial(client.Options{HostPort: address})
	require.NoError(t, err)
	defer c.Close()
	_, err = c.OperatorService().DeleteNamespace(ctx, &operatorservice.DeleteNamespaceRequest{Namespace: ns})
	require.NoError(t, err)

	select {
	case err := <-exited:
		var exit *exec.ExitError
		require.True(t, errors.As(err, &exit), "the worker exited cleanly after a fatal error: %v", err)
		require.Equal(t, 1, exit.ExitCode())
		require.Contains(t, logs.String(), "worker: worker stopped polling clerksync in namespace "+ns)
		require.Equal(t, 0, get(httpAddr, "/healthz"), "/healthz still answers after the worker exited")
	case <-time.After(4 * time.Minute):
		t.Fatalf("the worker kept running with its namespace gone: %s", logs)
	}
}

// startWorker builds the worker binary and runs it with env (and PATH)
// until the test ends; it returns the process's output and its exit.
func startWorker(t *testing.T, env ...string) (*testenv.LogBuffer, <-chan error) {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "worker")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	require.NoError(t, err, "build worker: %s", out)
	cmd := exec.Command(bin)
	cmd.Env = append(env, "PATH="+os.Getenv("PATH"))
	logs := &testenv.LogBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	require.NoError(t, cmd.Start())
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	return logs, exited
}

// get returns the status of GET path on addr, or 0 when nothing answers.
func get(addr, path string) int {
	resp, err := http.Get("http://" + addr + path)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestWorker_ExitsOnATableItDidNotCreate: a database that already holds a
// users table of the product's own (no clerksync version table beside it)
// makes the worker exit non-zero at once, naming the table and what to do,
// instead of retrying a migration that can never pass.
func TestWorker_ExitsOnATableItDidNotCreate(t *testing.T) {
	t.Parallel()
	dbURL := testenv.Database(t)
	db, err := pgx.Connect(context.Background(), dbURL)
	require.NoError(t, err)
	_, err = db.Exec(context.Background(), `create table users (id serial primary key, clerk_user_id text unique, email text not null)`)
	require.NoError(t, err)
	require.NoError(t, db.Close(context.Background()))

	logs, exited := startWorker(t, "DATABASE_URL="+dbURL, "TEMPORAL_ADDRESS="+testenv.FreeAddr(t), "WORKER_HTTP_ADDR="+testenv.FreeAddr(t))
	select {
	case err := <-exited:
		var exit *exec.ExitError
		require.True(t, errors.As(err, &exit), "the worker exited cleanly: %v", err)
		require.Equal(t, 1, exit.ExitCode())
		require.Contains(t, logs.String(), "table public.users already exists and clerksync did not create it")
		require.Contains(t, logs.String(), "CLERKSYNC_MAPPING", "the message points at the mapping")
		require.NotContains(t, logs.String(), "retrying", "a migration that can never pass is not retried")
	case <-time.After(30 * time.Second):
		t.Fatalf("the worker kept retrying a migration that can never pass: %s", logs)
	}
}

// TestWorker_ExitsOnAMappingTheDatabaseCannotTake: a mapping whose column
// the product's table lacks makes the worker exit non-zero at once, the
// table, the column and the fix in its log, and creates nothing in the
// product's schema.
func TestWorker_ExitsOnAMappingTheDatabaseCannotTake(t *testing.T) {
	t.Parallel()
	dbURL := testenv.Prisma.ProductDatabase(t, "UTC")
	doc, err := os.ReadFile(testenv.Prisma.MappingFile())
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "clerksync.yaml")
	require.NoError(t, os.WriteFile(path, bytes.Replace(doc, []byte("username: username"), []byte("handle: username"), 1), 0o600))

	logs, exited := startWorker(t, "DATABASE_URL="+dbURL, "CLERKSYNC_MAPPING="+path,
		"TEMPORAL_ADDRESS="+testenv.FreeAddr(t), "WORKER_HTTP_ADDR="+testenv.FreeAddr(t))
	select {
	case err := <-exited:
		var exit *exec.ExitError
		require.True(t, errors.As(err, &exit), "the worker exited cleanly: %v", err)
		require.Equal(t, 1, exit.ExitCode())
		require.Contains(t, logs.String(), "users table public.User, column handle: no such column")
		require.NotContains(t, logs.String(), "retrying")
	case <-time.After(30 * time.Second):
		t.Fatalf("the worker kept retrying a mapping that can never fit: %s", logs)
	}
	db, err := pgx.Connect(context.Background(), dbURL)
	require.NoError(t, err)
	defer db.Close(context.Background())
	var tables int
	require.NoError(t, db.QueryRow(context.Background(), `select count(*) from information_schema.tables where table_schema = 'public'`).Scan(&tables))
	require.Equal(t, 3, tables, "the app's three tables, nothing of clerksync's")
}
