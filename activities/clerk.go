package activities

import (
	"context"
	"fmt"

	"github.com/clerksync/clerksync/internal/clerkapi"
	"github.com/clerksync/clerksync/internal/clerkevent"
)

// ErrTypeClerkMisconfigured is the ApplicationError type of a profile fetch
// that cannot succeed until an operator changes the configuration: no
// CLERK_SECRET_KEY, or Clerk refusing the key (401, 403). Retrying would keep
// the user's workflow open for ever.
const ErrTypeClerkMisconfigured = clerkapi.ErrTypeMisconfigured

// ErrTypeClerkRateLimited is the ApplicationError type of a Clerk call
// answered 429: retried, after Clerk's Retry-After when it sends one.
const ErrTypeClerkRateLimited = clerkapi.ErrTypeRateLimited

// FetchClerkUserResult is the user as Clerk knows it now, or NotFound when
// Clerk answered 404.
type FetchClerkUserResult struct {
	User *clerkevent.User `json:"user,omitempty"`
	// NotFound: Clerk answered 404. It is not a deletion: a worker whose
	// CLERK_SECRET_KEY belongs to another Clerk instance gets 404 for every
	// user. Deletion authority is a signed user.deleted webhook.
	NotFound bool `json:"not_found,omitempty"`
}

// FetchClerkUser reads the user's full profile from the Clerk Backend API.
// Clerk being down or rate-limiting is retried by Temporal; a 404 is an
// answer, not an error; a missing or refused key fails for good.
func (a *Activities) FetchClerkUser(ctx context.Context, clerkID string) (FetchClerkUserResult, error) {
	res, err := a.fetchClerkUser(ctx, clerkID)
	return res, a.Metrics.failed("fetch_profile", err)
}

func (a *Activities) fetchClerkUser(ctx context.Context, clerkID string) (FetchClerkUserResult, error) {
	if err := clerkevent.ValidateClerkID(clerkID); err != nil {
		return FetchClerkUserResult{}, invalid(fmt.Errorf("fetch clerk user: %w", err))
	}
	if a.Clerk == nil {
		return FetchClerkUserResult{}, noClerkKey("fetch clerk user")
	}
	cu, err := a.Clerk.GetUser(ctx, clerkID)
	switch {
	case clerkapi.NotFound(err):
		return FetchClerkUserResult{NotFound: true}, nil
	case err != nil:
		// One attempt per activity: Temporal retries it, after Clerk's
		// Retry-After when Clerk rate-limits.
		return FetchClerkUserResult{}, clerkapi.Failure(fmt.Sprintf("fetch clerk user %s", clerkID), err)
	}
	normalize := clerkevent.NormalizeUser
	if a.Store != nil { // what the tables do not store stays out of the history
		normalize = a.Store.Mapping().NormalizeUser
	}
	full, err := clerkevent.FromSDK(cu)
	if err != nil {
		return FetchClerkUserResult{}, invalid(fmt.Errorf("fetch clerk user %s: %w", clerkID, err))
	}
	u, err := normalize(full)
	if err != nil {
		return FetchClerkUserResult{}, invalid(fmt.Errorf("fetch clerk user %s: %w", clerkID, err))
	}
	return FetchClerkUserResult{User: &u}, nil
}

// noClerkKey is the error of a Clerk API call on a worker without
// CLERK_SECRET_KEY: a configuration error, not retried.
func noClerkKey(op string) error {
	return clerkapi.Misconfigured(fmt.Errorf("%s: no Clerk API client configured: set CLERK_SECRET_KEY on the worker", op))
}
