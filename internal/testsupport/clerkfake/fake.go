// Package clerkfake is a local stand-in for the Clerk Backend API, which tests
// cannot reach: it answers GET /v1/users/{id}, GET /v1/users (listing with
// Clerk's limit, offset, order_by, user_id and created_at filters),
// GET /v1/users/count, GET /v1/instance and GET /v1/jwks in Clerk's real JSON shapes (kept in
// testdata), can be told to fail or rate-limit, and signs session JWTs with
// the key its JWKS serves.
package clerkfake

import (
	"crypto/rand"
	"crypto/rsa"
	_ "embed"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

var (
	//go:embed testdata/user.json
	userTemplate []byte
	//go:embed testdata/not_found.json
	notFoundBody []byte
	//go:embed testdata/internal_error.json
	internalErrorBody []byte
	//go:embed testdata/instance.json
	instanceTemplate []byte
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
	// ExternalID is Clerk's external_id, "" for none; PublicMetadata is
	// the public_metadata object as JSON, "" for {}.
	ExternalID, PublicMetadata string
	// EmailUnverified leaves the primary address unverified.
	EmailUnverified bool
	// Phone is the primary phone number (verified), "" for none.
	Phone string
	// Deprovisioned: directory sync deactivated the user.
	Deprovisioned bool
	// OAuthProvider links an external account of that provider
	// (oauth_google), "" for none.
	OAuthProvider string
}

// Server is the running fake.
type Server struct {
	url string // base URL, without /v1
	key *rsa.PrivateKey
	kid string

	// instance is the Clerk instance ID that GET /v1/instance answers.
	instance string

	mu        sync.Mutex
	users     map[string]User
	failWith  int
	jwksFail  int
	jwksDelay time.Duration
	calls     map[string]int
	// headers are the headers of the last request for each path.
	headers map[string]http.Header
	// sorted is users by created_at, then ID; nil when users changed.
	sorted []User
	// listFailures answer the next list requests with their status.
	listFailures []listFailure
	template     map[string]any
	// orgs and members are the organizations and memberships Clerk has.
	orgs    map[string]Organization
	members map[string]Membership
	// orgsDisabled: the instance has no Organizations feature.
	orgsDisabled bool
	// orgsFailWith is the status organization endpoints answer; 0 for none.
	orgsFailWith int
	// encoded caches each user's JSON, as a listing of 100,000 users would
	// otherwise spend its time here rather than in clerksync.
	encoded map[string][]byte
	// pace is the latency and rate limit of every answer (Pace).
	pace pace
}

// listFailure is one injected answer to a list or count request.
type listFailure struct {
	status     int
	retryAfter int // seconds; 0 sends no Retry-After
}

// Start runs a fake until the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	s, err := New()
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	s.SetURL(srv.URL)
	return s
}

// New returns a fake with a fresh signing key and no users, for a server
// of the caller's own (make run's local stand-in); tests use Start.
func New() (*Server, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	s := &Server{key: key, kid: "ins_fake_" + rand.Text()[:8], users: map[string]User{}, calls: map[string]int{}, headers: map[string]http.Header{}, encoded: map[string][]byte{}}
	s.instance = s.kid // Clerk's JWKS key IDs are its instance IDs
	if err := json.Unmarshal(userTemplate, &s.template); err != nil {
		return nil, err
	}
	return s, nil
}

// Handler serves the Backend API (under /v1), requiring SecretKey.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/jwks", s.jwks)
	mux.HandleFunc("GET /v1/instance", s.instanceObject)
	mux.HandleFunc("GET /v1/users/{id}", s.user)
	mux.HandleFunc("GET /v1/users", s.list)
	mux.HandleFunc("GET /v1/users/count", s.count)
	s.organizationRoutes(mux)
	return s.authorized(mux)
}

// SetURL tells the fake where it is served (scheme://host:port).
func (s *Server) SetURL(base string) { s.url = base }

// URL is the base URL to give clerk-sdk-go (CLERK_API_URL).
func (s *Server) URL() string { return s.url + "/v1" }

// PutUser makes the user exist in Clerk.
func (s *Server) PutUser(u User) { s.PutUsers(u) }

// PutUsers makes the users exist in Clerk (or changes them).
func (s *Server) PutUsers(us ...User) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, u := range us {
		s.users[u.ID] = u
		delete(s.encoded, u.ID)
	}
	s.sorted = nil
}

// InstanceID is the Clerk instance the fake is.
func (s *Server) InstanceID() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.instance
}

// BecomeInstance makes the fake another Clerk instance, with only the given
// users, as a worker whose CLERK_SECRET_KEY was swapped for another
// instance's (a staging key in production) would see Clerk.
func (s *Server) BecomeInstance(id string, users ...User) {
	s.mu.Lock()
	s.instance = id
	s.users, s.encoded, s.sorted = map[string]User{}, map[string][]byte{}, nil
	s.orgs, s.members = nil, nil
	s.mu.Unlock()
	s.PutUsers(users...)
}

// instanceObject answers GET /v1/instance in Clerk's shape.
func (s *Server) instanceObject(w http.ResponseWriter, _ *http.Request) {
	var obj map[string]any
	if err := json.Unmarshal(instanceTemplate, &obj); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	obj["id"] = s.InstanceID()
	body, err := json.Marshal(obj)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	writeBody(w, http.StatusOK, body)
}

// HasUser reports whether the user exists in the fake.
func (s *Server) HasUser(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.users[id]
	return ok
}

// DeleteUser makes the user gone from Clerk, without any webhook.
func (s *Server) DeleteUser(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.users, id)
	delete(s.encoded, id)
	s.sorted = nil
}

// Users returns every user Clerk has.
func (s *Server) Users() []User {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.sortedLocked())
}

// FailListsWith makes the next n list or count requests answer status,
// with Retry-After: retryAfter seconds when it is not 0 (Clerk's 429).
func (s *Server) FailListsWith(n, status, retryAfter int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.listFailures = append(s.listFailures, listFailure{status: status, retryAfter: retryAfter})
	}
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

// Header is the headers of the last request for a path such as
// "/v1/users", or nil.
func (s *Server) Header(path string) http.Header {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.headers[path]
}

func (s *Server) authorized(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.calls[r.URL.Path]++
		s.headers[r.URL.Path] = r.Header.Clone()
		failWith := s.failWith
		s.mu.Unlock()
		if r.Header.Get("Authorization") != "Bearer "+SecretKey {
			writeBody(w, http.StatusUnauthorized, []byte(`{"errors":[{"message":"Invalid authentication","long_message":"The provided secret key is invalid","code":"authentication_invalid"}]}`))
			return
		}
		if s.pace.paced(w) {
			return
		}
		if failWith != 0 && strings.HasPrefix(r.URL.Path, "/v1/users/") {
			writeBody(w, failWith, internalErrorBody)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (s *Server) user(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	u, ok := s.users[r.PathValue("id")]
	s.mu.Unlock()
	if !ok {
		writeBody(w, http.StatusNotFound, notFoundBody)
		return
	}
	body, err := s.userJSON(u)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	writeBody(w, http.StatusOK, body)
}

func writeBody(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
