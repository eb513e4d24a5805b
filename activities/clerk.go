package activities

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/clerk/clerk-sdk-go/v2"

	"github.com/clerksync/clerksync/internal/clerkevent"
)

// ClerkUsers fetches one user from the Clerk Backend API; clerk-sdk-go's
// user.Client satisfies it.
type ClerkUsers interface {
	Get(ctx context.Context, id string) (*clerk.User, error)
}

// FetchClerkUserResult is the user as Clerk knows it now, or Gone when Clerk
// answered 404: the user was deleted (Clerk never reuses an ID).
type FetchClerkUserResult struct {
	User *clerkevent.User `json:"user,omitempty"`
	Gone bool             `json:"gone,omitempty"`
}

// FetchClerkUser reads the user's full profile from the Clerk Backend API.
// Clerk being down or rate-limiting is retried by Temporal; a 404 is an
// answer, not an error.
func (a *Activities) FetchClerkUser(ctx context.Context, clerkID string) (FetchClerkUserResult, error) {
	if err := clerkevent.ValidateClerkID(clerkID); err != nil {
		return FetchClerkUserResult{}, invalid(fmt.Errorf("fetch clerk user: %w", err))
	}
	if a.Clerk == nil {
		return FetchClerkUserResult{}, errors.New("fetch clerk user: no Clerk API client configured (CLERK_SECRET_KEY)")
	}
	cu, err := a.Clerk.Get(ctx, clerkID)
	var apiErr *clerk.APIErrorResponse
	if errors.As(err, &apiErr) && apiErr.HTTPStatusCode == http.StatusNotFound {
		return FetchClerkUserResult{Gone: true}, nil
	}
	if err != nil {
		return FetchClerkUserResult{}, fmt.Errorf("fetch clerk user %s: %w", clerkID, err)
	}
	u, err := clerkevent.NormalizeUser(cu)
	if err != nil {
		return FetchClerkUserResult{}, invalid(fmt.Errorf("fetch clerk user %s: %w", clerkID, err))
	}
	return FetchClerkUserResult{User: &u}, nil
}
