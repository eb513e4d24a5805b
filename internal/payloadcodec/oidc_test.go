package payloadcodec

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v3"
	"github.com/go-jose/go-jose/v3/jwt"
	"github.com/stretchr/testify/require"
	commonpb "go.temporal.io/api/common/v1"
	"google.golang.org/protobuf/encoding/protojson"
)

// fakeIssuer is an OpenID Connect issuer: discovery and its JWKS.
type fakeIssuer struct {
	srv *httptest.Server
	key *rsa.PrivateKey
}

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
		_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "k1", Algorithm: "RS256", Use: "sig"}}})
	})
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeIssuer) token(t *testing.T, key *rsa.PrivateKey, aud string, exp time.Time) string {
	t.Helper()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: key}, (&jose.SignerOptions{}).WithHeader("kid", "k1"))
	require.NoError(t, err)
	tok, err := jwt.Signed(signer).Claims(map[string]any{
		"iss": f.srv.URL, "sub": "operator@example.com", "aud": aud, "exp": exp.Unix(), "iat": time.Now().Unix(),
	}).CompactSerialize()
	require.NoError(t, err)
	return tok
}

// TestServer_AcceptsTheUIsForwardedAccessToken: with an OIDC issuer set,
// /codec takes a valid access token of that issuer (for the audience), as
// a Temporal UI behind SSO forwards it, and refuses forged, expired and
// wrong-audience ones; the static token keeps working beside it.
func TestServer_AcceptsTheUIsForwardedAccessToken(t *testing.T) {
	issuer := startIssuer(t)
	ks := mustKeys(t, "a:"+newKey(t))
	srv := httptest.NewServer(Handler(ks, ServerOptions{AuthToken: "static", AccessTokens: NewOIDCVerifier(issuer.srv.URL, "temporal-ui")}))
	defer srv.Close()
	enc, err := ks.Codec().Encode([]*commonpb.Payload{payloadOf(t, "x")})
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
