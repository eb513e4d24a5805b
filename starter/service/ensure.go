package service

import (
	"crypto/subtle"
	"errors"
	"log/slog"
	"net/http"

	"github.com/clerksync/clerksync/ensure"
)

// APIKeyHeader carries the product backend's secret (ENSURE_API_KEYS) on
// an ensure: what a session token alone cannot prove, since the user's
// browser holds it too.
const APIKeyHeader = "Clerksync-Key"

// errNotTheBackend is an ensure without one of ENSURE_API_KEYS.
var errNotTheBackend = errors.New("ensure is for the product's backend: send one of the starter's ENSURE_API_KEYS in the " + APIKeyHeader + " header")

// ensureHandler serves POST /v1/users/ensure for backends in other languages:
// the Clerk user ID comes from the verified session token's sub, never from
// the body.
type ensureHandler struct {
	sessions *sessionVerifier // nil when CLERK_SECRET_KEY is not set
	// apiKeys, when any, are the secrets one of which a caller must send.
	apiKeys [][]byte
	ensurer *ensure.Ensurer
	logger  *slog.Logger
}

func (h *ensureHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !h.fromBackend(r) {
		writeJSON(w, http.StatusForbidden, map[string]string{"error": errNotTheBackend.Error()})
		return
	}
	if h.sessions == nil {
		w.Header().Set("Retry-After", "60")
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": errEnsureNotEnabled.Error()})
		return
	}
	clerkID, err := h.sessions.Verify(r.Context(), r.Header.Get("Authorization"))
	switch {
	case errors.Is(err, errKeysUnavailable):
		h.logger.Error("Cannot verify session tokens", "error", err)
		w.Header().Set("Retry-After", "5")
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": errKeysUnavailable.Error()})
		return
	case err != nil:
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": err.Error()})
		return
	}
	user, err := h.ensurer.Ensure(r.Context(), clerkID)
	switch {
	case err == nil:
		writeJSON(w, http.StatusOK, user)
	case errors.Is(err, ensure.ErrDeleted):
		writeJSON(w, http.StatusGone, map[string]string{"error": "user was deleted in Clerk"})
	case errors.Is(err, ensure.ErrInvalidID):
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": err.Error()})
	case errors.Is(err, ensure.ErrTimeout):
		// The workflow keeps going: a retry will find the row.
		writeJSON(w, http.StatusGatewayTimeout, map[string]string{"error": "the user's row is not there yet; retry"})
	default: // Temporal or PostgreSQL unavailable
		h.logger.Error("Ensure failed", "clerk_id", clerkID, "error", err)
		w.Header().Set("Retry-After", "5")
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "temporarily unavailable, retry later"})
	}
}

// fromBackend reports whether r carries one of the backend's keys, or no
// key is required. Every key is compared, in constant time, so the answer's
// timing tells nothing of which one came close.
func (h *ensureHandler) fromBackend(r *http.Request) bool {
	if len(h.apiKeys) == 0 {
		return true
	}
	got := []byte(r.Header.Get(APIKeyHeader))
	match := 0
	for _, k := range h.apiKeys {
		match |= subtle.ConstantTimeCompare(got, k)
	}
	return match == 1
}
