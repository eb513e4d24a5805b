package service

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/clerksync/clerksync/internal/config"
	"github.com/clerksync/clerksync/internal/testsupport/clerkfake"
)

func newTestSessionVerifier(t *testing.T, fake *clerkfake.Server) *sessionVerifier {
	t.Helper()
	cfg := config.Config{ClerkAPIURL: fake.URL(), ClerkSecretKey: clerkfake.SecretKey}
	return newSessionVerifier(cfg.ClerkClient(), nil, nil)
}

func TestSessionVerifier_BearerSchemeIsCaseInsensitive(t *testing.T) {
	t.Parallel()
	fake := clerkfake.Start(t)
	v := newTestSessionVerifier(t, fake)
	token := fake.Token(t, clerkfake.TokenClaims{Subject: "user_case"})
	for _, header := range []string{"Bearer " + token, "bearer " + token, "BEARER  " + token} {
		sub, err := v.Verify(context.Background(), header)
		require.NoError(t, err, header[:8])
		require.Equal(t, "user_case", sub)
	}
	for _, header := range []string{"", "Bearer", "Bearer   ", "Basic " + token, token} {
		_, err := v.Verify(context.Background(), header)
		require.ErrorIs(t, err, errNoToken, "%.10q", header)
	}
}

func TestSessionVerifier_SubjectMustBeAClerkUserID(t *testing.T) {
	t.Parallel()
	fake := clerkfake.Start(t)
	v := newTestSessionVerifier(t, fake)
	for _, sub := range []string{"mch_2abc", "org_2abc", "sess_2abc", "user_has space", "user_../../x"} {
		_, err := v.Verify(context.Background(), "Bearer "+fake.Token(t, clerkfake.TokenClaims{Subject: sub}))
		require.ErrorIs(t, err, errInvalidToken, sub)
	}
}

// TestSessionVerifier_CachedKeysDoNotWaitForASlowFetch: while an unknown key
// ID waits on a slow JWKS fetch, tokens under the cached key verify at once.
func TestSessionVerifier_CachedKeysDoNotWaitForASlowFetch(t *testing.T) {
	t.Parallel()
	fake := clerkfake.Start(t)
	v := newTestSessionVerifier(t, fake)
	v.refreshInterval = 0
	good := "Bearer " + fake.Token(t, clerkfake.TokenClaims{Subject: "user_cached"})
	_, err := v.Verify(context.Background(), good) // caches the key
	require.NoError(t, err)

	fake.SlowJWKS(3 * time.Second)
	unknown := "Bearer " + fake.Token(t, clerkfake.TokenClaims{Subject: "user_cached", KeyID: "ins_unknown"})
	fetching := make(chan error, 1)
	go func() { _, err := v.Verify(context.Background(), unknown); fetching <- err }()
	require.Eventually(t, func() bool { return fake.Calls("/v1/jwks") == 2 }, 2*time.Second, 5*time.Millisecond)

	start := time.Now()
	_, err = v.Verify(context.Background(), good)
	require.NoError(t, err)
	require.Less(t, time.Since(start), time.Second, "a cached key waited on the fetch")
	require.ErrorIs(t, <-fetching, errInvalidToken)
}

// TestSessionVerifier_RefetchesAreSingleFlightAndRateLimited: a flood of
// tokens with unknown key IDs makes one JWKS fetch per refresh interval,
// whether the fetch fails or succeeds.
func TestSessionVerifier_RefetchesAreSingleFlightAndRateLimited(t *testing.T) {
	t.Parallel()
	fake := clerkfake.Start(t)
	v := newTestSessionVerifier(t, fake)
	flood := func(wantErr error) {
		var wg sync.WaitGroup
		for range 50 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				token := "Bearer " + fake.Token(t, clerkfake.TokenClaims{Subject: "user_flood", KeyID: "ins_forged"})
				_, err := v.Verify(context.Background(), token)
				assert.ErrorIs(t, err, wantErr)
			}()
		}
		wg.Wait()
	}
	fake.FailJWKS(http.StatusInternalServerError)
	flood(errKeysUnavailable)
	flood(errKeysUnavailable)
	require.Equal(t, 1, fake.Calls("/v1/jwks"), "a failing fetch is not retried within the interval")

	fake.FailJWKS(0)
	v.mu.Lock()
	v.lastFetch = time.Now().Add(-v.refreshInterval) // the interval has passed
	v.mu.Unlock()
	flood(errInvalidToken)
	flood(errInvalidToken)
	require.Equal(t, 2, fake.Calls("/v1/jwks"), "one fetch per interval, however many unknown key IDs arrive")

	_, err := v.Verify(context.Background(), "Bearer "+fake.Token(t, clerkfake.TokenClaims{Subject: "user_flood"}))
	require.NoError(t, err, "the real key was cached by that fetch")
}
