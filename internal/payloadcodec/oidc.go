package payloadcodec

import (
	"context"
	"fmt"
	"sync"

	"github.com/coreos/go-oidc/v3/oidc"
)

// OIDCVerifier accepts the access tokens an OpenID Connect issuer signs:
// what a Temporal UI behind SSO forwards to the codec server when it is
// configured to pass the user's access token (TEMPORAL_CODEC_PASS_ACCESS_TOKEN).
// The issuer's discovery document and keys are fetched on first use, and the
// keys again when a token names an unknown one.
type OIDCVerifier struct {
	issuer, audience string

	mu       sync.Mutex
	verifier *oidc.IDTokenVerifier
}

// NewOIDCVerifier checks tokens against issuer (CODEC_OIDC_ISSUER) and, when
// audience is set (CODEC_OIDC_AUDIENCE), their aud claim.
func NewOIDCVerifier(issuer, audience string) *OIDCVerifier {
	return &OIDCVerifier{issuer: issuer, audience: audience}
}

// Verify checks the token's signature, issuer, expiry and audience.
func (v *OIDCVerifier) Verify(ctx context.Context, token string) error {
	verifier, err := v.get(ctx)
	if err != nil {
		return err
	}
	if _, err := verifier.Verify(ctx, token); err != nil {
		return fmt.Errorf("access token: %w", err)
	}
	return nil
}

// get discovers the issuer once it succeeds; a failed discovery is tried
// again on the next request.
func (v *OIDCVerifier) get(ctx context.Context) (*oidc.IDTokenVerifier, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.verifier != nil {
		return v.verifier, nil
	}
	// The key set outlives this request, so it fetches with a context of
	// its own.
	provider, err := oidc.NewProvider(oidc.ClientContext(context.WithoutCancel(ctx), nil), v.issuer)
	if err != nil {
		return nil, fmt.Errorf("discover OIDC issuer %s: %w", v.issuer, err)
	}
	v.verifier = provider.Verifier(&oidc.Config{ClientID: v.audience, SkipClientIDCheck: v.audience == ""})
	return v.verifier, nil
}
