// Package sentryfake is a local stand-in for Sentry's ingestion endpoint
// (POST /api/<project>/envelope/): it keeps the events clerksync reports,
// as Sentry would receive them, for tests to read.
package sentryfake

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// Event is what a test reads of a reported event; Raw is the whole event
// as sent, for checking that nothing else rode along.
type Event struct {
	Message     string                    `json:"message"`
	Level       string                    `json:"level"`
	Tags        map[string]string         `json:"tags"`
	Fingerprint []string                  `json:"fingerprint"`
	Contexts    map[string]map[string]any `json:"contexts"`
	Raw         string                    `json:"-"`
}

// Server is a running stand-in.
type Server struct {
	srv    *httptest.Server
	mu     sync.Mutex
	events []Event
}

// Start runs one until the test ends.
func Start(t testing.TB) *Server {
	s := &Server{}
	s.srv = httptest.NewServer(http.HandlerFunc(s.envelope))
	t.Cleanup(s.srv.Close)
	return s
}

// DSN is the SENTRY_DSN that reports here, to project 1.
func (s *Server) DSN() string {
	return strings.Replace(s.srv.URL, "http://", "http://public@", 1) + "/1"
}

// Events returns the events received so far.
func (s *Server) Events() []Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Event(nil), s.events...)
}

// envelope reads an envelope: a header line, then items, each a header
// line (its type and length) and a payload.
func (s *Server) envelope(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || !strings.HasSuffix(r.URL.Path, "/envelope/") {
		http.NotFound(w, r)
		return
	}
	var body io.Reader = r.Body
	if r.Header.Get("Content-Encoding") == "gzip" {
		gz, err := gzip.NewReader(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		body = gz
	}
	raw, err := io.ReadAll(body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	rd := bufio.NewReader(bytes.NewReader(raw))
	if _, err := rd.ReadBytes('\n'); err != nil { // the envelope's header
		http.Error(w, "no envelope header", http.StatusBadRequest)
		return
	}
	for {
		line, err := rd.ReadBytes('\n')
		if len(bytes.TrimSpace(line)) == 0 {
			break
		}
		var item struct {
			Type   string `json:"type"`
			Length int    `json:"length"`
		}
		if jerr := json.Unmarshal(line, &item); jerr != nil {
			http.Error(w, "bad item header", http.StatusBadRequest)
			return
		}
		var payload []byte
		if item.Length > 0 {
			payload = make([]byte, item.Length)
			if _, err := io.ReadFull(rd, payload); err != nil {
				http.Error(w, "short item", http.StatusBadRequest)
				return
			}
			_, _ = rd.ReadBytes('\n')
		} else {
			payload, _ = rd.ReadBytes('\n')
		}
		if item.Type == "event" {
			var ev Event
			if err := json.Unmarshal(payload, &ev); err != nil {
				http.Error(w, "bad event", http.StatusBadRequest)
				return
			}
			ev.Raw = string(payload)
			s.mu.Lock()
			s.events = append(s.events, ev)
			s.mu.Unlock()
		}
		if err != nil {
			break
		}
	}
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write([]byte(`{"id":"00000000000000000000000000000000"}`))
}
