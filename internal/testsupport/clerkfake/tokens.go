package clerkfake

import (
	"crypto/rsa"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// Session tokens: signed with the fake's key, served as its JWKS.

// TokenClaims shape a session token; zero fields get valid defaults.
type TokenClaims struct {
	Subject         string
	Issuer          string
	AuthorizedParty string
	Expiry          time.Time
	// SigningKey signs with another key than the JWKS serves.
	SigningKey *rsa.PrivateKey
	// KeyID is the token's kid header; empty names the served key.
	KeyID string
}

// Token returns a Clerk session JWT, RS256-signed with the served key.
func (s *Server) Token(t testing.TB, c TokenClaims) string {
	t.Helper()
	token, err := s.NewToken(c)
	if err != nil {
		t.Fatal(err)
	}
	return token
}

// NewToken is Token for callers without a test.
func (s *Server) NewToken(c TokenClaims) (string, error) {
	if c.Issuer == "" {
		c.Issuer = Issuer
	}
	if c.Expiry.IsZero() {
		c.Expiry = time.Now().Add(time.Minute)
	}
	key := s.key
	if c.SigningKey != nil {
		key = c.SigningKey
	}
	kid := s.kid
	if c.KeyID != "" {
		kid = c.KeyID
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: key},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", kid))
	if err != nil {
		return "", err
	}
	now := time.Now()
	claims := map[string]any{
		"iss": c.Issuer, "sub": c.Subject, "azp": c.AuthorizedParty, "sid": "sess_fake",
		"iat": now.Add(-time.Second).Unix(), "nbf": now.Add(-10 * time.Second).Unix(), "exp": c.Expiry.Unix(),
	}
	return jwt.Signed(signer).Claims(claims).Serialize()
}

func (s *Server) jwks(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	delay, fail := s.jwksDelay, s.jwksFail
	s.mu.Unlock()
	select {
	case <-time.After(delay):
	case <-r.Context().Done():
		return
	}
	if fail != 0 {
		writeBody(w, fail, internalErrorBody)
		return
	}
	jwk := jose.JSONWebKey{Key: &s.key.PublicKey, KeyID: s.kid, Algorithm: "RS256", Use: "sig"}
	body, err := json.Marshal(map[string]any{"keys": []jose.JSONWebKey{jwk}})
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	writeBody(w, http.StatusOK, body)
}
