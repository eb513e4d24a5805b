package clerkapi

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"time"

	"github.com/clerk/clerk-sdk-go/v2"

	"github.com/clerksync/clerksync/internal/clerkevent"
)

// The typed calls: one a Backend API endpoint clerksync reads.

// GetUser reads one user (GET /v1/users/{id}) in one attempt, for an
// activity Temporal retries (the profile fetch): its error is Clerk's,
// for Failure or NotFound to read.
func (c *Client) GetUser(ctx context.Context, id string) (*clerk.User, error) {
	if err := c.wait(ctx); err != nil {
		return nil, err
	}
	cu, err := c.users.Get(ctx, id)
	var apiErr *clerk.APIErrorResponse
	if errors.As(err, &apiErr) && apiErr.HTTPStatusCode == http.StatusTooManyRequests {
		c.pause(retryAfter(apiErr, time.Second))
	}
	return cu, err
}

// FindUser reads one user, retrying until Clerk answers; a 404 (NotFound)
// is an answer.
func (c *Client) FindUser(ctx context.Context, count Counter, beat func(), id string) (*clerk.User, error) {
	var cu *clerk.User
	err := c.retrying(ctx, count, beat, func() (err error) {
		cu, err = c.users.Get(ctx, id)
		return err
	})
	return cu, err
}

// ListUsers reads one page of GET /v1/users with params (limit, offset,
// order_by, created_at_after), keeping each user's raw JSON when keepRaw.
func (c *Client) ListUsers(ctx context.Context, count Counter, beat func(), params map[string]string, keepRaw bool) ([]*clerkevent.ClerkUser, error) {
	var page []*clerkevent.ClerkUser
	err := c.retrying(ctx, count, beat, func() (err error) {
		page, err = c.listUsers(ctx, params, keepRaw)
		return err
	})
	return page, listed("/users", err)
}

// CountUsers asks GET /v1/users/count how many users the instance has
// that params (created_at_after, created_at_before) select.
func (c *Client) CountUsers(ctx context.Context, count Counter, beat func(), params map[string]string) (int, error) {
	var total struct {
		clerk.APIResource
		TotalCount int `json:"total_count"`
	}
	err := c.retrying(ctx, count, beat, func() error { return c.backend.Call(ctx, get("/users/count", params), &total) })
	return total.TotalCount, listed("/users/count", err)
}

// InstanceID asks GET /v1/instance which instance the secret key is of.
func (c *Client) InstanceID(ctx context.Context, count Counter, beat func()) (string, error) {
	var instance struct {
		clerk.APIResource
		ID string `json:"id"`
	}
	err := c.retrying(ctx, count, beat, func() error { return c.backend.Call(ctx, get("/instance", nil), &instance) })
	return instance.ID, listed("/instance", err)
}

// ListOrganizations reads one page of GET /v1/organizations with params;
// ErrOrganizationsDisabled for an instance without organizations.
func (c *Client) ListOrganizations(ctx context.Context, count Counter, beat func(), params map[string]string) ([]*clerk.Organization, error) {
	var page clerk.OrganizationList
	err := c.retrying(ctx, count, beat, func() error {
		page = clerk.OrganizationList{}
		return c.backend.Call(ctx, get("/organizations", params), &page)
	})
	return page.Organizations, listed("/organizations", err)
}

// AnyOrganization asks GET /v1/organizations for a page of one, once:
// whether the instance has an organization to list. An instance without
// the feature answers ErrOrganizationsDisabled; a request Clerk did not
// answer (a 429, a 5xx, a network error) is not made again but returned,
// for a caller that can do without the answer.
func (c *Client) AnyOrganization(ctx context.Context, count Counter) (bool, error) {
	var page clerk.OrganizationList
	_, _, err := c.attempt(ctx, count, func() error {
		return c.backend.Call(ctx, get("/organizations", map[string]string{"limit": "1"}), &page)
	}, 0)
	return len(page.Organizations) > 0, listed("/organizations", err)
}

// GetOrganization reads one organization, retrying until Clerk answers; a
// 404 (NotFound) is an answer.
func (c *Client) GetOrganization(ctx context.Context, count Counter, beat func(), id string) (*clerk.Organization, error) {
	var co clerk.Organization
	err := c.retrying(ctx, count, beat, func() error {
		co = clerk.Organization{}
		return c.backend.Call(ctx, get("/organizations/"+url.PathEscape(id), nil), &co)
	})
	return &co, err
}

// ListMemberships reads one page of an organization's memberships with
// params; a 404 (NotFound) is returned as Clerk's answer.
func (c *Client) ListMemberships(ctx context.Context, count Counter, beat func(), orgID string, params map[string]string) ([]*clerk.OrganizationMembership, error) {
	var page clerk.OrganizationMembershipList
	err := c.retrying(ctx, count, beat, func() error {
		page = clerk.OrganizationMembershipList{}
		return c.backend.Call(ctx, get("/organizations/"+url.PathEscape(orgID)+"/memberships", params), &page)
	})
	return page.OrganizationMemberships, err
}

// query is a query string for clerk.APIRequest (clerk.Params).
type query map[string]string

// ToMultipart implements clerk.Params; a GET has no body.
func (query) ToMultipart() ([]byte, string, error) { return nil, "", nil }

// ToQuery implements clerk.Params.
func (q query) ToQuery() url.Values {
	v := url.Values{}
	for k, val := range q {
		v.Set(k, val)
	}
	return v
}

// get is a GET of path with params as its query.
func get(path string, params map[string]string) *clerk.APIRequest {
	req := clerk.NewAPIRequest(http.MethodGet, path)
	if params != nil {
		req.SetParams(query(params))
	}
	return req
}
