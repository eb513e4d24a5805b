package service

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
// the real handler with a stand-in for Temporal. The signed headers go out
// as svix-*, as webhook-*, or both, with stray svix-id and svix-timestamp
// headers beside them. Whatever arrives, the handler never panics, never
// answers 5xx to bad input, and starts a workflow only for a validly and
// freshly signed user event it answered 200, under the signed message ID.
// testdata/fuzz holds the seed corpus every test run replays.
func FuzzWebhookHandler(f *testing.F) {
	now := time.Now()
	created, _ := clerkwebhook.UserEvent("user.created", clerkwebhook.UserFields{ClerkID: "user_f", CreatedAt: now, UpdatedAt: now})
	deleted, _ := clerkwebhook.DeletedEvent("user_f", now)
	f.Add(created, true, int64(0), "msg_1", "", byte(0), "", int64(0))
	f.Add(deleted, true, int64(0), "msg_2", "", byte(0), "", int64(0))
	f.Add(created, false, int64(0), "msg_3", "v1,bm90IGEgc2lnbmF0dXJl", byte(0), "", int64(0))
	f.Add(created, true, int64(-600), "msg_4", "", byte(0), "", int64(0))
	f.Add([]byte(`{"type":"user.created","data":{}}`), true, int64(0), "msg_5", "", byte(0), "", int64(0))
	f.Add([]byte(`not json`), true, int64(0), "", "", byte(0), "", int64(0))
	// A day-old capture under webhook-* headers beside a fresh svix-timestamp.
	f.Add(deleted, true, int64(-86_400), "msg_6", "", byte(layoutWebhook|layoutStrayID|layoutStrayTimestamp), "msg_attacker", int64(86_400))
	f.Add(created, true, int64(0), "msg_7", "", byte(layoutWebhook|layoutStrayID), "msg_other", int64(0))
	f.Add(created, true, int64(0), "msg_8", "", byte(layoutSvix|layoutWebhook), "", int64(0))
	f.Fuzz(func(t *testing.T, body []byte, sign bool, skewSeconds int64, msgID, rawSignature string,
		layout byte, strayID string, straySkew int64) {
		sig := &recordingSignaler{}
		h := newTestHandler(t, sig)
		h.maxBytes = 64 << 10
		r := httptest.NewRequest(http.MethodPost, "/webhooks/clerk", bytes.NewReader(body))
		skew := time.Duration(skewSeconds%100_000) * time.Second
		at := now.Add(skew)
		signed := http.Header{}
		if sign {
			headers, err := clerkwebhook.Sign(testSecret, msgID, at, body)
			if err != nil {
				t.Fatal(err)
			}
			signed = headers
		} else {
			signed.Set("svix-id", msgID)
			signed.Set("svix-timestamp", strconv.FormatInt(at.Unix(), 10))
			signed.Set("svix-signature", rawSignature)
		}
		r.Header = http.Header{}
		if layout&layoutWebhook != 0 {
			for _, k := range []string{"id", "timestamp", "signature"} {
				r.Header.Set("webhook-"+k, signed.Get("svix-"+k))
			}
		}
		if layout&layoutSvix != 0 || layout&layoutWebhook == 0 {
			for _, k := range []string{"svix-id", "svix-timestamp", "svix-signature"} {
				r.Header.Set(k, signed.Get(k))
			}
		}
		if layout&layoutStrayID != 0 {
			r.Header.Set("svix-id", strayID)
		}
		if layout&layoutStrayTimestamp != 0 {
			r.Header.Set("svix-timestamp", strconv.FormatInt(now.Add(time.Duration(straySkew%100_000)*time.Second).Unix(), 10))
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
			if skew > 5*time.Minute || skew < -5*time.Minute {
				t.Fatalf("started a workflow for a request signed %s from now", skew)
			}
			if len(sig.events) != 1 {
				t.Fatalf("one request started %d workflows", len(sig.events))
			}
			if sig.events[0].ID != msgID {
				t.Fatalf("event carries message ID %q, but %q was signed", sig.events[0].ID, msgID)
			}
		}
	})
}

// Header layouts of FuzzWebhookHandler, as bits.
const (
	layoutSvix           = 1 << iota // the signed set as svix-* (also when no bit picks a set)
	layoutWebhook                    // the signed set as webhook-*
	layoutStrayID                    // a svix-id of the fuzzer's beside them
	layoutStrayTimestamp             // a svix-timestamp of the fuzzer's beside them
)
