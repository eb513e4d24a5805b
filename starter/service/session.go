package service

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/clerk/clerk-sdk-go/v2"
	"github.com/clerk/clerk-sdk-go/v2/jwks"
	"github.com/clerk/clerk-sdk-go/v2/jwt"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/singleflight"

	"github.com/clerksync/clerksync/internal/clerkevent"
)

// jwksRefreshInterval bounds how often an unknown key ID makes the verifier
// fetch Clerk's JWKS again, whether the last fetch succeeded or failed, so a
// flood of forged key IDs can neither hammer Clerk (and spend the instance's
// rate limit) nor queue every ensure behind a slow fetch.
const jwksRefreshInterval = 10 * time.Second

// jwksFetchTimeout bounds one JWKS fetch. It runs detached from the request
// that started it, since other requests may be waiting on the same fetch.
const jwksFetchTimeout = 5 * time.Second

// clerkUserIDPrefix starts every Clerk user ID; a session token's sub is one.
const clerkUserIDPrefix = "user_"

var (
	errNoToken          = errors.New("missing Authorization: Bearer <Clerk session token>")
	errInvalidToken     = errors.New("invalid session token")
	errKeysUnavailable  = errors.New("could not fetch Clerk's signing keys")
	errEnsureNotEnabled = errors.New("ensure is not configured: set CLERK_SECRET_KEY")
)

// sessionVerifier verifies Clerk session JWTs with clerk-sdk-go, caching
// Clerk's signing keys by key ID. A cached key verifies without any lock
// held across I/O; an unknown key ID triggers at most one JWKS fetch at a
// time (single-flight), and at most one per refresh interval.
type sessionVerifier struct {
	jwks    *jwks.Client
	parties []string // accepted azp values; empty accepts any
	// refreshInterval is jwksRefreshInterval; tests shorten it.
	refreshInterval time.Duration
	// fetches counts JWKS fetches by outcome; nil counts nothing.
	fetches *prometheus.CounterVec

	keys  atomic.Pointer[map[string]*clerk.JSONWebKey]
	fetch singleflight.Group

	mu           sync.Mutex // guards lastFetch and lastFetchErr
	lastFetch    time.Time
	lastFetchErr error
}

func newSessionVerifier(cfg *clerk.ClientConfig, authorizedParties []string, fetches *prometheus.CounterVec) *sessionVerifier {
	return &sessionVerifier{jwks: jwks.NewClient(cfg), parties: authorizedParties, refreshInterval: jwksRefreshInterval, fetches: fetches}
}

// Verify checks the Authorization header and returns the token's subject: the
// Clerk user ID, which never comes from anywhere else. Errors wrap
// errNoToken, errInvalidToken or errKeysUnavailable; none holds the token.
func (v *sessionVerifier) Verify(ctx context.Context, authorization string) (string, error) {
	token, ok := bearerToken(authorization)
	if !ok {
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
	if !strings.HasPrefix(claims.Subject, clerkUserIDPrefix) || clerkevent.ValidateClerkID(claims.Subject) != nil {
		// Clerk also signs tokens for other subjects (machines, OAuth
		// clients); only a user's session ensures a user.
		return "", fmt.Errorf("%w: sub is not a Clerk user ID", errInvalidToken)
	}
	return claims.Subject, nil
}

// bearerToken takes the token from an Authorization header. The scheme is
// case-insensitive (RFC 9110, section 11.1).
func bearerToken(authorization string) (string, bool) {
	scheme, token, ok := strings.Cut(strings.TrimSpace(authorization), " ")
	token = strings.TrimSpace(token)
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
		return "", false
	}
	return token, true
}

func (v *sessionVerifier) authorizedParty(azp string) bool {
	return len(v.parties) == 0 || slices.Contains(v.parties, azp)
}

// key returns the cached key for kid, fetching the JWKS when kid is new.
func (v *sessionVerifier) key(ctx context.Context, kid string) (*clerk.JSONWebKey, error) {
	if kid == "" {
		return nil, fmt.Errorf("%w: no kid header", errInvalidToken)
	}
	if k := v.cached(kid); k != nil {
		return k, nil
	}
	// Every caller waits on the one fetch in flight; the fetch itself runs
	// on a context of its own, so one caller giving up does not fail the
	// others.
	ch := v.fetch.DoChan("jwks", func() (any, error) { return nil, v.refresh(context.WithoutCancel(ctx)) })
	select {
	case <-ctx.Done():
		return nil, fmt.Errorf("%w: %v", errKeysUnavailable, ctx.Err())
	case res := <-ch:
		if res.Err != nil {
			return nil, res.Err
		}
	}
	if k := v.cached(kid); k != nil {
		return k, nil
	}
	return nil, fmt.Errorf("%w: unknown key %q", errInvalidToken, kid)
}

func (v *sessionVerifier) cached(kid string) *clerk.JSONWebKey {
	if keys := v.keys.Load(); keys != nil {
		return (*keys)[kid]
	}
	return nil
}

// refresh fetches the JWKS unless a fetch was made within the refresh
// interval; then it answers as that fetch did.
func (v *sessionVerifier) refresh(ctx context.Context) error {
	v.mu.Lock()
	if !v.lastFetch.IsZero() && time.Since(v.lastFetch) < v.refreshInterval {
		err := v.lastFetchErr
		v.mu.Unlock()
		return err
	}
	v.lastFetch = time.Now()
	v.mu.Unlock()

	ctx, cancel := context.WithTimeout(ctx, jwksFetchTimeout)
	defer cancel()
	set, err := v.jwks.Get(ctx, &jwks.GetParams{})
	if v.fetches != nil {
		outcome := "ok"
		if err != nil {
			outcome = "error"
		}
		v.fetches.WithLabelValues(outcome).Inc()
	}
	if err != nil {
		err = fmt.Errorf("%w: %v", errKeysUnavailable, err)
	} else {
		keys := make(map[string]*clerk.JSONWebKey, len(set.Keys))
		for _, k := range set.Keys {
			if k != nil {
				keys[k.KeyID] = k
			}
		}
		v.keys.Store(&keys)
	}
	v.mu.Lock()
	v.lastFetchErr = err
	v.mu.Unlock()
	return err
}
