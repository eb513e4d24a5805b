package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/clerk/clerk-sdk-go/v2"
	"github.com/clerk/clerk-sdk-go/v2/jwks"
	"github.com/clerk/clerk-sdk-go/v2/jwt"
)

// jwksRefreshInterval bounds how often an unknown key ID makes the verifier
// fetch Clerk's JWKS again, so a flood of forged key IDs cannot hammer Clerk.
const jwksRefreshInterval = 10 * time.Second

var (
	errNoToken          = errors.New("missing Authorization: Bearer <Clerk session token>")
	errInvalidToken     = errors.New("invalid session token")
	errKeysUnavailable  = errors.New("could not fetch Clerk's signing keys")
	errEnsureNotEnabled = errors.New("ensure is not configured: set CLERK_SECRET_KEY")
)

// sessionVerifier verifies Clerk session JWTs with clerk-sdk-go, caching
// Clerk's signing keys by key ID.
type sessionVerifier struct {
	jwks    *jwks.Client
	parties []string // accepted azp values; empty accepts any

	mu          sync.Mutex
	keys        map[string]*clerk.JSONWebKey
	refreshedAt time.Time
}

func newSessionVerifier(cfg *clerk.ClientConfig, authorizedParties []string) *sessionVerifier {
	return &sessionVerifier{jwks: jwks.NewClient(cfg), parties: authorizedParties, keys: map[string]*clerk.JSONWebKey{}}
}

// Verify checks the Authorization header and returns the token's subject: the
// Clerk user ID, which never comes from anywhere else. Errors wrap
// errNoToken, errInvalidToken or errKeysUnavailable; none holds the token.
func (v *sessionVerifier) Verify(ctx context.Context, authorization string) (string, error) {
	token, ok := strings.CutPrefix(authorization, "Bearer ")
	if !ok || strings.TrimSpace(token) == "" {
		return "", errNoToken
	}
	unverified, err := jwt.Decode(ctx, &jwt.DecodeParams{Token: token})
	if err != nil {
		return "", fmt.Errorf("%w: %v", errInvalidToken, err)
	}
	key, err := v.key(ctx, unverified.KeyID)
	if err != nil {
		return "", err
	}
	claims, err := jwt.Verify(ctx, &jwt.VerifyParams{
		Token:                  token,
		JWK:                    key,
		AuthorizedPartyHandler: v.authorizedParty,
		Leeway:                 5 * time.Second,
	})
	if err != nil {
		return "", fmt.Errorf("%w: %v", errInvalidToken, err)
	}
	if claims.Subject == "" {
		return "", fmt.Errorf("%w: no sub claim", errInvalidToken)
	}
	return claims.Subject, nil
}

func (v *sessionVerifier) authorizedParty(azp string) bool {
	return len(v.parties) == 0 || slices.Contains(v.parties, azp)
}

// key returns the cached key for kid, fetching the JWKS when kid is new.
func (v *sessionVerifier) key(ctx context.Context, kid string) (*clerk.JSONWebKey, error) {
	if kid == "" {
		return nil, fmt.Errorf("%w: no kid header", errInvalidToken)
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if k, ok := v.keys[kid]; ok {
		return k, nil
	}
	if !v.refreshedAt.IsZero() && time.Since(v.refreshedAt) < jwksRefreshInterval {
		return nil, fmt.Errorf("%w: unknown key %q", errInvalidToken, kid)
	}
	set, err := v.jwks.Get(ctx, &jwks.GetParams{})
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errKeysUnavailable, err)
	}
	v.refreshedAt = time.Now()
	clear(v.keys)
	for _, k := range set.Keys {
		if k != nil {
			v.keys[k.KeyID] = k
		}
	}
	if k, ok := v.keys[kid]; ok {
		return k, nil
	}
	return nil, fmt.Errorf("%w: unknown key %q", errInvalidToken, kid)
}
