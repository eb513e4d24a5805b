package config

import (
	"bytes"
	"encoding/json"
	"io"
	"mime"
	"net/http"
	"strconv"
)

// clerkErrorShape makes every error response of the Clerk Backend API
// reach clerk-sdk-go in Clerk's JSON error shape. The SDK turns a body that
// is not (a proxy's HTML, the plain 404 of a CLERK_API_URL that is not the
// API's /v1) into a bare string error that has lost its status, which the
// activities could then only retry for ever; with the shape, they classify
// its status like any other of Clerk's.
type clerkErrorShape struct{ next http.RoundTripper }

// RoundTrip implements http.RoundTripper.
func (t clerkErrorShape) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(req)
	if err != nil || resp.StatusCode < 400 {
		return resp, err
	}
	if mediaType, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mediaType == "application/json" {
		return resp, nil
	}
	_ = resp.Body.Close()
	body, err := json.Marshal(map[string]any{"errors": []map[string]string{{
		"code":    "http_" + strconv.Itoa(resp.StatusCode),
		"message": http.StatusText(resp.StatusCode),
		"long_message": "the server at CLERK_API_URL answered HTTP " + strconv.Itoa(resp.StatusCode) +
			" without a Clerk API error body",
	}}})
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	resp.ContentLength = int64(len(body))
	resp.Header.Set("Content-Type", "application/json")
	resp.Header.Del("Content-Length")
	return resp, nil
}
