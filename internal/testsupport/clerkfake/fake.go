// Package clerkfake is a local stand-in for the Clerk Backend API, which tests
// cannot reach: it answers GET /v1/users/{id} and GET /v1/jwks in Clerk's real
// JSON shapes (kept in testdata), can be told to fail, and signs session JWTs
// with the key its JWKS serves.
package clerkfake

import (
	"crypto/rand"
	"crypto/rsa"
	_ "embed"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v3"
	"github.com/go-jose/go-jose/v3/jwt"
)

var (
	//go:embed testdata/user.json
	userTemplate []byte
	//go:embed testdata/not_found.json
	notFoundBody []byte
	//go:embed testdata/internal_error.json
	internalErrorBody []byte
)

// SecretKey is the Backend API key the fake expects.
const SecretKey = "sk_test_clerksync_fake"

// Issuer is a valid Clerk session token issuer (a Frontend API URL).
const Issuer = "https://clerk.fake.clerksync.test"

// User is what a test sets about a Clerk user.
type User struct {
	ID                  string
	Email               string // "" for none
	FirstName, LastName string
	CreatedAt           time.Time
	UpdatedAt           time.Time
}

// Server is the running fake.
type Server struct {
	srv *httptest.Server
	key *rsa.PrivateKey
	kid string

	mu        sync.Mutex
	users     map[string]User
	failWith  int
	jwksFail  int
	jwksDelay time.Duration
	calls     map[string]int
}

// Start runs a fake until the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{key: key, kid: "ins_fake_" + rand.Text()[:8], users: map[string]User{}, calls: map[string]int{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/jwks", s.jwks)
	mux.HandleFunc("GET /v1/users/{id}", s.user)
	s.srv = httptest.NewServer(s.authorized(mux))
	t.Cleanup(s.srv.Close)
	return s
}

// URL is the base URL to give clerk-sdk-go (CLERK_API_URL).
func (s *Server) URL() string { return s.srv.URL + "/v1" }

// PutUser makes the user exist in Clerk.
func (s *Server) PutUser(u User) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.users[u.ID] = u
}

// FailWith makes user reads answer status (with Clerk's error body), as
// during a Clerk API incident; 0 restores normal answers. The JWKS keeps
// answering, as verifiers hold it cached anyway.
func (s *Server) FailWith(status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failWith = status
}

// SlowJWKS makes GET /v1/jwks answer only after d, as a Clerk under strain
// would; 0 restores prompt answers.
func (s *Server) SlowJWKS(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.jwksDelay = d
}

// FailJWKS makes GET /v1/jwks answer status; 0 restores normal answers.
func (s *Server) FailJWKS(status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.jwksFail = status
}

// Calls counts the requests for a path such as "/v1/users/user_1".
func (s *Server) Calls(path string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[path]
}

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
		t.Fatal(err)
	}
	now := time.Now()
	claims := map[string]any{
		"iss": c.Issuer, "sub": c.Subject, "azp": c.AuthorizedParty, "sid": "sess_fake",
		"iat": now.Add(-time.Second).Unix(), "nbf": now.Add(-10 * time.Second).Unix(), "exp": c.Expiry.Unix(),
	}
	token, err := jwt.Signed(signer).Claims(claims).CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return token
}

func (s *Server) authorized(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.calls[r.URL.Path]++
		failWith := s.failWith
		s.mu.Unlock()
		if r.Header.Get("Authorization") != "Bearer "+SecretKey {
			writeBody(w, http.StatusUnauthorized, []byte(`{"errors":[{"message":"Invalid authentication","long_message":"The provided secret key is invalid","code":"authentication_invalid"}]}`))
			return
		}
		if failWith != 0 && strings.HasPrefix(r.URL.Path, "/v1/users/") {
			writeBody(w, failWith, internalErrorBody)
			return
		}
		next.ServeHTTP(w, r)
	})
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

func (s *Server) user(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	u, ok := s.users[r.PathValue("id")]
	s.mu.Unlock()
	if !ok {
		writeBody(w, http.StatusNotFound, notFoundBody)
		return
	}
	body, err := userJSON(u)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	writeBody(w, http.StatusOK, body)
}

// userJSON fills Clerk's user object (testdata/user.json) with u, keeping
// every other field Clerk sends.
func userJSON(u User) ([]byte, error) {
	var obj map[string]any
	if err := json.Unmarshal(userTemplate, &obj); err != nil {
		return nil, err
	}
	obj["id"] = u.ID
	obj["first_name"] = nullable(u.FirstName)
	obj["last_name"] = nullable(u.LastName)
	obj["created_at"] = u.CreatedAt.UnixMilli()
	obj["updated_at"] = u.UpdatedAt.UnixMilli()
	if u.Email == "" {
		obj["email_addresses"] = []any{}
		obj["primary_email_address_id"] = nil
	} else {
		addr := obj["email_addresses"].([]any)[0].(map[string]any)
		addr["id"] = "idn_" + strings.TrimPrefix(u.ID, "user_")
		addr["email_address"] = u.Email
		obj["primary_email_address_id"] = addr["id"]
	}
	return json.Marshal(obj)
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func writeBody(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
