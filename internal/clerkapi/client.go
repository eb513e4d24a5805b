// Package clerkapi is the Clerk Backend API as clerksync's worker calls
// it: clerk-sdk-go's configuration and HTTP client, one rate limit every
// request of the worker shares (CLERK_API_RPS), one reading of Clerk's
// answers (429 and its Retry-After, 5xx, 401, 403 and
// organization_not_enabled_in_instance, 404), and a typed call for each
// endpoint clerksync reads.
//
// A call either makes one attempt (GetUser, for an activity that Temporal
// retries) or retries until it gets an answer (the listings and lookups of
// backfill and reconciliation, which heartbeat while they wait).
package clerkapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/clerk/clerk-sdk-go/v2"
	"github.com/clerk/clerk-sdk-go/v2/user"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"
	"golang.org/x/time/rate"
)

// Client is the Backend API of one Clerk instance. It is safe for
// concurrent use; every request waits for the same rate limit, since Clerk
// limits the instance, not the caller.
type Client struct {
	backend clerk.Backend
	config  clerk.BackendConfig
	users   *user.Client
	// limiter paces every request (CLERK_API_RPS); nil lifts the limit.
	limiter *rate.Limiter
	// pausedUntil: a 429 asked every caller to wait until then (Clerk
	// limits the instance, so one caller's 429 is everyone's).
	mu          sync.Mutex
	pausedUntil time.Time
}

// New returns the Backend API that c (config.ClerkClient) configures,
// paced at rps requests a second (0 for no limit).
func New(c *clerk.ClientConfig, rps float64) *Client {
	cfg := c.BackendConfig
	backend := clerk.NewBackend(&cfg) // fills in the SDK's defaults, which the user listing uses too
	client := &Client{backend: backend, config: cfg, users: user.NewClient(c)}
	if rps > 0 {
		client.limiter = rate.NewLimiter(rate.Limit(rps), 1)
	}
	return client
}

// Counter counts a call's requests as it makes them: each request, each
// answered 429, each retried after a 5xx or a network error.
type Counter interface {
	CountRequest()
	CountRateLimited()
	CountRetry()
}

// Error types of the Temporal ApplicationErrors a failed call becomes.
const (
	// ErrTypeMisconfigured: the call cannot succeed until an operator
	// changes the configuration (no CLERK_SECRET_KEY, Clerk refusing the
	// key or the request, CLERK_API_URL pointing elsewhere); not retried.
	ErrTypeMisconfigured = "ClerkMisconfigured"
	// ErrTypeRateLimited: Clerk answered 429; retried after its
	// Retry-After when it sends one.
	ErrTypeRateLimited = "ClerkRateLimited"
)

// ErrOrganizationsDisabled: the Clerk instance has no Organizations
// feature (a 403 with organization_not_enabled_in_instance). A normal
// instance, not a refused key: backfill skips its organizations.
var ErrOrganizationsDisabled = errors.New("the Clerk instance has the Organizations feature turned off (" + organizationsNotEnabled + ")")

const organizationsNotEnabled = "organization_not_enabled_in_instance"

// wait waits out a pause a 429 asked for, then for the rate limit.
func (c *Client) wait(ctx context.Context) error {
	c.mu.Lock()
	paused := time.Until(c.pausedUntil)
	c.mu.Unlock()
	if paused > 0 {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(paused):
		}
	}
	if c.limiter == nil {
		return nil
	}
	if err := c.limiter.Wait(ctx); err != nil {
		return fmt.Errorf("wait for the Clerk rate limit: %w", err)
	}
	return nil
}

// pause holds every request back for d: Clerk answered 429.
func (c *Client) pause(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if until := time.Now().Add(d); until.After(c.pausedUntil) {
		c.pausedUntil = until
	}
}

// retrying makes call until Clerk answers it: a 429 waits for its
// Retry-After, a 5xx or a network error backs off up to 30 s, heartbeating
// by beat while it waits. Only ctx's end (the activity cancelled or timed
// out, then retried by Temporal) stops it. A refused key (401) or request
// (403) fails for good (Failure), but for an instance without the
// Organizations feature (ErrOrganizationsDisabled); any other 4xx (a 404)
// is an answer, returned to the caller.
func (c *Client) retrying(ctx context.Context, count Counter, beat func(), call func() error) error {
	for wait := time.Second; ; wait = min(2*wait, 30*time.Second) {
		delay, outcome, err := c.attempt(ctx, count, call, wait)
		switch outcome {
		case answered:
			return err
		case failed:
			count.CountRetry()
		}
		if activity.IsActivity(ctx) { // the activity's logger names the activity; outside one, the retry goes unlogged
			activity.GetLogger(ctx).Warn("Clerk API call failed; retrying", "retry_in", delay.String(), "error", err)
		}
		if err := sleep(ctx, delay, beat); err != nil {
			return err
		}
	}
}

// attemptOutcome is what became of one attempt at a call.
type attemptOutcome int

const (
	// answered: err is the call's outcome, as retrying describes it.
	answered attemptOutcome = iota
	// rateLimited: Clerk answered 429, which pauses every caller.
	rateLimited
	// failed: Clerk did not answer (a 5xx, a network error).
	failed
)

// attempt makes call once, under the rate limit. Unless it was answered,
// it may be made again after delay (wait, or a 429's Retry-After).
func (c *Client) attempt(ctx context.Context, count Counter, call func() error, wait time.Duration) (time.Duration, attemptOutcome, error) {
	if err := c.wait(ctx); err != nil {
		return 0, answered, err
	}
	count.CountRequest()
	err := call()
	if err == nil {
		return 0, answered, nil
	}
	var apiErr *clerk.APIErrorResponse
	ok := errors.As(err, &apiErr) // Clerk answered, with a status
	switch {
	case ok && apiErr.HTTPStatusCode == http.StatusTooManyRequests:
		count.CountRateLimited()
		delay := retryAfter(apiErr, wait)
		c.pause(delay)
		return delay, rateLimited, err
	case ok && apiErr.HTTPStatusCode == http.StatusForbidden && hasErrorCode(apiErr, organizationsNotEnabled):
		return 0, answered, fmt.Errorf("clerk API: %w", ErrOrganizationsDisabled)
	case ok && refused(apiErr):
		return 0, answered, Failure("clerk API", err)
	case ok && apiErr.HTTPStatusCode < 500:
		return 0, answered, err
	}
	return wait, failed, err
}

// sleep waits d, heartbeating every 10 s, until ctx ends.
func sleep(ctx context.Context, d time.Duration, beat func()) error {
	end := time.Now().Add(d)
	for {
		left := time.Until(end)
		if left <= 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(min(left, 10*time.Second)):
			beat()
		}
	}
}

// NotFound reports whether err is Clerk's 404.
func NotFound(err error) bool {
	var apiErr *clerk.APIErrorResponse
	return errors.As(err, &apiErr) && apiErr.HTTPStatusCode == http.StatusNotFound
}

// retryAfter reads a 429's Retry-After (seconds), or falls back to wait.
func retryAfter(apiErr *clerk.APIErrorResponse, wait time.Duration) time.Duration {
	if apiErr.Response == nil {
		return wait
	}
	if s, err := strconv.Atoi(apiErr.Response.Header.Get("Retry-After")); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	return wait
}

// hasErrorCode reports whether Clerk's error body carries code.
func hasErrorCode(apiErr *clerk.APIErrorResponse, code string) bool {
	return slices.ContainsFunc(apiErr.Errors, func(e clerk.Error) bool { return e.Code == code })
}

// errorCodes lists the codes of Clerk's error body, as ", code a, b" for a
// message, or "" for none.
func errorCodes(apiErr *clerk.APIErrorResponse) string {
	var codes []string
	for _, e := range apiErr.Errors {
		if e.Code != "" {
			codes = append(codes, e.Code)
		}
	}
	if len(codes) == 0 {
		return ""
	}
	return ", code " + strings.Join(codes, ", ")
}

// refused reports whether Clerk refused the key (401) or the request (403).
func refused(apiErr *clerk.APIErrorResponse) bool {
	return apiErr.HTTPStatusCode == http.StatusUnauthorized || apiErr.HTTPStatusCode == http.StatusForbidden
}

// Misconfigured marks err as a failure no retry can fix: an operator has
// to change the configuration.
func Misconfigured(err error) error {
	return temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeMisconfigured, err)
}

// Failure is what op, a failed Clerk call, returns to Temporal: a refused
// key or request fails for good (retrying cannot fix configuration); a 429
// is retried by Temporal after Clerk's Retry-After; anything else is
// retried on the activity's policy.
func Failure(op string, err error) error {
	var apiErr *clerk.APIErrorResponse
	if !errors.As(err, &apiErr) {
		return fmt.Errorf("%s: %w", op, err)
	}
	switch {
	case apiErr.HTTPStatusCode == http.StatusUnauthorized:
		return Misconfigured(fmt.Errorf("%s: Clerk refused CLERK_SECRET_KEY (HTTP 401): set a valid secret key of this Clerk instance on the worker", op))
	case apiErr.HTTPStatusCode == http.StatusForbidden:
		return Misconfigured(fmt.Errorf("%s: Clerk refused the request (HTTP 403%s)", op, errorCodes(apiErr)))
	case apiErr.HTTPStatusCode == http.StatusTooManyRequests:
		return temporal.NewApplicationErrorWithOptions(fmt.Sprintf("%s: Clerk rate-limited the request (HTTP 429)", op), ErrTypeRateLimited,
			temporal.ApplicationErrorOptions{Cause: err, NextRetryDelay: retryAfter(apiErr, 0)})
	}
	return fmt.Errorf("%s: %w", op, err)
}

// listed turns a 404 from one of the Backend API's collection endpoints
// (path), which exist on every instance, into the configuration error it
// is: CLERK_API_URL points somewhere other than the API's /v1, and retrying
// would never end.
func listed(path string, err error) error {
	if !NotFound(err) {
		return err
	}
	return Misconfigured(fmt.Errorf("clerk API: GET %s answered 404: check CLERK_API_URL, which must end in /v1 (as https://api.clerk.com/v1)", path))
}
