package payloadcodec

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"net/http"
	"slices"
	"strings"

	"go.temporal.io/sdk/converter"
)

// maxRequestBytes bounds one codec request: the UI and the CLI send a
// history's payloads in batches, each payload at most Temporal's 2 MB.
const maxRequestBytes = 16 << 20

// ServerOptions configure the codec server.
type ServerOptions struct {
	// AuthToken, when set, is accepted as "Authorization: Bearer <token>"
	// (CODEC_AUTH_TOKEN).
	AuthToken string
	// AccessTokens, when set, accepts a bearer token it verifies: the
	// access token a Temporal UI behind SSO forwards (CODEC_OIDC_ISSUER).
	// With neither set, the endpoint serves anyone who can reach it.
	AccessTokens interface {
		Verify(ctx context.Context, token string) error
	}
	// CORSOrigins are the browser origins (a Temporal UI's) allowed to
	// call the endpoint (CODEC_CORS_ORIGINS).
	CORSOrigins []string
}

// Handler serves Temporal's remote codec protocol (POST .../encode and
// .../decode with a JSON list of payloads), for the Temporal UI and the
// CLI's --codec-endpoint, with ks's keys. With ks nil (no PAYLOAD_KEYS) it
// answers 404: there is nothing to decode.
func Handler(ks *Keys, o ServerOptions) http.Handler {
	var codecs http.Handler = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		writeError(w, http.StatusNotFound, "payload encryption is off (PAYLOAD_KEYS is not set): payloads are plaintext")
	})
	if ks != nil {
		codecs = converter.NewPayloadCodecHTTPHandler(ks.Codec())
	}
	return &server{codecs: codecs, opts: o}
}

type server struct {
	codecs http.Handler
	opts   ServerOptions
}

func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	origin := r.Header.Get("Origin")
	granted := origin != "" && slices.Contains(s.opts.CORSOrigins, origin)
	if granted {
		w.Header().Set("Access-Control-Allow-Origin", origin)
		w.Header().Set("Access-Control-Allow-Credentials", "true")
	}
	w.Header().Add("Vary", "Origin")
	if r.Method == http.MethodOptions {
		if !granted {
			// No grant: the browser refuses the real request.
			w.WriteHeader(http.StatusForbidden)
			return
		}
		w.Header().Set("Access-Control-Allow-Methods", "POST")
		w.Header().Set("Access-Control-Allow-Headers", "Content-Type, X-Namespace, Authorization")
		w.Header().Set("Access-Control-Max-Age", "600")
		w.WriteHeader(http.StatusNoContent)
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST, OPTIONS")
		writeError(w, http.StatusMethodNotAllowed, "POST payloads to /codec/encode or /codec/decode")
		return
	}
	if (s.opts.AuthToken != "" || s.opts.AccessTokens != nil) && !s.authorized(r) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="clerksync codec"`)
		writeError(w, http.StatusUnauthorized, "send Authorization: Bearer <CODEC_AUTH_TOKEN> (or an access token of CODEC_OIDC_ISSUER)")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxRequestBytes)
	s.codecs.ServeHTTP(w, r)
}

func (s *server) authorized(r *http.Request) bool {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	token = strings.TrimSpace(token)
	if s.opts.AuthToken != "" && subtle.ConstantTimeCompare([]byte(token), []byte(s.opts.AuthToken)) == 1 {
		return true
	}
	return s.opts.AccessTokens != nil && s.opts.AccessTokens.Verify(r.Context(), token) == nil
}

func writeError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
}
