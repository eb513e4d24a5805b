// Package oidcauth verifies the access tokens an OpenID Connect issuer signs,
// for the codec server behind a Temporal UI with SSO. It is a package of its
// own so that what imports the payload codec alone (the ensure library) does
// not link go-oidc.
package oidcauth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"
)

// Bounds of the issuer's answers: a request to an issuer that accepts
// connections and never answers fails after issuerTimeout (and the next
// token tries again), and a token naming a key ID the key set does not hold
// refetches the issuer's keys at most once per keyRefetchEvery, so a flood
// of forged tokens costs the issuer one request a minute.
const (
	issuerTimeout   = 10 * time.Second
	keyRefetchEvery = time.Minute
)

// Verifier accepts the access tokens an OpenID Connect issuer signs:
// what a Temporal UI behind SSO forwards to the codec server when it is
// configured to pass the user's access token (TEMPORAL_CODEC_PASS_ACCESS_TOKEN).
// The issuer's discovery document and keys are fetched on first use, and the
// keys again, rate-limited, when a token names an unknown one.
type Verifier struct {
	issuer, audience string
	client           *http.Client

	mu       sync.Mutex
	verifier *oidc.IDTokenVerifier
	// discovering is closed when the discovery in flight ends; nil when
	// none is.
	discovering chan struct{}
	lastErr     error
}

// NewVerifier checks tokens against issuer (CODEC_OIDC_ISSUER) for
// audience (CODEC_OIDC_AUDIENCE): without one, a token minted for any
// application of the issuer would pass.
func NewVerifier(issuer, audience string) (*Verifier, error) {
	if audience == "" {
		return nil, errors.New("CODEC_OIDC_AUDIENCE is required with CODEC_OIDC_ISSUER: without it, an access token the issuer " +
			"minted for any of its applications would decrypt payloads; set the audience (client ID) the Temporal UI's tokens carry")
	}
	return &Verifier{issuer: issuer, audience: audience, client: &http.Client{Timeout: issuerTimeout}}, nil
}

// Verify checks the token's signature, issuer, expiry and audience.
func (v *Verifier) Verify(ctx context.Context, token string) error {
	verifier, err := v.get(ctx)
	if err != nil {
		return err
	}
	if _, err := verifier.Verify(ctx, token); err != nil {
		return fmt.Errorf("access token: %w", err)
	}
	return nil
}

// get returns the verifier once discovery has succeeded. Discovery runs
// outside the lock, one at a time, bounded by the client's timeout; a
// request waits for it only as long as its own context allows, and a failed
// discovery is tried again by the next request.
func (v *Verifier) get(ctx context.Context) (*oidc.IDTokenVerifier, error) {
	v.mu.Lock()
	if v.verifier != nil {
		defer v.mu.Unlock()
		return v.verifier, nil
	}
	if v.discovering == nil {
		v.discovering = make(chan struct{})
		go v.discover(v.discovering)
	}
	done := v.discovering
	v.mu.Unlock()
	select {
	case <-done:
	case <-ctx.Done():
		return nil, fmt.Errorf("discover OIDC issuer %s: %w", v.issuer, ctx.Err())
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.verifier != nil {
		return v.verifier, nil
	}
	return nil, v.lastErr
}

// discover reads the issuer's discovery document and sets up its key set,
// then closes done.
func (v *Verifier) discover(done chan struct{}) {
	ctx, cancel := context.WithTimeout(oidc.ClientContext(context.Background(), v.client), issuerTimeout)
	defer cancel()
	verifier, err := v.newVerifier(ctx)
	v.mu.Lock()
	defer v.mu.Unlock()
	v.verifier, v.lastErr, v.discovering = verifier, err, nil
	close(done)
}

func (v *Verifier) newVerifier(ctx context.Context) (*oidc.IDTokenVerifier, error) {
	provider, err := oidc.NewProvider(ctx, v.issuer)
	if err != nil {
		return nil, fmt.Errorf("discover OIDC issuer %s: %w", v.issuer, err)
	}
	var claims struct {
		JWKSURL    string   `json:"jwks_uri"`
		Algorithms []string `json:"id_token_signing_alg_values_supported"`
	}
	if err := provider.Claims(&claims); err != nil {
		return nil, fmt.Errorf("discover OIDC issuer %s: %w", v.issuer, err)
	}
	algs := claims.Algorithms
	if len(algs) == 0 {
		algs = []string{oidc.RS256} // the default of OpenID Connect Discovery
	}
	keys := &issuerKeys{url: claims.JWKSURL, client: v.client}
	for _, a := range algs {
		keys.algs = append(keys.algs, jose.SignatureAlgorithm(a))
	}
	return oidc.NewVerifier(v.issuer, keys, &oidc.Config{ClientID: v.audience, SupportedSigningAlgs: algs}), nil
}

// issuerKeys is the issuer's key set (its jwks_uri), cached: a token whose
// signature no cached key verifies (a rotated key, or a forgery) fetches
// the keys again at most once per keyRefetchEvery. go-oidc's RemoteKeySet
// refetches for every such token, so a flood of forged tokens would become
// a flood of requests to the issuer.
type issuerKeys struct {
	url    string
	client *http.Client
	algs   []jose.SignatureAlgorithm

	mu        sync.Mutex
	keys      []jose.JSONWebKey
	fetchedAt time.Time
}

// VerifySignature implements oidc.KeySet.
func (k *issuerKeys) VerifySignature(ctx context.Context, jwt string) ([]byte, error) {
	jws, err := jose.ParseSigned(jwt, k.algs)
	if err != nil {
		return nil, fmt.Errorf("malformed access token: %w", err)
	}
	k.mu.Lock()
	cached, refetch := k.keys, time.Since(k.fetchedAt) >= keyRefetchEvery
	if refetch {
		k.fetchedAt = time.Now() // one request refetches; the others use what it gets
	}
	k.mu.Unlock()
	if payload, ok := verifyWith(jws, cached); ok {
		return payload, nil
	}
	if !refetch {
		return nil, errors.New("access token signature matches no key of the issuer (its keys are refetched at most once a minute)")
	}
	keys, err := k.fetch(ctx)
	if err != nil {
		return nil, err
	}
	k.mu.Lock()
	k.keys = keys
	k.mu.Unlock()
	if payload, ok := verifyWith(jws, keys); ok {
		return payload, nil
	}
	return nil, errors.New("access token signature matches no key of the issuer")
}

func (k *issuerKeys) fetch(ctx context.Context) ([]jose.JSONWebKey, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, k.url, nil)
	if err != nil {
		return nil, fmt.Errorf("fetch issuer keys: %w", err)
	}
	resp, err := k.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetch issuer keys: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetch issuer keys: %s answered %s", k.url, resp.Status)
	}
	var set jose.JSONWebKeySet
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&set); err != nil {
		return nil, fmt.Errorf("fetch issuer keys: %w", err)
	}
	return set.Keys, nil
}

// verifyWith verifies jws with the first of keys that matches its key ID.
func verifyWith(jws *jose.JSONWebSignature, keys []jose.JSONWebKey) ([]byte, bool) {
	kid := ""
	if len(jws.Signatures) > 0 {
		kid = jws.Signatures[0].Header.KeyID
	}
	for i := range keys {
		if kid != "" && keys[i].KeyID != kid {
			continue
		}
		if payload, err := jws.Verify(&keys[i]); err == nil {
			return payload, true
		}
	}
	return nil, false
}
