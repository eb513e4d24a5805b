package activities

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/clerk/clerk-sdk-go/v2"
)

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
