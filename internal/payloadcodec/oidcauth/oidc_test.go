package oidcauth

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/stretchr/testify/require"
	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/clerksync/clerksync/internal/payloadcodec"
)

// fakeIssuer is an OpenID Connect issuer: discovery and its JWKS.
type fakeIssuer struct {
	srv *httptest.Server
	key *rsa.PrivateKey
	// fetches counts the requests for its keys.
	fetches atomic.Int32
}

func (f *fakeIssuer) keyFetches() int { return int(f.fetches.Load()) }

func startIssuer(t *testing.T) *fakeIssuer {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	f := &fakeIssuer{key: key}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]any{
			"issuer": f.srv.URL, "jwks_uri": f.srv.URL + "/keys", "authorization_endpoint": f.srv.URL + "/auth",
			"token_endpoint": f.srv.URL + "/token", "id_token_signing_alg_values_supported": []string{"RS256"},
		})
	})
	mux.HandleFunc("GET /keys", func(w http.ResponseWriter, _ *http.Request) {
		f.fetches.Add(1)
		_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "k1", Algorithm: "RS256", Use: "sig"}}})
	})
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeIssuer) token(t *testing.T, key *rsa.PrivateKey, aud string, exp time.Time) string {
	t.Helper()
	return f.tokenWithKeyID(t, key, "k1", aud, exp)
}

func (f *fakeIssuer) tokenWithKeyID(t *testing.T, key *rsa.PrivateKey, kid, aud string, exp time.Time) string {
	t.Helper()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: key}, (&jose.SignerOptions{}).WithHeader("kid", kid))
	require.NoError(t, err)
	tok, err := jwt.Signed(signer).Claims(map[string]any{
		"iss": f.srv.URL, "sub": "operator@example.com", "aud": aud, "exp": exp.Unix(), "iat": time.Now().Unix(),
	}).Serialize()
	require.NoError(t, err)
	return tok
}

// TestServer_AcceptsTheUIsForwardedAccessToken: with an OIDC issuer set,
// /codec takes a valid access token of that issuer (for the audience), as
// a Temporal UI behind SSO forwards it, and refuses forged, expired and
// wrong-audience ones; the static token keeps working beside it.
func TestServer_AcceptsTheUIsForwardedAccessToken(t *testing.T) {
	issuer := startIssuer(t)
	ks, err := payloadcodec.ParseKeys("a:" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte("k"), 32)))
	require.NoError(t, err)
	verifier, err := NewVerifier(issuer.srv.URL, "temporal-ui")
	require.NoError(t, err)
	srv := httptest.NewServer(payloadcodec.Handler(ks, payloadcodec.ServerOptions{AuthToken: "static", AccessTokens: verifier}))
	defer srv.Close()
	plain, err := converter.GetDefaultDataConverter().ToPayload("x")
	require.NoError(t, err)
	enc, err := ks.Codec().Encode([]*commonpb.Payload{plain})
	require.NoError(t, err)
	body, err := protojson.Marshal(&commonpb.Payloads{Payloads: enc})
	require.NoError(t, err)
	decode := func(token string) int {
		req, err := http.NewRequest(http.MethodPost, srv.URL+"/codec/decode", bytes.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	hour := time.Now().Add(time.Hour)
	require.Equal(t, http.StatusOK, decode(issuer.token(t, issuer.key, "temporal-ui", hour)))
	require.Equal(t, http.StatusOK, decode("static"))
	require.Equal(t, http.StatusUnauthorized, decode(issuer.token(t, other, "temporal-ui", hour)), "forged")
	require.Equal(t, http.StatusUnauthorized, decode(issuer.token(t, issuer.key, "temporal-ui", time.Now().Add(-time.Minute))), "expired")
	require.Equal(t, http.StatusUnauthorized, decode(issuer.token(t, issuer.key, "someone-else", hour)), "wrong audience")
	require.Equal(t, http.StatusUnauthorized, decode("garbage"))
}

// TestVerifier_AHungIssuerBlocksNoRequest: an issuer that accepts
// connections and never answers. Each request with a token gives up when
// its own context ends; none waits behind another's discovery.
func TestVerifier_AHungIssuerBlocksNoRequest(t *testing.T) {
	t.Parallel()
	hung := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-hung:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(hung)
	v, err := NewVerifier(srv.URL, "temporal-ui")
	require.NoError(t, err)
	errs := make(chan error, 3)
	began := time.Now()
	for range 3 {
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			errs <- v.Verify(ctx, "token")
		}()
	}
	for range 3 {
		select {
		case err := <-errs:
			require.ErrorIs(t, err, context.DeadlineExceeded)
		case <-time.After(5 * time.Second):
			t.Fatalf("a request waited %s behind a discovery that never ends", time.Since(began).Round(time.Millisecond))
		}
	}
}

// TestVerifier_UnknownKeysRefetchAtMostOnceAMinute: a flood of tokens
// signed by keys the issuer does not publish are all refused, and fetch the
// issuer's keys once (the first token) and again at most once, not once
// each; a valid token still passes.
func TestVerifier_UnknownKeysRefetchAtMostOnceAMinute(t *testing.T) {
	t.Parallel()
	issuer := startIssuer(t)
	v, err := NewVerifier(issuer.srv.URL, "temporal-ui")
	require.NoError(t, err)
	ctx := context.Background()
	hour := time.Now().Add(time.Hour)
	require.NoError(t, v.Verify(ctx, issuer.token(t, issuer.key, "temporal-ui", hour)))
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	for i := range 20 {
		require.Error(t, v.Verify(ctx, issuer.tokenWithKeyID(t, other, fmt.Sprintf("rotated-%d", i), "temporal-ui", hour)))
	}
	require.LessOrEqual(t, issuer.keyFetches(), 2, "the issuer's keys are refetched at most once a minute")
	require.NoError(t, v.Verify(ctx, issuer.token(t, issuer.key, "temporal-ui", hour)))
}

// TestNewVerifier_RequiresAnAudience: without an audience, any token
// the issuer minted for any of its applications would pass.
func TestNewVerifier_RequiresAnAudience(t *testing.T) {
	t.Parallel()
	_, err := NewVerifier("https://issuer.example.com", "")
	require.ErrorContains(t, err, "CODEC_OIDC_AUDIENCE")
}
