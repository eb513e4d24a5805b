package clerkevent

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/clerk/clerk-sdk-go/v2"
)

// The organization event types clerksync applies.
const (
	OrganizationCreated Type = "organization.created"
	OrganizationUpdated Type = "organization.updated"
	OrganizationDeleted Type = "organization.deleted"
	MembershipCreated   Type = "organizationMembership.created"
	MembershipUpdated   Type = "organizationMembership.updated"
	MembershipDeleted   Type = "organizationMembership.deleted"
)

// Organization is the slice of a Clerk organization that clerksync stores.
type Organization struct {
	ClerkID  string  `json:"clerk_id"`
	Name     *string `json:"name,omitempty"`
	Slug     *string `json:"slug,omitempty"`
	ImageURL *string `json:"image_url,omitempty"`
	// ClerkCreatedAt and ClerkUpdatedAt are Clerk's; ClerkUpdatedAt orders
	// an organization's versions, as a user's.
	ClerkCreatedAt time.Time `json:"clerk_created_at,omitzero"`
	ClerkUpdatedAt time.Time `json:"clerk_updated_at"`
	// PublicMetadata and PrivateMetadata are Clerk's objects, compact, nil
	// for none; kept only where a mapping writes them (see
	// mapping.Mapping.TrimOrganization).
	PublicMetadata  json.RawMessage `json:"public_metadata,omitempty"`
	PrivateMetadata json.RawMessage `json:"private_metadata,omitempty"`
}

// ContentHash breaks ties between two versions with the same
// ClerkUpdatedAt, as User.ContentHash does. Metadata counts only where it
// is set, so an organization without it hashes as before it was kept.
func (o Organization) ContentHash() string {
	fields := []*string{o.Name, o.Slug, o.ImageURL}
	if len(o.PublicMetadata) > 0 || len(o.PrivateMetadata) > 0 {
		fields = append(fields, rawText(o.PublicMetadata), rawText(o.PrivateMetadata))
	}
	return contentHash(fields, o.ClerkCreatedAt)
}

// Membership is one user's membership of one organization: Clerk's
// organization_membership, with the organization embedded (as every
// membership event carries it) and the user by ID.
type Membership struct {
	ClerkID string `json:"clerk_id"`
	// UserID is the member's Clerk user ID (public_user_data.user_id).
	UserID string `json:"user_id"`
	Role   string `json:"role"`
	// Organization is the organization as the event saw it: data like any
	// other, written under last-writer-wins, so a membership that arrives
	// before organization.created still lands.
	Organization   Organization `json:"organization"`
	ClerkCreatedAt time.Time    `json:"clerk_created_at,omitzero"`
	ClerkUpdatedAt time.Time    `json:"clerk_updated_at"`
	// Permissions (org:sys_memberships:read, ...) and PublicMetadata are
	// Clerk's, kept only where a mapping writes them. Role alone breaks
	// ties between equal versions: Clerk derives permissions from it.
	Permissions    []string        `json:"permissions,omitempty"`
	PublicMetadata json.RawMessage `json:"public_metadata,omitempty"`
}

// NormalizeOrganization maps a clerk.Organization (from a webhook or the
// Backend API) to the stored shape.
func NormalizeOrganization(co *clerk.Organization) (Organization, error) {
	if err := validateID(co.ID, "org_"); err != nil {
		return Organization{}, err
	}
	if co.UpdatedAt <= 0 {
		return Organization{}, errors.New("updated_at is missing: versions cannot be ordered without it")
	}
	o := Organization{
		ClerkID:        co.ID,
		Name:           nonEmpty(&co.Name),
		Slug:           nonEmpty(&co.Slug),
		ImageURL:       nonEmpty(co.ImageURL),
		ClerkUpdatedAt: time.UnixMilli(co.UpdatedAt).UTC(),
	}
	if co.CreatedAt > 0 {
		o.ClerkCreatedAt = time.UnixMilli(co.CreatedAt).UTC()
	}
	var err error
	if o.PublicMetadata, err = compactObject(co.PublicMetadata); err != nil {
		return Organization{}, fmt.Errorf("public_metadata: %w", err)
	}
	if o.PrivateMetadata, err = compactObject(co.PrivateMetadata); err != nil {
		return Organization{}, fmt.Errorf("private_metadata: %w", err)
	}
	return o, nil
}

// NormalizeMembership maps a clerk.OrganizationMembership to the stored
// shape; it needs the embedded organization and public_user_data.user_id.
func NormalizeMembership(cm *clerk.OrganizationMembership) (Membership, error) {
	return normalizeMembership(cm, false)
}

// normalizeMembership is NormalizeMembership; withoutMember lets
// public_user_data be left out (UserID ""), which Clerk's webhook document
// allows: a deletion is applied by the membership's own ID.
func normalizeMembership(cm *clerk.OrganizationMembership, withoutMember bool) (Membership, error) {
	if err := validateID(cm.ID, "orgmem_"); err != nil {
		return Membership{}, err
	}
	if cm.UpdatedAt <= 0 {
		return Membership{}, errors.New("updated_at is missing: versions cannot be ordered without it")
	}
	if cm.Organization == nil {
		return Membership{}, errors.New("organization is missing")
	}
	org, err := NormalizeOrganization(cm.Organization)
	if err != nil {
		return Membership{}, fmt.Errorf("organization: %w", err)
	}
	var userID string
	switch {
	case cm.PublicUserData != nil && cm.PublicUserData.UserID != "":
		if err := ValidateClerkID(cm.PublicUserData.UserID); err != nil {
			return Membership{}, fmt.Errorf("public_user_data.user_id: %w", err)
		}
		userID = cm.PublicUserData.UserID
	case !withoutMember:
		return Membership{}, errors.New("public_user_data.user_id is missing")
	}
	if cm.Role == "" {
		return Membership{}, errors.New("role is missing")
	}
	m := Membership{
		ClerkID:        cm.ID,
		UserID:         userID,
		Role:           cm.Role,
		Organization:   org,
		ClerkUpdatedAt: time.UnixMilli(cm.UpdatedAt).UTC(),
	}
	if cm.CreatedAt > 0 {
		m.ClerkCreatedAt = time.UnixMilli(cm.CreatedAt).UTC()
	}
	if len(cm.Permissions) > 0 {
		m.Permissions = slices.Clone(cm.Permissions)
	}
	if m.PublicMetadata, err = compactObject(cm.PublicMetadata); err != nil {
		return Membership{}, fmt.Errorf("public_metadata: %w", err)
	}
	return m, nil
}

// parseOrganizationEvent fills ev from an organization or membership
// event's data.
func parseOrganizationEvent(ev *Event, data json.RawMessage) error {
	switch ev.Type {
	case OrganizationCreated, OrganizationUpdated:
		var co clerk.Organization
		if err := unmarshalData(data, &co); err != nil {
			return err
		}
		o, err := NormalizeOrganization(&co)
		if err != nil {
			return err
		}
		ev.OrganizationID, ev.Organization = o.ClerkID, &o
	case OrganizationDeleted:
		var d deletedUser // {"id", "deleted"}: the same shape
		if err := unmarshalData(data, &d); err != nil {
			return err
		}
		if err := validateID(d.ID, "org_"); err != nil {
			return err
		}
		ev.OrganizationID = d.ID
	case MembershipCreated, MembershipUpdated, MembershipDeleted:
		// Every membership event, the deleted one included, carries the
		// whole membership.
		var cm clerk.OrganizationMembership
		if err := unmarshalData(data, &cm); err != nil {
			return err
		}
		// A deletion needs no member: its row goes by the membership's ID.
		m, err := normalizeMembership(&cm, ev.Type == MembershipDeleted)
		if err != nil {
			return err
		}
		ev.OrganizationID, ev.ClerkID, ev.Membership = m.Organization.ClerkID, m.UserID, &m
	}
	return nil
}

// validateID is ValidateClerkID plus Clerk's prefix for the kind of ID.
func validateID(id, prefix string) error {
	if err := ValidateClerkID(id); err != nil {
		return err
	}
	if !strings.HasPrefix(id, prefix) {
		return fmt.Errorf("id %q is not a Clerk %s... ID", id, prefix)
	}
	return nil
}
