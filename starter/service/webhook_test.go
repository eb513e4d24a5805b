package service

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/clerksync/clerksync/internal/clerkevent"
	"github.com/clerksync/clerksync/internal/clerkwebhook"
)

const (
	testSecret  = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	otherSecret = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"
)

func TestSign_MatchesSvixTestVector(t *testing.T) {
	t.Parallel()
	// Svix's published test vector: this secret, id, timestamp and body
	// produce exactly this signature, so what `starter send` and the tests
	// sign is what Svix signs.
	h, err := clerkwebhook.Sign(testSecret, "msg_p5jXN8AQM9LWM0D4loKWxJek", time.Unix(1614265330, 0), []byte(`{"test": 2432232314}`))
	require.NoError(t, err)
	require.Equal(t, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=", h.Get("svix-signature"))
	require.Equal(t, "1614265330", h.Get("svix-timestamp"))
}

func TestSignatureVerifier(t *testing.T) {
	t.Parallel()
	body := []byte(`{"test": 2432232314}`)
	now := time.Now()
	signed := func(secret string, at time.Time) http.Header {
		h, err := clerkwebhook.Sign(secret, "msg_vector", at, body)
		require.NoError(t, err)
		return h
	}
	v, err := NewSignatureVerifier(testSecret)
	require.NoError(t, err)
	id, err := v.Verify(body, signed(testSecret, now))
	require.NoError(t, err)
	require.Equal(t, "msg_vector", id)

	t.Run("rotation: any configured secret passes", func(t *testing.T) {
		v, err := NewSignatureVerifier(otherSecret + "  " + testSecret)
		require.NoError(t, err)
		_, err = v.Verify(body, signed(testSecret, now))
		require.NoError(t, err)
	})
	t.Run("wrong secret", func(t *testing.T) {
		_, err := v.Verify(body, signed(otherSecret, now))
		require.ErrorIs(t, err, errBadSignature)
	})
	t.Run("tampered body", func(t *testing.T) {
		_, err := v.Verify([]byte(`{"test": 2432232315}`), signed(testSecret, now))
		require.ErrorIs(t, err, errBadSignature)
	})
	t.Run("stale and future timestamps", func(t *testing.T) {
		_, err := v.Verify(body, signed(testSecret, now.Add(-6*time.Minute)))
		require.ErrorIs(t, err, errBadSignature)
		_, err = v.Verify(body, signed(testSecret, now.Add(6*time.Minute)))
		require.ErrorIs(t, err, errBadSignature)
	})
}

// webhookHeaders renames Svix's svix-* headers to the standard webhook-*
// ones, which the svix library also accepts.
func webhookHeaders(h http.Header) http.Header {
	out := http.Header{}
	for _, k := range []string{"id", "timestamp", "signature"} {
		out.Set("webhook-"+k, h.Get("svix-"+k))
	}
	return out
}

// TestVerify_CapturedRequestCannotBeReplayedWithRenamedHeaders: a request
// captured a day ago, replayed with its signature under webhook-* headers
// beside a fresh svix-timestamp and an ID of the attacker's choice, is
// refused: the timestamp checked is the one that was signed.
func TestVerify_CapturedRequestCannotBeReplayedWithRenamedHeaders(t *testing.T) {
	t.Parallel()
	body := []byte(`{"type":"user.deleted","data":{"id":"user_victim","object":"user","deleted":true}}`)
	captured, err := clerkwebhook.Sign(testSecret, "msg_captured", time.Now().Add(-24*time.Hour), body)
	require.NoError(t, err)
	replay := webhookHeaders(captured)
	replay.Set("svix-id", "msg_attacker_chosen")
	replay.Set("svix-timestamp", strconv.FormatInt(time.Now().Unix(), 10))
	v, err := NewSignatureVerifier(testSecret)
	require.NoError(t, err)
	_, err = v.Verify(body, replay)
	require.ErrorIs(t, err, errBadSignature)

	sig := &recordingSignaler{}
	r := httptest.NewRequest(http.MethodPost, "/webhooks/clerk", bytes.NewReader(body))
	r.Header = replay
	require.Equal(t, http.StatusUnauthorized, serveOnce(newTestHandler(t, sig), r).Code)
	require.Empty(t, sig.events)
}

// TestVerify_MessageIDComesFromTheVerifiedHeaderSet: the dedupe ID is the
// one that was signed, never a stray svix-id beside a verified webhook-* set.
func TestVerify_MessageIDComesFromTheVerifiedHeaderSet(t *testing.T) {
	t.Parallel()
	now := time.Now()
	body, err := clerkwebhook.DeletedEvent("user_ids", now)
	require.NoError(t, err)
	signed, err := clerkwebhook.Sign(testSecret, "msg_signed", now, body)
	require.NoError(t, err)
	h := webhookHeaders(signed)
	h.Set("svix-id", "msg_unsigned") // no svix-signature: the webhook-* set is the one verified
	v, err := NewSignatureVerifier(testSecret)
	require.NoError(t, err)
	id, err := v.Verify(body, h)
	require.NoError(t, err)
	require.Equal(t, "msg_signed", id)

	sig := &recordingSignaler{}
	r := httptest.NewRequest(http.MethodPost, "/webhooks/clerk", bytes.NewReader(body))
	r.Header = h
	require.Equal(t, http.StatusOK, serveOnce(newTestHandler(t, sig), r).Code)
	require.Len(t, sig.events, 1)
	require.Equal(t, "msg_signed", sig.events[0].ID)
}

func TestNewSignatureVerifier_RefusesBadSecretsWithoutEchoingThem(t *testing.T) {
	t.Parallel()
	_, err := NewSignatureVerifier("")
	require.ErrorContains(t, err, "CLERK_WEBHOOK_SECRET is not set")
	_, err = NewSignatureVerifier(testSecret + " whsec_not*base64")
	require.ErrorContains(t, err, "secret 2 of 2")
	require.NotContains(t, err.Error(), "not*base64")
}

// recordingSignaler stands in for Temporal in handler unit tests.
type recordingSignaler struct {
	mu     sync.Mutex
	events []clerkevent.Event
	err    error
}

func (r *recordingSignaler) SignalEvent(_ context.Context, ev clerkevent.Event) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return "", r.err
	}
	r.events = append(r.events, ev)
	return "user/" + ev.ClerkID, nil
}

func newTestHandler(t *testing.T, sig eventSignaler) *webhookHandler {
	t.Helper()
	v, err := NewSignatureVerifier(testSecret)
	require.NoError(t, err)
	m, err := newMetrics(prometheus.NewRegistry())
	require.NoError(t, err)
	return &webhookHandler{
		verifier: v, signaler: sig, maxBytes: 1 << 20, metrics: m,
		logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
}

func signedRequest(t *testing.T, secret string, at time.Time, body []byte) *http.Request {
	t.Helper()
	h, err := clerkwebhook.Sign(secret, "msg_test", at, body)
	require.NoError(t, err)
	r := httptest.NewRequest(http.MethodPost, "/webhooks/clerk", bytes.NewReader(body))
	r.Header = h
	return r
}

func serveOnce(h http.Handler, r *http.Request) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func TestWebhookHandler_AcceptsSignedUserEvent(t *testing.T) {
	t.Parallel()
	sig := &recordingSignaler{}
	h := newTestHandler(t, sig)
	now := time.Now()
	body, err := clerkwebhook.UserEvent("user.created", clerkwebhook.UserFields{
		ClerkID: "user_ok", Email: "a@example.com", CreatedAt: now, UpdatedAt: now,
	})
	require.NoError(t, err)
	w := serveOnce(h, signedRequest(t, testSecret, now, body))
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	var got map[string]string
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &got))
	require.Equal(t, "user/user_ok", got["workflow_id"])
	require.Len(t, sig.events, 1)
	require.Equal(t, "msg_test", sig.events[0].ID)
	require.Equal(t, "a@example.com", *sig.events[0].User.Email)
}

// TestWebhookHandler_RefusalsStartNothing covers every class of bad input:
// each gets its status, and none reaches Temporal.
func TestWebhookHandler_RefusalsStartNothing(t *testing.T) {
	t.Parallel()
	now := time.Now()
	valid, err := clerkwebhook.UserEvent("user.created", clerkwebhook.UserFields{ClerkID: "user_x", CreatedAt: now, UpdatedAt: now})
	require.NoError(t, err)
	for _, tc := range []struct {
		name string
		req  func(t *testing.T) *http.Request
		want int
	}{
		{"no signature headers", func(t *testing.T) *http.Request {
			return httptest.NewRequest(http.MethodPost, "/webhooks/clerk", bytes.NewReader(valid))
		}, http.StatusUnauthorized},
		{"wrong secret", func(t *testing.T) *http.Request { return signedRequest(t, otherSecret, now, valid) }, http.StatusUnauthorized},
		{"stale timestamp", func(t *testing.T) *http.Request {
			return signedRequest(t, testSecret, now.Add(-10*time.Minute), valid)
		}, http.StatusUnauthorized},
		{"body altered after signing", func(t *testing.T) *http.Request {
			r := signedRequest(t, testSecret, now, valid)
			r.Body = io.NopCloser(strings.NewReader(strings.Replace(string(valid), "user_x", "user_y", 1)))
			return r
		}, http.StatusUnauthorized},
		{"malformed JSON", func(t *testing.T) *http.Request {
			return signedRequest(t, testSecret, now, []byte(`{"type":"user.created","data":`))
		}, http.StatusBadRequest},
		{"user event without data.id", func(t *testing.T) *http.Request {
			return signedRequest(t, testSecret, now, []byte(`{"type":"user.updated","data":{"updated_at":1}}`))
		}, http.StatusBadRequest},
		{"body over the limit", func(t *testing.T) *http.Request {
			big := append([]byte(`{"type":"user.created","data":{"id":"user_big","x":"`), bytes.Repeat([]byte("a"), 1<<20)...)
			return signedRequest(t, testSecret, now, append(big, `"}}`...))
		}, http.StatusRequestEntityTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sig := &recordingSignaler{}
			w := serveOnce(newTestHandler(t, sig), tc.req(t))
			require.Equal(t, tc.want, w.Code, w.Body.String())
			require.Empty(t, sig.events)
		})
	}
}

func TestWebhookHandler_UnhandledTypeIsAcknowledgedAndCounted(t *testing.T) {
	t.Parallel()
	sig := &recordingSignaler{}
	h := newTestHandler(t, sig)
	w := serveOnce(h, signedRequest(t, testSecret, time.Now(), []byte(`{"type":"session.created","data":{"id":"sess_1"}}`)))
	require.Equal(t, http.StatusOK, w.Code)
	require.Empty(t, sig.events)
	require.Equal(t, 1.0, testutil.ToFloat64(h.metrics.webhooks.WithLabelValues("session.created", "unhandled")))
}

func TestWebhookHandler_TemporalUnavailableIs503(t *testing.T) {
	t.Parallel()
	h := newTestHandler(t, &recordingSignaler{err: errors.New("connection refused")})
	now := time.Now()
	body, err := clerkwebhook.DeletedEvent("user_gone", now)
	require.NoError(t, err)
	w := serveOnce(h, signedRequest(t, testSecret, now, body))
	require.Equal(t, http.StatusServiceUnavailable, w.Code)
	require.NotEmpty(t, w.Header().Get("Retry-After"))
}

// TestWebhookHandler_AnotherInstancesEventIsRefused: an event whose
// instance_id is not the Clerk instance the database was filled from is
// refused with a message naming both, counted, and starts nothing; an
// event of the recorded instance, or one without instance_id (older
// payloads), is accepted; with no instance recorded yet, any is.
func TestWebhookHandler_AnotherInstancesEventIsRefused(t *testing.T) {
	t.Parallel()
	recorded := "ins_production"
	event := func(instance string) []byte {
		body := fmt.Sprintf(`{"type":"user.created","object":"event","instance_id":%q,"timestamp":%d,"data":{"id":"user_i","object":"user","updated_at":%d}}`,
			instance, time.Now().UnixMilli(), time.Now().UnixMilli())
		if instance == "" {
			body = strings.Replace(body, `"instance_id":"",`, "", 1)
		}
		return []byte(body)
	}
	sig := &recordingSignaler{}
	h := newTestHandler(t, sig)
	h.instance = &recordedInstance{read: func(context.Context) (string, error) { return recorded, nil }}

	w := serveOnce(h, signedRequest(t, testSecret, time.Now(), event("ins_staging")))
	require.Equal(t, http.StatusBadRequest, w.Code)
	require.Contains(t, w.Body.String(), "Clerk instance ins_staging")
	require.Contains(t, w.Body.String(), "Clerk instance ins_production")
	require.Empty(t, sig.events)
	require.Equal(t, 1.0, testutil.ToFloat64(h.metrics.webhooks.WithLabelValues("", "wrong_instance")))

	for _, instance := range []string{"ins_production", ""} {
		w = serveOnce(h, signedRequest(t, testSecret, time.Now(), event(instance)))
		require.Equal(t, http.StatusOK, w.Code, "instance %q: %s", instance, w.Body.String())
	}
	require.Len(t, sig.events, 2)

	fresh := newTestHandler(t, sig)
	fresh.instance = &recordedInstance{read: func(context.Context) (string, error) { return "", nil }}
	w = serveOnce(fresh, signedRequest(t, testSecret, time.Now(), event("ins_staging")))
	require.Equal(t, http.StatusOK, w.Code, "nothing recorded yet: %s", w.Body.String())
}
