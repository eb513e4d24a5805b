package activities

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/clerk/clerk-sdk-go/v2"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"
)

// The Clerk Backend API as the long-running activities (backfill,
// reconcile) call it through clerk-sdk-go's Backend: one place that
// classifies Clerk's statuses (429 and Retry-After, 5xx, 401, 403 and its
// organization_not_enabled_in_instance, 404 on a collection) and paces
// every request by CLERK_API_RPS.

// callClerk makes one Clerk API call, retrying until it gets an answer: a
// 429 waits for its Retry-After, a 5xx or a network error backs off up to
// 30 s. Only ctx's end (the activity cancelled or timed out, then retried by
// Temporal) stops it. A refused key (401) or request (403) fails for good,
// but for an instance without the Organizations feature
// (errOrganizationsDisabled); any other 4xx (a 404) is an answer, returned
// to the caller. Every request waits for the worker's Clerk rate limit.
func (a *Activities) callClerk(ctx context.Context, stats *BackfillStats, beat func(), call func() error) error {
	for wait := time.Second; ; wait = min(2*wait, 30*time.Second) {
		if err := a.waitForClerk(ctx); err != nil {
			return err
		}
		stats.Requests++
		err := call()
		if err == nil {
			return nil
		}
		delay := wait
		var apiErr *clerk.APIErrorResponse
		answered := errors.As(err, &apiErr) // Clerk answered, with a status
		switch {
		case answered && apiErr.HTTPStatusCode == http.StatusTooManyRequests:
			stats.RateLimited++
			delay = retryAfter(apiErr, wait)
		case answered && apiErr.HTTPStatusCode == http.StatusForbidden && hasErrorCode(apiErr, organizationsNotEnabled):
			return fmt.Errorf("clerk API: %w", errOrganizationsDisabled)
		case answered && refused(apiErr):
			return clerkFailure("clerk API", err)
		case answered && apiErr.HTTPStatusCode < 500:
			return err
		default:
			stats.Retried++
		}
		activity.GetLogger(ctx).Warn("Clerk API call failed; retrying", "retry_in", delay.String(), "error", err)
		if err := sleep(ctx, delay, beat); err != nil {
			return err
		}
	}
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

// notFound reports whether err is the Clerk API's 404.
func notFound(err error) bool {
	var apiErr *clerk.APIErrorResponse
	return errors.As(err, &apiErr) && apiErr.HTTPStatusCode == http.StatusNotFound
}

// waitForClerk waits for the worker's Clerk API rate limit (CLERK_API_RPS),
// which every request a worker makes shares.
func (a *Activities) waitForClerk(ctx context.Context) error {
	if a.ClerkLimiter == nil {
		return nil
	}
	if err := a.ClerkLimiter.Wait(ctx); err != nil {
		return fmt.Errorf("wait for the Clerk rate limit: %w", err)
	}
	return nil
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

// listQuery is a query string for clerk.APIRequest (clerk.Params).
type listQuery map[string]string

// ToMultipart implements clerk.Params; a GET has no body.
func (listQuery) ToMultipart() ([]byte, string, error) { return nil, "", nil }

// ToQuery implements clerk.Params.
func (q listQuery) ToQuery() url.Values {
	v := url.Values{}
	for k, val := range q {
		v.Set(k, val)
	}
	return v
}

func newListRequest(path string, params map[string]string) *clerk.APIRequest {
	req := clerk.NewAPIRequest(http.MethodGet, path)
	if params != nil {
		req.SetParams(listQuery(params))
	}
	return req
}

// organizationsNotEnabled is the code of Clerk's 403 for an organization
// endpoint of an instance without the Organizations feature.
const organizationsNotEnabled = "organization_not_enabled_in_instance"

// errOrganizationsDisabled: the Clerk instance has no Organizations
// feature. Backfill and reconciliation skip their organization phase; it is
// a normal instance, not a refused key.
var errOrganizationsDisabled = errors.New("the Clerk instance has the Organizations feature turned off (" + organizationsNotEnabled + ")")

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

// listed turns a 404 from one of the Backend API's collection endpoints
// (path), which exist on every instance, into the configuration error it
// is: CLERK_API_URL points somewhere other than the API's /v1, and retrying
// would never end.
func listed(path string, err error) error {
	if !notFound(err) {
		return err
	}
	return misconfigured(fmt.Errorf("clerk API: GET %s answered 404: check CLERK_API_URL, which must end in /v1 (as https://api.clerk.com/v1)", path))
}

// refused reports whether Clerk refused the key (401) or the request (403).
func refused(apiErr *clerk.APIErrorResponse) bool {
	return apiErr.HTTPStatusCode == http.StatusUnauthorized || apiErr.HTTPStatusCode == http.StatusForbidden
}

// clerkFailure is what an activity that makes one attempt per call (the
// profile fetch) returns for a failed Clerk call, and what a refusal is
// anywhere: a refused key or request fails for good (retrying cannot fix
// configuration); a 429 is retried by Temporal after Clerk's Retry-After;
// anything else is retried on the activity's policy.
func clerkFailure(op string, err error) error {
	var apiErr *clerk.APIErrorResponse
	if !errors.As(err, &apiErr) {
		return fmt.Errorf("%s: %w", op, err)
	}
	switch {
	case apiErr.HTTPStatusCode == http.StatusUnauthorized:
		return misconfigured(fmt.Errorf("%s: Clerk refused CLERK_SECRET_KEY (HTTP 401): set a valid secret key of this Clerk instance on the worker", op))
	case apiErr.HTTPStatusCode == http.StatusForbidden:
		return misconfigured(fmt.Errorf("%s: Clerk refused the request (HTTP 403%s)", op, errorCodes(apiErr)))
	case apiErr.HTTPStatusCode == http.StatusTooManyRequests:
		return temporal.NewApplicationErrorWithOptions(fmt.Sprintf("%s: Clerk rate-limited the request (HTTP 429)", op), ErrTypeClerkRateLimited,
			temporal.ApplicationErrorOptions{Cause: err, NextRetryDelay: retryAfter(apiErr, 0)})
	}
	return fmt.Errorf("%s: %w", op, err)
}
