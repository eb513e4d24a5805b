package service_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/clerksync/clerksync/internal/testsupport/openapitest"
	"github.com/clerksync/clerksync/starter/service"
)

// reports collects what the contract check finds.
type reports []string

func (r *reports) Errorf(format string, args ...any) { *r = append(*r, fmt.Sprintf(format, args...)) }

// answering serves the checked-in document and answers every other request
// with status, header and body.
func answering(t *testing.T, status int, header http.Header, body string) http.Handler {
	doc, err := service.OpenAPIDocument()
	require.NoError(t, err)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/openapi.json" {
			_, _ = w.Write(doc)
			return
		}
		for k, v := range header {
			w.Header()[k] = v
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	})
}

func exchange(t *testing.T, h http.Handler, method, path, body string, header http.Header) reports {
	t.Helper()
	var r reports
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	for k, v := range header {
		req.Header[k] = v
	}
	openapitest.Check(&r, h).ServeHTTP(httptest.NewRecorder(), req)
	return r
}

const row = `{"id":"6f1c2b0e-8d6a-4c1e-9a7b-2f3d4e5f6a7b","clerk_id":"user_1","email":null,"first_name":null,` +
	`"last_name":null,"username":null,"image_url":null,"clerk_created_at":null,` +
	`"clerk_updated_at":"1970-01-01T00:00:00+00:00","created_at":"2026-12-01T22:37:48.123+00:00","updated_at":"2026-12-01T22:37:48.123+00:00"}`

var bearer = http.Header{"Authorization": {"Bearer x"}}

func TestOpenAPI_TheDocumentIsValidOpenAPI31(t *testing.T) {
	doc, err := service.OpenAPIDocument()
	require.NoError(t, err)
	parsed, err := openapitest.Parse(doc)
	require.NoError(t, err)
	require.True(t, parsed.IsOpenAPI31OrLater())
	for _, path := range []string{"/v1/users/ensure", "/webhooks/clerk", "/healthz", "/readyz", "/metrics", "/openapi.json", "/codec/encode", "/codec/decode"} {
		require.NotNil(t, parsed.Paths.Find(path), path)
	}
}

func TestOpenAPI_TheCheckPassesADocumentedExchange(t *testing.T) {
	require.Empty(t, exchange(t, answering(t, http.StatusOK, nil, row), http.MethodPost, "/v1/users/ensure", "", bearer))
	require.Empty(t, exchange(t, answering(t, http.StatusServiceUnavailable, http.Header{"Retry-After": {"5"}}, `{"error":"retry"}`),
		http.MethodPost, "/v1/users/ensure", "", bearer))
	require.Empty(t, exchange(t, answering(t, http.StatusBadRequest, nil, `{"error":"malformed"}`),
		http.MethodPost, "/webhooks/clerk", "not json", nil), "a request the document refuses, refused")
}

// TestOpenAPI_TheCheckFailsAWrongAnswer: the contract tests can fail. Each
// answer here breaks the document in one way.
func TestOpenAPI_TheCheckFailsAWrongAnswer(t *testing.T) {
	for name, c := range map[string]struct {
		status int
		header http.Header
		body   string
	}{
		"a row of the wrong shape":     {http.StatusOK, nil, `{"id":5,"clerk_id":"user_1"}`},
		"a row without its columns":    {http.StatusOK, nil, `{"id":"x","clerk_id":"user_1"}`},
		"an undocumented status":       {http.StatusTeapot, nil, `{"error":"tea"}`},
		"a 503 without Retry-After":    {http.StatusServiceUnavailable, nil, `{"error":"retry"}`},
		"an error without its message": {http.StatusGone, nil, `{"reason":"deleted"}`},
	} {
		t.Run(name, func(t *testing.T) {
			r := exchange(t, answering(t, c.status, c.header, c.body), http.MethodPost, "/v1/users/ensure", "", bearer)
			require.Len(t, r, 1, "%v", r)
		})
	}
	r := exchange(t, answering(t, http.StatusOK, nil, `{"status":"accepted"}`), http.MethodPost, "/webhooks/clerk", "not json", nil)
	require.Len(t, r, 1, "a request the document refuses was accepted: %v", r)
	r = exchange(t, answering(t, http.StatusOK, nil, `{}`), http.MethodGet, "/v1/nowhere", "", nil)
	require.Len(t, r, 1, "an endpoint the document does not have: %v", r)
}
