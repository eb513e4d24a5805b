// Package clerkwebhook builds and signs Clerk webhooks the way Clerk and Svix
// send them: `starter send` uses it to exercise a running service, and tests
// use it to drive the real handler. Bodies are built from clerk-sdk-go's types
// so they keep Clerk's JSON shape.
package clerkwebhook

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/clerk/clerk-sdk-go/v2"
	svix "github.com/svix/svix-webhooks/go"
)

// UserFields is what a test or an operator chooses about a user.
type UserFields struct {
	ClerkID   string
	Email     string // "" for a user without email addresses
	FirstName string // "" sends null, as Clerk does
	LastName  string
	Username  string
	ImageURL  string
	CreatedAt time.Time
	UpdatedAt time.Time // the version
	// PublicMetadata, PrivateMetadata and UnsafeMetadata are the user's
	// metadata objects; {} when empty.
	PublicMetadata, PrivateMetadata, UnsafeMetadata json.RawMessage
	ExternalID                                      string // "" sends null
}

// UserEvent returns the body of a user.created or user.updated webhook.
func UserEvent(eventType string, f UserFields) ([]byte, error) {
	u := clerk.User{
		Object:           "user",
		ID:               f.ClerkID,
		FirstName:        optional(f.FirstName),
		LastName:         optional(f.LastName),
		Username:         optional(f.Username),
		ImageURL:         optional(f.ImageURL),
		EmailAddresses:   []*clerk.EmailAddress{},
		PhoneNumbers:     []*clerk.PhoneNumber{},
		Web3Wallets:      []*clerk.Web3Wallet{},
		ExternalAccounts: []*clerk.ExternalAccount{},
		PublicMetadata:   json.RawMessage(`{}`),
		PrivateMetadata:  json.RawMessage(`{}`),
		UnsafeMetadata:   json.RawMessage(`{}`),
		CreatedAt:        f.CreatedAt.UnixMilli(),
		UpdatedAt:        f.UpdatedAt.UnixMilli(),
	}
	if len(f.PublicMetadata) > 0 {
		u.PublicMetadata = f.PublicMetadata
	}
	if len(f.PrivateMetadata) > 0 {
		u.PrivateMetadata = f.PrivateMetadata
	}
	if len(f.UnsafeMetadata) > 0 {
		u.UnsafeMetadata = f.UnsafeMetadata
	}
	u.ExternalID = optional(f.ExternalID)
	if f.Email != "" {
		emailID := "idn_" + strings.TrimPrefix(f.ClerkID, "user_")
		u.EmailAddresses = []*clerk.EmailAddress{{ID: emailID, Object: "email_address", EmailAddress: f.Email}}
		u.PrimaryEmailAddressID = &emailID
	}
	return envelope(eventType, u, f.UpdatedAt)
}

// DeletedEvent returns the body of a user.deleted webhook: Clerk sends only
// the ID, the object and the deleted flag.
func DeletedEvent(clerkID string, at time.Time) ([]byte, error) {
	return envelope("user.deleted", clerk.DeletedResource{ID: clerkID, Object: "user", Deleted: true}, at)
}

func envelope(eventType string, data any, at time.Time) ([]byte, error) {
	body, err := json.Marshal(map[string]any{
		"data":      data,
		"object":    "event",
		"type":      eventType,
		"timestamp": at.UnixMilli(),
	})
	if err != nil {
		return nil, fmt.Errorf("encode %s event: %w", eventType, err)
	}
	return body, nil
}

// Sign returns the headers Svix sends with body: svix-id, svix-timestamp and
// svix-signature, signed with a whsec_ secret.
func Sign(secret, msgID string, at time.Time, body []byte) (http.Header, error) {
	wh, err := svix.NewWebhook(secret)
	if err != nil {
		return nil, fmt.Errorf("webhook secret: %w", err)
	}
	sig, err := wh.Sign(msgID, at, body)
	if err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	h := http.Header{}
	h.Set("svix-id", msgID)
	h.Set("svix-timestamp", strconv.FormatInt(at.Unix(), 10))
	h.Set("svix-signature", sig)
	h.Set("Content-Type", "application/json")
	return h, nil
}

func optional(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// OrganizationFields are what a test or `starter send` sets about an
// organization.
type OrganizationFields struct {
	ClerkID   string // org_...
	Name      string
	Slug      string
	CreatedAt time.Time
	UpdatedAt time.Time // the version
	// PublicMetadata is the organization's public_metadata; {} when empty.
	PublicMetadata json.RawMessage
}

func (f OrganizationFields) organization() *clerk.Organization {
	public := f.PublicMetadata
	if len(public) == 0 {
		public = json.RawMessage(`{}`)
	}
	return &clerk.Organization{
		Object: "organization", ID: f.ClerkID, Name: f.Name, Slug: f.Slug,
		PublicMetadata: public, PrivateMetadata: json.RawMessage(`{}`),
		CreatedAt: f.CreatedAt.UnixMilli(), UpdatedAt: f.UpdatedAt.UnixMilli(),
	}
}

// OrganizationEvent returns the body of an organization.created or
// organization.updated webhook.
func OrganizationEvent(eventType string, f OrganizationFields) ([]byte, error) {
	return envelope(eventType, f.organization(), f.UpdatedAt)
}

// OrganizationDeletedEvent returns the body of an organization.deleted
// webhook: Clerk sends the ID, the slug and the deleted flag.
func OrganizationDeletedEvent(orgID, slug string, at time.Time) ([]byte, error) {
	return envelope("organization.deleted", map[string]any{"object": "organization", "id": orgID, "slug": slug, "deleted": true}, at)
}

// MembershipFields are what a test or `starter send` sets about a
// membership.
type MembershipFields struct {
	ClerkID      string // orgmem_...
	UserID       string // the member, user_...
	Role         string // org:admin, org:member
	Organization OrganizationFields
	CreatedAt    time.Time
	UpdatedAt    time.Time // the version
	// Permissions are the role's; none when empty.
	Permissions []string
}

// MembershipEvent returns the body of an organizationMembership.created,
// .updated or .deleted webhook: each carries the whole membership, the
// organization embedded and the user in public_user_data.
func MembershipEvent(eventType string, f MembershipFields) ([]byte, error) {
	m := &clerk.OrganizationMembership{
		Object: "organization_membership", ID: f.ClerkID, Role: f.Role, RoleName: f.Role,
		Permissions: append([]string{}, f.Permissions...), PublicMetadata: json.RawMessage(`{}`), PrivateMetadata: json.RawMessage(`{}`),
		Organization:   f.Organization.organization(),
		PublicUserData: &clerk.OrganizationMembershipPublicUserData{UserID: f.UserID, Identifier: f.UserID},
		CreatedAt:      f.CreatedAt.UnixMilli(), UpdatedAt: f.UpdatedAt.UnixMilli(),
	}
	return envelope(eventType, m, f.UpdatedAt)
}
