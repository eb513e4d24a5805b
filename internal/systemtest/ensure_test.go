package systemtest

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"

	"github.com/clerksync/clerksync/ensure"
	"github.com/clerksync/clerksync/ensure/contract"
	"github.com/clerksync/clerksync/internal/clerkwebhook"
	"github.com/clerksync/clerksync/internal/config"
	"github.com/clerksync/clerksync/internal/store"
	"github.com/clerksync/clerksync/internal/syncworker"
	"github.com/clerksync/clerksync/internal/testsupport/clerkfake"
	"github.com/clerksync/clerksync/internal/testsupport/openapitest"
	"github.com/clerksync/clerksync/internal/testsupport/testenv"
	"github.com/clerksync/clerksync/starter/service"
)

// ensureCall POSTs /v1/users/ensure with the token and decodes a 200's user.
// ensuredUser is what a test reads of ensure's answer: the row's JSON.
type ensuredUser struct {
	ID        string  `json:"id"`
	ClerkID   string  `json:"clerk_id"`
	Email     *string `json:"email"`
	FirstName *string `json:"first_name"`
}

func (s *system) ensureCall(t *testing.T, token string) (int, ensuredUser) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, s.url+"/v1/users/ensure", nil)
	if !assert.NoError(t, err) {
		return 0, ensuredUser{}
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if !assert.NoError(t, err) {
		return 0, ensuredUser{}
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var u ensuredUser
	if resp.StatusCode == http.StatusOK {
		assert.NoError(t, json.Unmarshal(body, &u), string(body))
	}
	return resp.StatusCode, u
}

func (s *system) token(t *testing.T, clerkID string) string {
	return s.clerk.Token(t, clerkfake.TokenClaims{Subject: clerkID, AuthorizedParty: authorizedParty})
}

// waitForRow polls until the user's row satisfies ok.
func (s *system) waitForRow(t *testing.T, clerkID string, ok func(email, first *string) bool) {
	t.Helper()
	require.Eventually(t, func() bool {
		var email, first *string
		err := s.db.QueryRow(context.Background(),
			`select email, first_name from users where clerk_id = $1`, clerkID).Scan(&email, &first)
		return err == nil && ok(email, first)
	}, time.Minute, 100*time.Millisecond)
}

func TestEnsure_ConcurrentEnsuresRacingTheWebhook(t *testing.T) {
	t.Parallel()
	s := startSystem(t)
	const id = "user_ensure_race"
	created := time.Now().Add(-time.Minute).Truncate(time.Millisecond)
	profile := clerkfake.User{ID: id, Email: "race@example.com", FirstName: "Race", CreatedAt: created, UpdatedAt: created}
	s.clerk.PutUser(profile)
	body, err := clerkwebhook.UserEvent("user.created", clerkwebhook.UserFields{
		ClerkID: id, Email: profile.Email, FirstName: profile.FirstName, CreatedAt: created, UpdatedAt: created,
	})
	require.NoError(t, err)

	token := s.token(t, id)
	var wg sync.WaitGroup
	ids := make([]string, 50)
	statuses := make([]int, 50)
	for i := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			code, u := s.ensureCall(t, token)
			statuses[i], ids[i] = code, u.ID
		}()
	}
	require.Equal(t, http.StatusOK, s.post(t, "msg_race_created", body))
	wg.Wait()
	for i := range ids {
		require.Equal(t, http.StatusOK, statuses[i])
		require.NotEmpty(t, ids[i])
		require.Equal(t, ids[0], ids[i], "every caller gets the same local UUID")
	}
	s.waitForRow(t, id, func(email, first *string) bool {
		return email != nil && *email == profile.Email && first != nil && *first == profile.FirstName
	})
	require.Equal(t, 1, s.count(t, "select count(*) from users"))
	code, u := s.ensureCall(t, token)
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, ids[0], u.ID)
	require.Equal(t, "race@example.com", *u.Email)
}

func TestEnsure_ClerkAPIDownGivesMinimalRowThenFullProfile(t *testing.T) {
	t.Parallel()
	s := startSystem(t)
	const id = "user_ensure_outage"
	now := time.Now().Truncate(time.Millisecond)
	s.clerk.PutUser(clerkfake.User{ID: id, Email: "late@example.com", FirstName: "Late", CreatedAt: now, UpdatedAt: now})
	s.clerk.FailWith(http.StatusInternalServerError)

	code, u := s.ensureCall(t, s.token(t, id))
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, id, u.ClerkID)
	require.Nil(t, u.Email, "the minimal row knows only the Clerk ID")
	require.Nil(t, u.FirstName)

	require.Eventually(t, func() bool { return s.clerk.Calls("/v1/users/"+id) >= 2 }, 30*time.Second, 50*time.Millisecond,
		"the worker retries the failing Clerk API")
	s.clerk.FailWith(0)
	s.waitForRow(t, id, func(email, first *string) bool {
		return email != nil && *email == "late@example.com" && first != nil && *first == "Late"
	})
	code, again := s.ensureCall(t, s.token(t, id))
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, u.ID, again.ID, "the full profile fills the same row")
}

func TestEnsure_DeletedUserIsGone(t *testing.T) {
	t.Parallel()
	s := startSystem(t)
	const id = "user_ensure_deleted"
	body, err := clerkwebhook.DeletedEvent(id, time.Now())
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, s.post(t, "msg_ensure_del", body))
	require.Eventually(t, func() bool {
		return s.count(t, "select count(*) from clerksync.user_tombstones where clerk_id = '"+id+"'") == 1
	}, 30*time.Second, 50*time.Millisecond)

	code, _ := s.ensureCall(t, s.token(t, id))
	require.Equal(t, http.StatusGone, code)
	require.Zero(t, s.count(t, "select count(*) from users"))
	s.findsBySyncState(t, id, contract.SyncStateDeleted)
}

// TestEnsure_UserClerkDoesNotKnowKeepsMinimalRow: Clerk's 404 (a worker
// whose key belongs to another Clerk instance gets one for every user) is
// not a deletion: the minimal row stays, the user shows failed, and a later
// webhook still fills the row.
func TestEnsure_UserClerkDoesNotKnowKeepsMinimalRow(t *testing.T) {
	t.Parallel()
	s := startSystem(t)
	const id = "user_ensure_unknown" // Clerk answers 404
	code, first := s.ensureCall(t, s.token(t, id))
	require.Equal(t, http.StatusOK, code, "the minimal row comes first")
	require.Eventually(t, func() bool {
		st, err := s.userState(id)
		return err == nil && st.SyncState == contract.SyncStateFailed
	}, 30*time.Second, 50*time.Millisecond, "the 404 shows the user failed")
	st, err := s.userState(id)
	require.NoError(t, err)
	require.Contains(t, st.Failed[0].Error, "CLERK_SECRET_KEY may belong to another Clerk instance")
	require.Zero(t, s.count(t, "select count(*) from clerksync.user_tombstones"), "a 404 never tombstones")
	s.findsBySyncState(t, id, contract.SyncStateFailed)

	code, again := s.ensureCall(t, s.token(t, id))
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, first.ID, again.ID)
	require.Equal(t, 1, s.clerk.Calls("/v1/users/"+id), "the profile is not fetched again")

	now := time.Now().Truncate(time.Millisecond)
	body, err := clerkwebhook.UserEvent("user.created", clerkwebhook.UserFields{
		ClerkID: id, Email: "found@example.com", CreatedAt: now, UpdatedAt: now,
	})
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, s.post(t, "msg_unknown_created", body))
	s.waitForRow(t, id, func(email, _ *string) bool { return email != nil && *email == "found@example.com" })
}

func TestEnsure_RefusesBadTokens(t *testing.T) {
	t.Parallel()
	s := startSystem(t)
	otherKey, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	const id = "user_ensure_tokens"
	for name, token := range map[string]string{
		"missing":           "",
		"garbage":           "not.a.jwt",
		"expired":           s.clerk.Token(t, clerkfake.TokenClaims{Subject: id, AuthorizedParty: authorizedParty, Expiry: time.Now().Add(-time.Minute)}),
		"wrong issuer":      s.clerk.Token(t, clerkfake.TokenClaims{Subject: id, AuthorizedParty: authorizedParty, Issuer: "https://evil.example.com"}),
		"forged signature":  s.clerk.Token(t, clerkfake.TokenClaims{Subject: id, AuthorizedParty: authorizedParty, SigningKey: otherKey}),
		"wrong party (azp)": s.clerk.Token(t, clerkfake.TokenClaims{Subject: id, AuthorizedParty: "https://evil.example.com"}),
		"no subject":        s.clerk.Token(t, clerkfake.TokenClaims{AuthorizedParty: authorizedParty}),
	} {
		code, _ := s.ensureCall(t, token)
		require.Equal(t, http.StatusUnauthorized, code, name)
	}
	require.Zero(t, s.count(t, "select count(*) from users"), "no refused call created a row")
	require.Zero(t, s.clerk.Calls("/v1/users/"+id))
	require.Equal(t, 1, s.clerk.Calls("/v1/jwks"), "Clerk's keys are fetched once and cached")
}

// TestEnsure_UnavailableAndTimeoutAnswers: Temporal unreachable is 503 with
// Retry-After; a workflow that does not write the row in time is 504.
func TestEnsure_UnavailableAndTimeoutAnswers(t *testing.T) {
	t.Parallel()
	st, _ := testenv.Store(t)
	fake := clerkfake.Start(t)
	verifier, err := service.NewSignatureVerifier(testSecret)
	require.NoError(t, err)
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))

	dead, err := client.NewLazyClient(client.Options{HostPort: testenv.RefusingAddr(t), Logger: tlog.NewStructuredLogger(logger)})
	require.NoError(t, err)
	defer dead.Close()

	for _, tc := range []struct {
		name   string
		client client.Client
		want   int
	}{
		{"temporal unreachable", dead, http.StatusServiceUnavailable},
		{"no worker writes the row", testenv.Temporal(t), http.StatusGatewayTimeout},
	} {
		cfg := config.Config{
			TaskQueue: "nobody-polls-" + strings.ReplaceAll(tc.name, " ", "-"), WebhookMaxBytes: 1 << 20,
			EnsureTimeout: 500 * time.Millisecond,
			ClerkAPIURL:   fake.URL(), ClerkSecretKey: clerkfake.SecretKey,
		}
		mux, err := service.NewMux(cfg, verifier, service.Connections{Store: st, Temporal: tc.client, Namespace: "default"}, logger)
		require.NoError(t, err)
		srv := httptest.NewServer(openapitest.Check(t, mux))
		req, err := http.NewRequest(http.MethodPost, srv.URL+"/v1/users/ensure", nil)
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+fake.Token(t, clerkfake.TokenClaims{Subject: "user_unanswered"}))
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		srv.Close()
		require.Equal(t, tc.want, resp.StatusCode, tc.name)
		if tc.want == http.StatusServiceUnavailable {
			require.NotEmpty(t, resp.Header.Get("Retry-After"))
		}
	}
}

// TestEnsure_MinimalRowOutlastsADatabaseOutage: the worker loses PostgreSQL
// for 30 s while an ensure is waiting. No write has a retry budget, so the
// minimal row lands once the database is back, and a later ensure finds it.
func TestEnsure_MinimalRowOutlastsADatabaseOutage(t *testing.T) {
	t.Parallel()
	st, dbURL := testenv.Store(t)
	u, err := url.Parse(dbURL)
	require.NoError(t, err)
	proxy := testenv.StartProxy(t, u.Host)
	u.Host = proxy.Addr()
	workerStore, err := store.Open(context.Background(), u.String(), store.Layout{})
	require.NoError(t, err)
	t.Cleanup(workerStore.Close)

	tc := testenv.Temporal(t)
	taskQueue := "e2e-" + strings.ToLower(t.Name())
	w := syncworker.New(tc, syncworker.Options{TaskQueue: taskQueue, Store: workerStore})
	require.NoError(t, w.Start())
	t.Cleanup(w.Stop)
	ensurer, err := ensure.New(ensure.Options{Temporal: tc, Pool: st.Pool(), TaskQueue: taskQueue, Timeout: 2 * time.Second})
	require.NoError(t, err)

	const id = "user_ensure_db_outage"
	proxy.Cut()
	_, err = ensurer.Ensure(context.Background(), id)
	require.ErrorIs(t, err, ensure.ErrTimeout, "the worker cannot write while the database is away")
	time.Sleep(30 * time.Second)
	proxy.Restore()

	require.Eventually(t, func() bool {
		_, err := st.UserByClerkID(context.Background(), id)
		return err == nil
	}, 45*time.Second, 200*time.Millisecond, "the minimal row never landed: its retries gave up during the outage")
	row, err := ensurer.Ensure(context.Background(), id)
	require.NoError(t, err)
	require.Equal(t, id, row.ClerkID)
}

// TestEnsure_FillsAMembershipsMinimalRow: a membership webhook gives its
// member a minimal row (the user's own user.created was lost). The next
// ensure finds that row and has the user's workflow fill it from Clerk,
// with the trial a signup gets, on the same row the membership points at.
func TestEnsure_FillsAMembershipsMinimalRow(t *testing.T) {
	t.Parallel()
	s := startSystem(t)
	const id = "user_member_first"
	now := time.Now().Truncate(time.Millisecond)
	s.clerk.PutUser(clerkfake.User{ID: id, Email: "member@example.com", FirstName: "Memberfirst", CreatedAt: now, UpdatedAt: now})
	org := clerkwebhook.OrganizationFields{ClerkID: "org_member_first", Name: "Members", Slug: "members", CreatedAt: now, UpdatedAt: now}
	body, err := clerkwebhook.MembershipEvent("organizationMembership.created", clerkwebhook.MembershipFields{
		ClerkID: "orgmem_member_first", UserID: id, Role: "org:member", Organization: org, CreatedAt: now, UpdatedAt: now})
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, s.post(t, "msg_member_first", body))
	s.waitForRow(t, id, func(email, first *string) bool { return email == nil && first == nil })

	code, u := s.ensureCall(t, s.token(t, id))
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, id, u.ClerkID)
	s.waitForRow(t, id, func(email, first *string) bool {
		return email != nil && *email == "member@example.com" && first != nil && *first == "Memberfirst"
	})
	require.Eventually(t, func() bool {
		return s.count(t, "select count(*) from subscriptions s join users u on u.id = s.user_id where u.clerk_id = 'user_member_first' and s.status = 'trialing'") == 1
	}, 30*time.Second, 100*time.Millisecond, "the filled row gets the trial a signup would")
	code, again := s.ensureCall(t, s.token(t, id))
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, u.ID, again.ID, "the same row the membership references")
	require.NotNil(t, again.Email)
	require.Equal(t, 1, s.count(t, "select count(*) from organization_memberships m join users u on u.id = m.user_id where u.clerk_id = 'user_member_first'"))
}

// TestEnsure_OnlyTheProductsBackend: with ENSURE_API_KEYS set, an ensure
// carrying a valid session token but not one of the keys (as a signed-in
// user's browser would send it) is refused with 403 and starts nothing;
// one with a wrong key likewise; the backend's key, the old or the new one
// during a rotation, gets the row.
func TestEnsure_OnlyTheProductsBackend(t *testing.T) {
	t.Parallel()
	const oldKey = "rotated-out-soon-0123456789abcdef0123"
	s := startSystem(t, func(c *config.Config) { c.EnsureAPIKeys = []string{backendKey, oldKey} })
	const id = "user_ensure_backend"
	now := time.Now().Add(-time.Minute).Truncate(time.Millisecond)
	s.clerk.PutUser(clerkfake.User{ID: id, Email: "backend@example.com", CreatedAt: now, UpdatedAt: now})
	call := func(key string) (int, string) {
		req, err := http.NewRequest(http.MethodPost, s.url+"/v1/users/ensure", nil)
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+s.token(t, id))
		if key != "" {
			req.Header.Set(service.APIKeyHeader, key)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	for _, key := range []string{"", "guessed-" + backendKey} {
		code, body := call(key)
		require.Equal(t, http.StatusForbidden, code, body)
		require.Contains(t, body, service.APIKeyHeader)
	}
	_, err := s.temporal.DescribeWorkflowExecution(context.Background(), contract.User.WorkflowID(s.taskQueue, id), "")
	var notFound *serviceerror.NotFound
	require.ErrorAs(t, err, &notFound, "a refused ensure started the user's workflow")
	require.Zero(t, s.count(t, "select count(*) from users where clerk_id = '"+id+"'"))

	for _, key := range []string{backendKey, oldKey} {
		code, body := call(key)
		require.Equal(t, http.StatusOK, code, body)
		require.Contains(t, body, id)
	}
}
