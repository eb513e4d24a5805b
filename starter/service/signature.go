package service

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	svix "github.com/svix/svix-webhooks/go"
)

var errBadSignature = errors.New("signature or timestamp refused by every configured secret")

// SignatureVerifier checks Svix signatures against one or more whsec_
// secrets: during rotation Clerk signs with the new secret while the old one
// is still configured, and either must pass.
type SignatureVerifier struct {
	secrets []*svix.Webhook
}

// NewSignatureVerifier parses CLERK_WEBHOOK_SECRET: space-separated whsec_
// secrets. Errors name the secret's position, never its value.
func NewSignatureVerifier(secrets string) (*SignatureVerifier, error) {
	fields := strings.Fields(secrets)
	if len(fields) == 0 {
		return nil, errors.New("CLERK_WEBHOOK_SECRET is not set: copy the signing secret (whsec_...) from the Clerk dashboard's webhook endpoint")
	}
	v := &SignatureVerifier{}
	for i, s := range fields {
		wh, err := svix.NewWebhook(s)
		if err != nil {
			return nil, fmt.Errorf("CLERK_WEBHOOK_SECRET: secret %d of %d is not a valid whsec_ secret: %w", i+1, len(fields), err)
		}
		v.secrets = append(v.secrets, wh)
	}
	return v, nil
}

// Verify checks the signature and the timestamp (Svix's 5-minute
// tolerance) with the svix library's own Verify, and returns the message ID
// of the header set it verified. The library verifies the svix-* headers
// when all three are present and the webhook-* ones otherwise: checking the
// timestamp or taking the ID from the other set would let a captured request
// replay days later with renamed headers and an ID of the attacker's choice.
func (v *SignatureVerifier) Verify(body []byte, h http.Header) (msgID string, err error) {
	var lastErr error
	for _, wh := range v.secrets {
		if lastErr = wh.Verify(body, h); lastErr == nil {
			return verifiedMessageID(h), nil
		}
	}
	return "", fmt.Errorf("%w: %v", errBadSignature, lastErr)
}

// verifiedMessageID picks the message ID the way svix's Verify picks the
// header set it checks (svix-webhooks/go/webhook.go): svix-* when svix-id,
// svix-signature and svix-timestamp are all present, webhook-* otherwise.
// TestVerify_MessageIDComesFromTheVerifiedHeaderSet holds the two together.
func verifiedMessageID(h http.Header) string {
	if h.Get("svix-id") != "" && h.Get("svix-signature") != "" && h.Get("svix-timestamp") != "" {
		return h.Get("svix-id")
	}
	return h.Get("webhook-id")
}
