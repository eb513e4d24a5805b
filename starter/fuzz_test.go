package main

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/clerksync/clerksync/internal/clerkwebhook"
)

// FuzzWebhookHandler sends random bodies and headers, signed or not, through
// the real handler with a stand-in for Temporal. Whatever arrives, the handler
// never panics, never answers 5xx to bad input, and starts a workflow only for
// a validly signed user event it answered 200. testdata/fuzz holds the seed
// corpus every test run replays.
func FuzzWebhookHandler(f *testing.F) {
	now := time.Now()
	created, _ := clerkwebhook.UserEvent("user.created", clerkwebhook.UserFields{ClerkID: "user_f", CreatedAt: now, UpdatedAt: now})
	deleted, _ := clerkwebhook.DeletedEvent("user_f", now)
	f.Add(created, true, int64(0), "msg_1", "")
	f.Add(deleted, true, int64(0), "msg_2", "")
	f.Add(created, false, int64(0), "msg_3", "v1,bm90IGEgc2lnbmF0dXJl")
	f.Add(created, true, int64(-600), "msg_4", "")
	f.Add([]byte(`{"type":"user.created","data":{}}`), true, int64(0), "msg_5", "")
	f.Add([]byte(`not json`), true, int64(0), "", "")
	f.Fuzz(func(t *testing.T, body []byte, sign bool, skewSeconds int64, msgID, rawSignature string) {
		sig := &recordingSignaler{}
		h := newTestHandler(t, sig)
		h.maxBytes = 64 << 10
		r := httptest.NewRequest(http.MethodPost, "/webhooks/clerk", bytes.NewReader(body))
		at := now.Add(time.Duration(skewSeconds%100_000) * time.Second)
		if sign {
			headers, err := clerkwebhook.Sign(testSecret, msgID, at, body)
			if err != nil {
				t.Fatal(err)
			}
			r.Header = headers
		} else {
			r.Header.Set("svix-id", msgID)
			r.Header.Set("svix-timestamp", strconv.FormatInt(at.Unix(), 10))
			r.Header.Set("svix-signature", rawSignature)
		}
		w := serveOnce(h, r)
		if w.Code >= 500 {
			t.Fatalf("5xx for input the signaler never refused: %d %s", w.Code, w.Body)
		}
		if len(sig.events) > 0 {
			if w.Code != http.StatusOK {
				t.Fatalf("started a workflow but answered %d", w.Code)
			}
			if !sign {
				t.Fatal("started a workflow for an unsigned request")
			}
			if len(sig.events) != 1 {
				t.Fatalf("one request started %d workflows", len(sig.events))
			}
		}
	})
}
