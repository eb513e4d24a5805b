package clerkfake_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"
	"github.com/stretchr/testify/require"

	"github.com/clerksync/clerksync/internal/clerkevent"
	"github.com/clerksync/clerksync/internal/testsupport/clerkfake"
)

// backendAPI is Clerk's published Backend API document, at the version
// clerk-sdk-go sends (testdata/clerk-openapi/README.md).
const backendAPI = "../../../testdata/clerk-openapi/bapi-2025-11-10.yml"

// contract is the Backend API document served at a fake's URL.
type contract struct {
	doc    *openapi3.T
	router routers.Router
}

func loadContract(t *testing.T, fakeURL string) contract {
	t.Helper()
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromFile(backendAPI)
	require.NoError(t, err)
	doc.Servers = openapi3.Servers{{URL: fakeURL}} // the fake's URL ends in /v1, as Clerk's server does
	router, err := legacy.NewRouter(doc)
	require.NoError(t, err)
	return contract{doc: doc, router: router}
}

// exchange sends a request to the fake and validates the answer against
// the document: its status is one the operation documents, and its body
// the schema of that status. A request the test means to be refused
// (valid false) is not itself held to the document's parameters.
func (c contract) exchange(t *testing.T, key, method, url string, validRequest bool) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	resp.Body.Close()

	route, params, err := c.router.FindRoute(req)
	require.NoError(t, err, "%s %s is not an operation of Clerk's Backend API", method, url)
	in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}}
	if validRequest {
		require.NoError(t, openapi3filter.ValidateRequest(context.Background(), in), "%s %s: the request clerksync sends", method, url)
	}
	if route.Operation.Responses.Status(resp.StatusCode) == nil && resp.StatusCode == http.StatusTooManyRequests {
		// Clerk's rate limit applies to every endpoint, and most of them do
		// not document it: its body is Clerk's errors all the same.
		c.clerkErrors(t, body)
		return resp, body
	}
	out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: resp.StatusCode, Header: resp.Header,
		Body: io.NopCloser(bytes.NewReader(body)), Options: &openapi3filter.Options{IncludeResponseStatus: true}}
	require.NoError(t, openapi3filter.ValidateResponse(context.Background(), out), "%s %s answered %d: %s", method, url, resp.StatusCode, body)
	return resp, body
}

// clerkErrors validates an error body against Clerk's ClerkErrors schema,
// for a status the operation does not document (429 on most listings).
func (c contract) clerkErrors(t *testing.T, body []byte) {
	t.Helper()
	var v any
	require.NoError(t, json.Unmarshal(body, &v))
	require.NoError(t, c.doc.Components.Schemas["ClerkErrors"].Value.VisitJSON(v), "%s", body)
}

// TestContract_TheFakeAnswersAsClerksDocumentSays: every answer clerksync
// relies on from Clerk's Backend API, as the project's fake gives it
// (users listed with each parameter clerksync sends or may send, counted
// and read; organizations and their memberships; the instance; the JWKS;
// and the refusals 401, 403, 404, 422 and 429 with Retry-After), is what
// Clerk's published document describes, and the listing parameters mean
// what it says they mean.
func TestContract_TheFakeAnswersAsClerksDocumentSays(t *testing.T) {
	t.Parallel()
	fake := clerkfake.Start(t)
	c := loadContract(t, fake.URL())
	base := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	var users []clerkfake.User
	for i := range 7 {
		users = append(users, clerkfake.User{ID: fmt.Sprintf("user_c%d", i), Email: fmt.Sprintf("c%d@example.com", i),
			FirstName: "C", CreatedAt: base.Add(time.Duration(i) * time.Second), UpdatedAt: base})
	}
	users[1].ExternalID, users[1].PublicMetadata, users[1].EmailUnverified = "legacy-1", `{"role":"admin"}`, true
	users[2].Email = ""
	users[3].Phone, users[3].Deprovisioned, users[3].OAuthProvider = "+15555550100", true, "oauth_google"
	fake.PutUsers(users...)
	fake.PutOrganizations(clerkfake.Organization{ID: "org_c", Name: "C", Slug: "c", CreatedAt: base, UpdatedAt: base})
	var members []clerkfake.Membership
	for i := range 3 {
		members = append(members, clerkfake.Membership{ID: fmt.Sprintf("orgmem_c%d", i), OrganizationID: "org_c", UserID: users[i].ID,
			Role: "org:member", CreatedAt: base.Add(time.Duration(i) * time.Second), UpdatedAt: base})
	}
	fake.PutMemberships(members...)
	v1 := fake.URL()
	key := clerkfake.SecretKey
	ids := func(body []byte) []string {
		var page []struct{ ID string }
		require.NoError(t, json.Unmarshal(body, &page))
		var out []string
		for _, u := range page {
			out = append(out, u.ID)
		}
		return out
	}

	// The listing as clerksync reads it, and each parameter's meaning.
	_, body := c.exchange(t, key, http.MethodGet, v1+"/users?limit=3&order_by=%2Bcreated_at&offset=1", true)
	require.Equal(t, []string{"user_c1", "user_c2", "user_c3"}, ids(body), "+created_at: oldest first")
	_, body = c.exchange(t, key, http.MethodGet, v1+"/users?limit=2&order_by=created_at", true)
	require.Equal(t, []string{"user_c0", "user_c1"}, ids(body), "no sign is +")
	_, body = c.exchange(t, key, http.MethodGet, v1+"/users?limit=2", true)
	require.Equal(t, []string{"user_c6", "user_c5"}, ids(body), "the default, -created_at: newest first")
	_, body = c.exchange(t, key, http.MethodGet, v1+"/users?limit=2&order_by=%2Bcreated_at&starting_after=user_c3", true)
	require.Equal(t, []string{"user_c4", "user_c5"}, ids(body), "the cursor: the users after it")
	_, body = c.exchange(t, key, http.MethodGet, v1+"/users?limit=2&starting_after=user_c3", true)
	require.Equal(t, []string{"user_c2", "user_c1"}, ids(body), "the cursor in the default order")
	after := strconv.FormatInt(base.Add(4*time.Second).UnixMilli(), 10)
	_, body = c.exchange(t, key, http.MethodGet, v1+"/users?limit=500&order_by=%2Bcreated_at&created_at_after="+after, true)
	require.Equal(t, []string{"user_c5", "user_c6"}, ids(body), "created_at_after is exclusive")
	_, body = c.exchange(t, key, http.MethodGet, v1+"/users?user_id=user_c1&user_id=user_c4", true)
	require.ElementsMatch(t, []string{"user_c1", "user_c4"}, ids(body))
	_, body = c.exchange(t, key, http.MethodGet, v1+"/users/count?created_at_after="+after, true)
	require.JSONEq(t, `{"object":"total_count","total_count":2}`, string(body))
	_, body = c.exchange(t, key, http.MethodGet, v1+"/users/user_c1", true)
	var one map[string]any
	require.NoError(t, json.Unmarshal(body, &one))
	require.Equal(t, "legacy-1", one["external_id"])
	require.Equal(t, map[string]any{"role": "admin"}, one["public_metadata"])
	_, body = c.exchange(t, key, http.MethodGet, v1+"/users/user_c3", true)
	require.NoError(t, json.Unmarshal(body, &one))
	require.Equal(t, true, one["deprovisioned"])
	require.Len(t, one["phone_numbers"], 1)
	require.Len(t, one["external_accounts"], 1)
	cu, err := clerkevent.DecodeClerkUser(body)
	require.NoError(t, err, "clerksync reads every shape the fake gives")
	read, err := clerkevent.NormalizeUser(cu)
	require.NoError(t, err)
	require.Equal(t, "+15555550100", *read.Phone)
	require.True(t, read.Deprovisioned)

	// What the document refuses, the fake refuses, with Clerk's errors.
	for _, q := range []string{"limit=0", "limit=501", "offset=-1", "limit=abc",
		"starting_after=user_c1&offset=2", "starting_after=user_c1&order_by=email_address", "starting_after=user_nobody"} {
		resp, _ := c.exchange(t, key, http.MethodGet, v1+"/users?"+q, false)
		require.Equal(t, http.StatusUnprocessableEntity, resp.StatusCode, q)
	}

	// Organizations and their memberships.
	_, body = c.exchange(t, key, http.MethodGet, v1+"/organizations?limit=100&offset=0&order_by=%2Bcreated_at", true)
	require.Contains(t, string(body), `"org_c"`)
	c.exchange(t, key, http.MethodGet, v1+"/organizations/org_c", true)
	_, body = c.exchange(t, key, http.MethodGet, v1+"/organizations/org_c/memberships?limit=2&offset=0&order_by=%2Bcreated_at", true)
	var memberships struct {
		Data []struct{ ID string } `json:"data"`
	}
	require.NoError(t, json.Unmarshal(body, &memberships))
	require.Equal(t, "orgmem_c0", memberships.Data[0].ID, "+created_at: oldest first")
	_, body = c.exchange(t, key, http.MethodGet, v1+"/organizations/org_c/memberships?limit=2&offset=0&order_by=-created_at", true)
	require.NoError(t, json.Unmarshal(body, &memberships))
	require.Equal(t, "orgmem_c2", memberships.Data[0].ID, "-created_at: newest first")

	// The instance and the JWKS.
	c.exchange(t, key, http.MethodGet, v1+"/instance", true)
	c.exchange(t, key, http.MethodGet, v1+"/jwks", true)

	// Refusals: a wrong key (401), an unknown user and organization (404),
	// organizations not enabled (403), Clerk's rate limit (429).
	resp, _ := c.exchange(t, "sk_test_wrong", http.MethodGet, v1+"/users?limit=1", true)
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	resp, _ = c.exchange(t, key, http.MethodGet, v1+"/users/user_nobody", true)
	require.Equal(t, http.StatusNotFound, resp.StatusCode)
	resp, _ = c.exchange(t, key, http.MethodGet, v1+"/organizations/org_nobody", true)
	require.Equal(t, http.StatusNotFound, resp.StatusCode)
	fake.FailListsWith(1, http.StatusTooManyRequests, 3)
	resp, _ = c.exchange(t, key, http.MethodGet, v1+"/users?limit=1", true)
	require.Equal(t, http.StatusTooManyRequests, resp.StatusCode)
	require.Equal(t, "3", resp.Header.Get("Retry-After"))
	fake.DisableOrganizations()
	resp, _ = c.exchange(t, key, http.MethodGet, v1+"/organizations?limit=1", true)
	require.Equal(t, http.StatusForbidden, resp.StatusCode)
}
