// Package clerkfake is a local stand-in for the Clerk Backend API, which tests
// cannot reach: it answers GET /v1/users/{id}, GET /v1/users (listing with
// Clerk's limit, offset, order_by, user_id and created_at filters),
// GET /v1/users/count, GET /v1/instance and GET /v1/jwks in Clerk's real JSON shapes (kept in
// testdata), can be told to fail or rate-limit, and signs session JWTs with
// the key its JWKS serves.
package clerkfake

import (
	"cmp"
	"crypto/rand"
	"crypto/rsa"
	_ "embed"
	"encoding/json"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
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

// list answers GET /v1/users as Clerk does: a bare JSON array.
func (s *Server) list(w http.ResponseWriter, r *http.Request) {
	if s.injectedFailure(w) {
		return
	}
	q := r.URL.Query()
	l, err := parseListing(q, true)
	if err != nil {
		writeUnprocessable(w, err)
		return
	}
	users, err := pageOf(l, s.filtered(q), func(u User) (string, int64) { return u.ID, u.UpdatedAt.UnixMilli() })
	if err != nil {
		writeUnprocessable(w, err)
		return
	}
	// The cached objects are joined as they are, into a reused buffer:
	// re-encoding them, or a new megabyte of garbage per page, would make a
	// long listing spend its time here rather than in clerksync.
	buf := listBuffers.Get().(*[]byte)
	defer listBuffers.Put(buf)
	body := append((*buf)[:0], '[')
	for i, u := range users {
		b, err := s.cachedJSON(u)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		if i > 0 {
			body = append(body, ',')
		}
		body = append(body, b...)
	}
	body = append(body, ']')
	*buf = body
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	writeBody(w, http.StatusOK, body)
}

// listBuffers hold the listing pages being written.
var listBuffers = sync.Pool{New: func() any { return new([]byte) }}

// count answers GET /v1/users/count.
func (s *Server) count(w http.ResponseWriter, r *http.Request) {
	if s.injectedFailure(w) {
		return
	}
	body, err := json.Marshal(map[string]any{"object": "total_count", "total_count": len(s.filtered(r.URL.Query()))})
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	writeBody(w, http.StatusOK, body)
}

// filtered applies user_id, created_at_after and created_at_before (Unix
// ms, exclusive), in created_at order. The result may share the server's
// sorted listing, which PutUsers replaces rather than changes: a caller
// must not modify it. Copying it for every request made a listing of
// 100,000 users spend more in the fake than in the backfill it serves.
func (s *Server) filtered(q url.Values) []User {
	s.mu.Lock()
	users := s.sortedLocked()
	s.mu.Unlock()
	if after := q.Get("created_at_after"); after != "" {
		ms, _ := strconv.ParseInt(after, 10, 64)
		i, _ := slices.BinarySearchFunc(users, ms+1, func(u User, ms int64) int { return cmp.Compare(u.CreatedAt.UnixMilli(), ms) })
		users = users[i:]
	}
	if before := q.Get("created_at_before"); before != "" {
		ms, _ := strconv.ParseInt(before, 10, 64)
		i, _ := slices.BinarySearchFunc(users, ms, func(u User, ms int64) int { return cmp.Compare(u.CreatedAt.UnixMilli(), ms) })
		users = users[:i]
	}
	if ids := q["user_id"]; len(ids) > 0 {
		users = slices.DeleteFunc(slices.Clone(users), func(u User) bool { return !slices.Contains(ids, u.ID) })
	}
	return users
}

func (s *Server) sortedLocked() []User {
	if s.sorted == nil {
		s.sorted = make([]User, 0, len(s.users))
		for _, u := range s.users {
			s.sorted = append(s.sorted, u)
		}
		slices.SortFunc(s.sorted, func(a, b User) int {
			return cmp.Or(cmp.Compare(a.CreatedAt.UnixMilli(), b.CreatedAt.UnixMilli()), cmp.Compare(a.ID, b.ID))
		})
	}
	return s.sorted
}

// injectedFailure answers with the next injected failure, if any.
func (s *Server) injectedFailure(w http.ResponseWriter) bool {
	s.mu.Lock()
	if len(s.listFailures) == 0 {
		s.mu.Unlock()
		return false
	}
	f := s.listFailures[0]
	s.listFailures = s.listFailures[1:]
	s.mu.Unlock()
	if f.retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(f.retryAfter))
	}
	if f.status == http.StatusTooManyRequests {
		writeBody(w, f.status, []byte(`{"errors":[{"message":"Too many requests","long_message":"Too many requests, please try again later.","code":"too_many_requests"}]}`))
		return true
	}
	writeBody(w, f.status, internalErrorBody)
	return true
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

// Warm encodes every user's JSON ahead of time, as Clerk's own servers
// would serve it: a benchmark then measures clerksync on this machine's
// cores, not the fake's encoding.
func (s *Server) Warm() error {
	for _, u := range s.Users() {
		if _, err := s.cachedJSON(u); err != nil {
			return err
		}
	}
	return nil
}

// cachedJSON is userJSON, computed once per version of the user.
func (s *Server) cachedJSON(u User) ([]byte, error) {
	s.mu.Lock()
	b, ok := s.encoded[u.ID]
	s.mu.Unlock()
	if ok {
		return b, nil
	}
	b, err := s.userJSON(u)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	if cur, ok := s.users[u.ID]; ok && cur == u {
		s.encoded[u.ID] = b
	}
	s.mu.Unlock()
	return b, nil
}

// userJSON fills Clerk's user object (testdata/user.json) with u, keeping
// every other field Clerk sends.
func (s *Server) userJSON(u User) ([]byte, error) {
	obj := maps.Clone(s.template)
	addresses := obj["email_addresses"].([]any)
	first := maps.Clone(addresses[0].(map[string]any))
	obj["email_addresses"] = []any{first}
	obj["id"] = u.ID
	obj["first_name"] = nullable(u.FirstName)
	obj["last_name"] = nullable(u.LastName)
	obj["created_at"] = u.CreatedAt.UnixMilli()
	obj["updated_at"] = u.UpdatedAt.UnixMilli()
	if u.Email == "" {
		obj["email_addresses"] = []any{}
		obj["primary_email_address_id"] = nil
	} else {
		addr := first
		addr["id"] = "idn_" + strings.TrimPrefix(u.ID, "user_")
		addr["email_address"] = u.Email
		obj["primary_email_address_id"] = addr["id"]
		if u.EmailUnverified {
			verification := maps.Clone(addr["verification"].(map[string]any))
			verification["status"] = "unverified"
			addr["verification"] = verification
		}
	}
	obj["external_id"] = nullable(u.ExternalID)
	obj["deprovisioned"] = u.Deprovisioned
	if u.OAuthProvider != "" {
		obj["external_accounts"] = []any{map[string]any{
			"object": "external_account", "id": "eac_" + strings.TrimPrefix(u.ID, "user_"), "provider": u.OAuthProvider,
			"identification_id": "idn_oauth_" + strings.TrimPrefix(u.ID, "user_"), "provider_user_id": "1" + strings.TrimPrefix(u.ID, "user_"),
			"approved_scopes": "email profile", "email_address": u.Email, "email_address_verified": true,
			"first_name": u.FirstName, "last_name": u.LastName, "avatar_url": "", "image_url": nil, "username": nil, "phone_number": nil,
			"public_metadata": map[string]any{}, "label": nil, "created_at": u.CreatedAt.UnixMilli(), "updated_at": u.CreatedAt.UnixMilli(),
			"verification": map[string]any{"object": "verification_oauth", "status": "verified", "strategy": u.OAuthProvider,
				"attempts": nil, "expire_at": u.CreatedAt.Add(10 * time.Minute).UnixMilli()},
		}}
	}
	if u.Phone != "" {
		id := "idn_phone_" + strings.TrimPrefix(u.ID, "user_")
		obj["primary_phone_number_id"] = id
		obj["phone_numbers"] = []any{map[string]any{
			"id": id, "object": "phone_number", "phone_number": u.Phone, "reserved_for_second_factor": false,
			"default_second_factor": false, "reserved": false, "linked_to": []any{},
			"verification": map[string]any{"object": "verification_otp", "status": "verified", "strategy": "phone_code", "attempts": 1,
				"expire_at": u.CreatedAt.Add(10 * time.Minute).UnixMilli()},
			"created_at": u.CreatedAt.UnixMilli(), "updated_at": u.CreatedAt.UnixMilli(),
		}}
	}
	if u.PublicMetadata != "" {
		obj["public_metadata"] = json.RawMessage(u.PublicMetadata)
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
