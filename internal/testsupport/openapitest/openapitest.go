// Package openapitest holds the starter to its OpenAPI document: Check wraps
// the starter's handler so that every request a test makes and every answer
// it gets are validated against the document the starter serves at
// GET /openapi.json (with kin-openapi), and any mismatch fails the test.
package openapitest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"
)

// Reporter is where a mismatch is reported: a *testing.T.
type Reporter interface {
	Errorf(format string, args ...any)
}

// Check returns h, with every exchange validated against the document h
// serves at GET /openapi.json (read on the first request, so a mapped
// starter's describes the mapped table). A request the document refuses
// must be answered 4xx; an answer it does not describe (a status, a
// header, a body) is reported.
func Check(r Reporter, h http.Handler) http.Handler {
	return &checker{report: r, next: h}
}

type checker struct {
	report Reporter
	next   http.Handler

	mu     sync.Mutex
	router routers.Router
}

// upstreamDown marks a Proxy's own answer when the starter behind it does
// not answer (not started yet, or stopped): not the starter's, so not
// checked.
const upstreamDown = "X-Openapitest-Upstream-Down"

// Proxy serves a checking reverse proxy to the starter at target (a
// process the test started) and returns its URL: the test talks to the
// starter through it, and every exchange is checked as by Check.
func Proxy(t interface {
	Reporter
	Cleanup(func())
}, target string) string {
	u, err := url.Parse(target)
	if err != nil {
		t.Errorf("openapi: proxy to %q: %v", target, err)
		return target
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.ErrorHandler = func(w http.ResponseWriter, _ *http.Request, err error) {
		w.Header().Set(upstreamDown, "1")
		http.Error(w, err.Error(), http.StatusBadGateway)
	}
	srv := httptest.NewServer(Check(t, rp))
	t.Cleanup(srv.Close)
	return srv.URL
}

// Parse reads and validates a document.
func Parse(data []byte) (*openapi3.T, error) {
	doc, err := openapi3.NewLoader().LoadFromData(data)
	if err != nil {
		return nil, fmt.Errorf("load the OpenAPI document: %w", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		return nil, fmt.Errorf("the OpenAPI document is not valid: %w", err)
	}
	// Routes are matched on path alone: the test server's address is not
	// the document's.
	doc.Servers = nil
	return doc, nil
}

// routes returns the document's router, loading it on first use. A
// starter behind a Proxy that does not answer yet has no document: ok is
// false, and the next request tries again.
func (c *checker) routes() (r routers.Router, ok bool, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.router != nil {
		return c.router, true, nil
	}
	rec := httptest.NewRecorder()
	c.next.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/openapi.json", nil))
	if rec.Header().Get(upstreamDown) != "" {
		return nil, false, nil
	}
	if rec.Code != http.StatusOK {
		return nil, false, fmt.Errorf("GET /openapi.json: %d %s", rec.Code, rec.Body)
	}
	doc, err := Parse(rec.Body.Bytes())
	if err != nil {
		return nil, false, err
	}
	if c.router, err = legacy.NewRouter(doc); err != nil {
		return nil, false, err
	}
	return c.router, true, nil
}

func (c *checker) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if req.URL.Path == "/openapi.json" {
		c.next.ServeHTTP(w, req)
		return
	}
	router, ok, err := c.routes()
	if err != nil {
		c.report.Errorf("openapi: %v", err)
	}
	if !ok {
		c.next.ServeHTTP(w, req)
		return
	}
	body, err := io.ReadAll(req.Body)
	if err != nil {
		c.report.Errorf("openapi: read the request body: %v", err)
		return
	}
	restore := func() { req.Body = io.NopCloser(bytes.NewReader(body)) }
	restore()
	rec := httptest.NewRecorder()
	c.next.ServeHTTP(rec, req)
	restore()
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.WriteHeader(rec.Code)
	_, _ = w.Write(rec.Body.Bytes())
	if rec.Header().Get(upstreamDown) != "" {
		return
	}
	if problem := Validate(router, req, rec.Code, rec.Header(), rec.Body.Bytes()); problem != "" {
		c.report.Errorf("openapi: %s %s -> %d: %s", req.Method, req.URL.Path, rec.Code, problem)
	}
}

// Validate checks one exchange against the router's document: the request
// (which, when the document refuses it, must have been answered 4xx) and
// the answer.
func Validate(router routers.Router, req *http.Request, status int, header http.Header, body []byte) string {
	route, params, err := router.FindRoute(req)
	if err != nil {
		return "not in the document: " + err.Error()
	}
	ctx := context.Background()
	opts := &openapi3filter.Options{
		IncludeResponseStatus: true,
		MultiError:            true,
		// The document says which scheme; whether the token verifies is
		// the handler's to decide, and the tests send bad ones on purpose.
		AuthenticationFunc: func(context.Context, *openapi3filter.AuthenticationInput) error { return nil },
	}
	in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route, Options: opts}
	if err := openapi3filter.ValidateRequest(ctx, in); err != nil && (status < 400 || status >= 500) {
		return fmt.Sprintf("the document refuses the request (%s), and it was not answered 4xx", oneLine(err))
	}
	out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: status, Header: header, Options: opts}
	out.SetBodyBytes(body)
	if err := openapi3filter.ValidateResponse(ctx, out); err != nil {
		return "the answer is not as documented: " + oneLine(err)
	}
	return ""
}

func oneLine(err error) string { return strings.Join(strings.Fields(err.Error()), " ") }
