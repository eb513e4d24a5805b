package main

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	svix "github.com/svix/svix-webhooks/go"
)

// signatureTolerance is Svix's own: a message signed longer ago (or further
// ahead) than this is refused, so a captured request cannot be replayed later.
const signatureTolerance = 5 * time.Minute

var (
	errStaleSignature = errors.New("svix-timestamp is outside the 5-minute tolerance")
	errBadSignature   = errors.New("no signature matches a configured secret")
)

// signatureVerifier checks Svix signatures against one or more whsec_
// secrets: during rotation Clerk signs with the new secret while the old one
// is still configured, and either must pass.
type signatureVerifier struct {
	secrets []*svix.Webhook
	now     func() time.Time
}

// newSignatureVerifier parses CLERK_WEBHOOK_SECRET: space-separated whsec_
// secrets. Errors name the secret's position, never its value.
func newSignatureVerifier(secrets string) (*signatureVerifier, error) {
	fields := strings.Fields(secrets)
	if len(fields) == 0 {
		return nil, errors.New("CLERK_WEBHOOK_SECRET is not set: copy the signing secret (whsec_...) from the Clerk dashboard's webhook endpoint")
	}
	v := &signatureVerifier{now: time.Now}
	for i, s := range fields {
		wh, err := svix.NewWebhook(s)
		if err != nil {
			return nil, fmt.Errorf("CLERK_WEBHOOK_SECRET: secret %d of %d is not a valid whsec_ secret: %w", i+1, len(fields), err)
		}
		v.secrets = append(v.secrets, wh)
	}
	return v, nil
}

// Verify checks the signature with the svix library and the timestamp against
// v.now (a clock of its own so Svix's published test vector, signed in 2021,
// stays testable).
func (v *signatureVerifier) Verify(body []byte, h http.Header) error {
	tsHeader := h.Get("svix-timestamp")
	if tsHeader == "" {
		tsHeader = h.Get("webhook-timestamp")
	}
	ts, err := strconv.ParseInt(tsHeader, 10, 64)
	if err != nil {
		return errors.New("missing or invalid svix-timestamp header")
	}
	if age := v.now().Sub(time.Unix(ts, 0)); age > signatureTolerance || age < -signatureTolerance {
		return errStaleSignature
	}
	var lastErr error
	for _, wh := range v.secrets {
		if lastErr = wh.VerifyIgnoringTimestamp(body, h); lastErr == nil {
			return nil
		}
	}
	return fmt.Errorf("%w: %v", errBadSignature, lastErr)
}
