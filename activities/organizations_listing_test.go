package activities

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/clerk/clerk-sdk-go/v2"
	"github.com/stretchr/testify/require"

	"github.com/clerksync/clerksync/internal/clerkapi"
	"github.com/clerksync/clerksync/internal/config"
)

// TestListMemberships_ADeletedOrganizationIsTheOrganizationsOwn404: Clerk's
// document gives an organization's membership listing no 404, so a 404
// there means the organization is gone only when the organization itself
// answers 404; when it is still there, the listing's answer is an error to
// retry, not a reason to skip its members.
func TestListMemberships_ADeletedOrganizationIsTheOrganizationsOwn404(t *testing.T) {
	t.Parallel()
	notFoundBody := `{"errors":[{"message":"not found","long_message":"Resource not found","code":"resource_not_found"}]}`
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/v1/organizations/org_here":
			_, _ = w.Write([]byte(`{"object":"organization","id":"org_here","name":"Here","slug":"here","created_at":1,"updated_at":1}`))
		default: // both listings, and the gone organization
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte(notFoundBody))
		}
	}))
	t.Cleanup(srv.Close)
	cfg := config.Config{ClerkAPIURL: srv.URL + "/v1", ClerkSecretKey: "sk_test_any"}
	a := &Activities{Clerk: clerkapi.New(cfg.ClerkClient(), 0)}
	ctx := context.Background()

	_, _, err := a.listMemberships(ctx, &clerk.Organization{ID: "org_gone"}, &BackfillStats{}, func() {})
	require.ErrorIs(t, err, errOrganizationGone)
	_, _, err = a.listMemberships(ctx, &clerk.Organization{ID: "org_here"}, &BackfillStats{}, func() {})
	require.Error(t, err)
	require.NotErrorIs(t, err, errOrganizationGone, "the organization answers: its members are not skipped")
}
