package systemtest

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"

	"github.com/clerksync/clerksync/internal/clerkwebhook"
	"github.com/clerksync/clerksync/internal/config"
	"github.com/clerksync/clerksync/internal/testsupport/clerkfake"
	"github.com/clerksync/clerksync/internal/testsupport/openapitest"
	"github.com/clerksync/clerksync/internal/testsupport/testenv"
	"github.com/clerksync/clerksync/starter/service"
)

// tsTargets is what the TypeScript client's tests (ensure/typescript/test)
// are given in CLERKSYNC_TS_TARGETS.
type tsTargets struct {
	Starter       string            `json:"starter"`
	Unavailable   string            `json:"unavailable"`
	Slow          string            `json:"slow"`
	Nowhere       string            `json:"nowhere"`
	Keyed         string            `json:"keyed"`
	APIKey        string            `json:"apiKey"`
	Tokens        map[string]string `json:"tokens"`
	ExistingEmail string            `json:"existingEmail"`
}

// TestTypeScriptClient runs the TypeScript ensure client's tests (npm test
// in ensure/typescript: its generated types checked against the OpenAPI
// document, tsc, node --test), then the Next.js example's (type-checked
// against next and @clerk/nextjs, its patterns run), against real
// starters: one with a worker behind it (200, 401, 410), one whose
// Temporal is unreachable (503), one no worker serves (504). Every exchange
// is held to the OpenAPI document.
func TestTypeScriptClient(t *testing.T) {
	t.Parallel()
	npm, err := exec.LookPath("npm")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("npm is not on PATH: the TypeScript client's tests need Node.js 20 and npm")
		}
		t.Skip("npm is not on PATH: the TypeScript client's tests need Node.js 20 and npm")
	}
	root := repoRoot(t)
	tsClient, example := filepath.Join(root, "ensure", "typescript"), filepath.Join(root, "docs", "examples", "nextjs")
	for _, dir := range []string{tsClient, example} {
		if _, err := os.Stat(filepath.Join(dir, "node_modules")); err != nil {
			t.Fatalf("%s has no node_modules: run npm ci there (make test does)", dir)
		}
	}

	s := startSystem(t)
	const existing, deleted, fresh, slow = "user_ts_existing", "user_ts_deleted", "user_ts_fresh", "user_ts_slow"
	now := time.Now().Add(-time.Minute).Truncate(time.Millisecond)
	s.clerk.PutUsers(clerkfake.User{ID: fresh, Email: "fresh@example.com", CreatedAt: now, UpdatedAt: now},
		clerkfake.User{ID: slow, CreatedAt: now, UpdatedAt: now})
	body, err := clerkwebhook.UserEvent("user.created", clerkwebhook.UserFields{
		ClerkID: existing, Email: "ts@example.com", CreatedAt: now, UpdatedAt: now,
	})
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, s.post(t, "msg_ts_existing", body))
	body, err = clerkwebhook.DeletedEvent(deleted, time.Now())
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, s.post(t, "msg_ts_deleted", body))
	require.Eventually(t, func() bool {
		return s.count(t, "select count(*) from users where clerk_id = '"+existing+"' and email is not null")+
			s.count(t, "select count(*) from clerksync.user_tombstones where clerk_id = '"+deleted+"'") == 2
	}, 30*time.Second, 50*time.Millisecond)

	// The 503 and 504 starters share the system's database and fake Clerk.
	verifier, err := service.NewSignatureVerifier(testSecret)
	require.NoError(t, err)
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	// ENSURE_TIMEOUT is long enough that a loaded machine's signal-with-start
	// fits in it (a timeout is the row's, not Temporal's; see
	// TestEnsure_NoWorkerTimesOut), short enough for a quick 504.
	serve := func(tc client.Client, taskQueue string, apiKeys ...string) string {
		cfg := config.Config{TaskQueue: taskQueue, WebhookMaxBytes: 1 << 20, EnsureTimeout: 2 * time.Second,
			ClerkAPIURL: s.clerk.URL(), ClerkSecretKey: clerkfake.SecretKey, AuthorizedParties: []string{authorizedParty},
			EnsureAPIKeys: apiKeys}
		mux, err := service.NewMux(cfg, verifier, service.Connections{Store: s.store, Temporal: tc, Namespace: "default"}, logger)
		require.NoError(t, err)
		srv := httptest.NewServer(openapitest.Check(t, mux))
		t.Cleanup(srv.Close)
		return srv.URL
	}
	nowhere := testenv.RefusingAddr(t)
	dead, err := client.NewLazyClient(client.Options{HostPort: nowhere, Logger: tlog.NewStructuredLogger(logger)})
	require.NoError(t, err)
	t.Cleanup(dead.Close)

	// Tokens outlive both npm runs (tsc against next takes a while on a
	// loaded machine); the fake's default is a minute.
	token := func(id string) string {
		return s.clerk.Token(t, clerkfake.TokenClaims{Subject: id, AuthorizedParty: authorizedParty, Expiry: time.Now().Add(15 * time.Minute)})
	}
	targets, err := json.Marshal(tsTargets{
		Starter:     s.url,
		Unavailable: serve(dead, s.taskQueue),
		Slow:        serve(testenv.Temporal(t), "nobody-polls-ts"),
		Nowhere:     "http://" + nowhere,
		Keyed:       serve(testenv.Temporal(t), s.taskQueue, backendKey),
		APIKey:      backendKey,
		Tokens: map[string]string{
			"existing": token(existing), "fresh": token(fresh), "deleted": token(deleted),
			"slow": token(slow), "forged": "eyJhbGciOiJSUzI1NiJ9.e30.c2lnbmF0dXJl",
		},
		ExistingEmail: "ts@example.com",
	})
	require.NoError(t, err)
	// The client first: it builds what the example imports.
	for _, dir := range []string{tsClient, example} {
		cmd := exec.Command(npm, "test")
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "CLERKSYNC_TS_TARGETS="+string(targets))
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "npm test in %s:\n%s", dir, out)
		t.Logf("npm test in %s:\n%s", dir, out)
	}
}

// backendKey is the ENSURE_API_KEYS secret of the tests' keyed starters.
const backendKey = "backend-key-0123456789abcdef0123456789abcdef"
