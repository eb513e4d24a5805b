package service

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/clerksync/clerksync/internal/clerkevent"
)

// signalTimeout bounds the wait for Temporal: Svix gives an endpoint 15 s, and
// a 503 well inside that lets Svix retry instead of timing out.
const signalTimeout = 5 * time.Second

// eventSignaler hands a parsed event to the user's workflow and returns once
// Temporal durably holds it.
type eventSignaler interface {
	SignalEvent(ctx context.Context, ev clerkevent.Event) (workflowID string, err error)
}

// webhookHandler serves POST /webhooks/clerk. It acknowledges (2xx) only
// after Temporal accepted the signal, so an acknowledged event is never lost;
// everything it refuses starts nothing.
type webhookHandler struct {
	verifier *SignatureVerifier
	signaler eventSignaler
	maxBytes int64
	metrics  *metrics
	logger   *slog.Logger
	// organizationsOff acknowledges organization and membership events
	// without applying them.
	organizationsOff bool
	// trim keeps of an event what the tables store (mapping.Mapping.TrimEvent),
	// so the rest never reaches Temporal.
	trim func(clerkevent.Event) clerkevent.Event
	// instance is the Clerk instance the database is kept in step with;
	// nil checks none.
	instance *recordedInstance
}

func (h *webhookHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	began := time.Now()
	outcome := h.handle(w, r)
	h.metrics.webhookDuration.WithLabelValues(outcome).Observe(time.Since(began).Seconds())
}

// handle answers one webhook and returns its outcome, the label of its
// series.
func (h *webhookHandler) handle(w http.ResponseWriter, r *http.Request) (outcome string) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.maxBytes))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return h.refuse(w, r, http.StatusRequestEntityTooLarge, "too_large", "body is larger than WEBHOOK_MAX_BYTES")
		}
		return h.refuse(w, r, http.StatusBadRequest, "malformed", "could not read body")
	}
	msgID, err := h.verifier.Verify(body, r.Header)
	if err != nil {
		h.metrics.signatureFailures.Inc()
		return h.refuse(w, r, http.StatusUnauthorized, "bad_signature", err.Error())
	}
	ev, err := clerkevent.Parse(body, msgID)
	switch {
	case errors.Is(err, clerkevent.ErrUnhandledType):
		// Acknowledged so Svix stops retrying an event we will never apply.
		h.metrics.webhooks.WithLabelValues(string(ev.Type), "unhandled").Inc()
		writeJSON(w, http.StatusOK, map[string]string{"status": "ignored", "type": string(ev.Type)})
		return "unhandled"
	case err != nil:
		return h.refuse(w, r, http.StatusBadRequest, "malformed", err.Error())
	case h.organizationsOff && ev.OrganizationID != "":
		h.metrics.webhooks.WithLabelValues(string(ev.Type), "unhandled").Inc()
		writeJSON(w, http.StatusOK, map[string]string{"status": "ignored", "type": string(ev.Type),
			"reason": "organizations are not kept with this CLERKSYNC_MAPPING (organizations: off)"})
		return "unhandled"
	}
	if h.instance != nil && ev.InstanceID != "" {
		if recorded := h.instance.get(r.Context()); recorded != "" && recorded != ev.InstanceID {
			return h.refuse(w, r, http.StatusBadRequest, "wrong_instance", fmt.Sprintf(
				"the event comes from Clerk instance %s, but this clerksync keeps the tables in step with Clerk instance %s "+
					"(recorded by its first backfill): the webhook endpoint belongs to another instance's Dashboard, "+
					"or CLERK_SECRET_KEY to another instance", ev.InstanceID, recorded))
		}
	}
	if h.trim != nil {
		ev = h.trim(ev)
	}
	ctx, cancel := context.WithTimeout(r.Context(), signalTimeout)
	defer cancel()
	signalBegan := time.Now()
	workflowID, err := h.signaler.SignalEvent(ctx, ev)
	h.metrics.signalDuration.Observe(time.Since(signalBegan).Seconds())
	if err != nil {
		h.logger.Error("Temporal did not accept the event; Svix will retry",
			append(eventAttrs(msgID, ev), "error", err)...)
		h.metrics.webhooks.WithLabelValues(string(ev.Type), "unavailable").Inc()
		w.Header().Set("Retry-After", "5")
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "temporal unavailable, retry later"})
		return "unavailable"
	}
	h.metrics.webhooks.WithLabelValues(string(ev.Type), "accepted").Inc()
	h.logger.Info("Webhook accepted", append(eventAttrs(msgID, ev), "workflow_id", workflowID)...)
	writeJSON(w, http.StatusOK, map[string]string{"status": "accepted", "workflow_id": workflowID})
	return "accepted"
}

// eventAttrs are the log attributes that name an event: its Svix message,
// its type, and the Clerk IDs it is about.
func eventAttrs(msgID string, ev clerkevent.Event) []any {
	attrs := []any{"svix_id", msgID, "type", ev.Type}
	if ev.ClerkID != "" {
		attrs = append(attrs, "clerk_id", ev.ClerkID)
	}
	if ev.OrganizationID != "" {
		attrs = append(attrs, "organization_id", ev.OrganizationID)
	}
	return attrs
}

// refuse answers a rejected webhook. The reason is logged and returned, but
// never the body or the signature headers.
func (h *webhookHandler) refuse(w http.ResponseWriter, r *http.Request, status int, outcome, reason string) string {
	h.metrics.webhooks.WithLabelValues("", outcome).Inc()
	h.logger.Warn("Webhook refused", "status", status, "outcome", outcome, "reason", reason,
		"svix_id", r.Header.Get("svix-id"), "remote", r.RemoteAddr)
	writeJSON(w, status, map[string]string{"error": reason})
	return outcome
}
