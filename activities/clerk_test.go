package activities_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"

	"github.com/clerksync/clerksync/activities"
	"github.com/clerksync/clerksync/internal/clerkapi"
	"github.com/clerksync/clerksync/internal/config"
	"github.com/clerksync/clerksync/internal/testsupport/clerkfake"
)

// fetcher returns the activities with a real clerk-sdk-go client of the fake
// Clerk, holding secretKey.
func fetcher(t *testing.T, fake *clerkfake.Server, secretKey string) *activities.Activities {
	t.Helper()
	cfg := config.Config{ClerkAPIURL: fake.URL(), ClerkSecretKey: secretKey}
	return &activities.Activities{Clerk: clerkapi.New(cfg.ClerkClient(), 0)}
}

// TestFetchClerkUser_Answers: what each Clerk answer becomes. A 404 is an
// answer (not a deletion); a missing or refused key fails for good, since
// retrying cannot fix configuration; a Clerk outage is retried.
func TestFetchClerkUser_Answers(t *testing.T) {
	t.Parallel()
	fake := clerkfake.Start(t)
	now := time.Now().Truncate(time.Millisecond)
	fake.PutUser(clerkfake.User{ID: "user_known", Email: "k@example.com", CreatedAt: now, UpdatedAt: now})
	ctx := context.Background()

	res, err := fetcher(t, fake, clerkfake.SecretKey).FetchClerkUser(ctx, "user_known")
	require.NoError(t, err)
	require.Equal(t, "k@example.com", *res.User.Email)

	res, err = fetcher(t, fake, clerkfake.SecretKey).FetchClerkUser(ctx, "user_unknown")
	require.NoError(t, err)
	require.Equal(t, activities.FetchClerkUserResult{NotFound: true}, res)

	misconfigured := func(err error) {
		t.Helper()
		var appErr *temporal.ApplicationError
		require.True(t, errors.As(err, &appErr), "got %v", err)
		require.Equal(t, activities.ErrTypeClerkMisconfigured, appErr.Type())
		require.True(t, appErr.NonRetryable())
	}
	_, err = fetcher(t, fake, "sk_test_of_another_instance").FetchClerkUser(ctx, "user_known")
	misconfigured(err) // 401
	_, err = (&activities.Activities{}).FetchClerkUser(ctx, "user_known")
	misconfigured(err) // no CLERK_SECRET_KEY
	fake.FailWith(http.StatusForbidden)
	_, err = fetcher(t, fake, clerkfake.SecretKey).FetchClerkUser(ctx, "user_known")
	misconfigured(err)

	fake.FailWith(http.StatusInternalServerError)
	_, err = fetcher(t, fake, clerkfake.SecretKey).FetchClerkUser(ctx, "user_known")
	require.Error(t, err)
	var appErr *temporal.ApplicationError
	require.False(t, errors.As(err, &appErr) && appErr.NonRetryable(), "a Clerk outage is retried: %v", err)
}

// TestFetchClerkUser_RateLimitedWaitsForRetryAfter: Clerk's 429 is retried
// by Temporal after the Retry-After Clerk sent, not on the activity's
// backoff alone.
func TestFetchClerkUser_RateLimitedWaitsForRetryAfter(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Retry-After", "7")
		w.WriteHeader(http.StatusTooManyRequests)
		_, _ = w.Write([]byte(`{"errors":[{"message":"Too many requests","long_message":"Too many requests, please try again later.","code":"too_many_requests"}]}`))
	}))
	defer srv.Close()
	cfg := config.Config{ClerkAPIURL: srv.URL + "/v1", ClerkSecretKey: clerkfake.SecretKey}
	_, err := (&activities.Activities{Clerk: clerkapi.New(cfg.ClerkClient(), 0)}).FetchClerkUser(context.Background(), "user_limited")
	var appErr *temporal.ApplicationError
	require.True(t, errors.As(err, &appErr), "got %v", err)
	require.Equal(t, activities.ErrTypeClerkRateLimited, appErr.Type())
	require.False(t, appErr.NonRetryable())
	require.Equal(t, 7*time.Second, appErr.NextRetryDelay())
}
