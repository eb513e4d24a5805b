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

	once   sync.Once
	router routers.Router
	err    error
}

// Load reads and validates the document h serves.
func Load(h http.Handler) (*openapi3.T, error) {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/openapi.json", nil))
	if rec.Code != http.StatusOK {
		return nil, fmt.Errorf("GET /openapi.json: %d %s", rec.Code, rec.Body)
	}
	return Parse(rec.Body.Bytes())
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

func (c *checker) load() {
	doc, err := Load(c.next)
	if err != nil {
		c.err = err
		return
	}
	c.router, c.err = legacy.NewRouter(doc)
}

func (c *checker) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if req.URL.Path == "/openapi.json" {
		c.next.ServeHTTP(w, req)
		return
	}
	c.once.Do(c.load)
	if c.err != nil {
		c.report.Errorf("openapi: %v", c.err)
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
	if problem := c.validate(req, rec); problem != "" {
		c.report.Errorf("openapi: %s %s -> %d: %s", req.Method, req.URL.Path, rec.Code, problem)
	}
}

// validate says what in the exchange the document does not allow, or "".
func (c *checker) validate(req *http.Request, rec *httptest.ResponseRecorder) string {
	return Validate(c.router, req, rec.Code, rec.Header(), rec.Body.Bytes())
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
