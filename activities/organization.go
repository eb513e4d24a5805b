package activities

import (
	"context"
	"fmt"
	"time"

	"github.com/clerksync/clerksync/ensure/contract"
	"github.com/clerksync/clerksync/internal/clerkevent"
)

// OrganizationWriteResult is what an organization or membership write did.
type OrganizationWriteResult struct {
	Outcome WriteOutcome `json:"outcome"`
	// Refused names the deletion that refused a membership: the
	// membership's own, its organization's or its user's.
	Refused contract.Entity `json:"refused,omitempty"`
	// RowKept: the write met a tombstone beside a row still there, whose
	// removal a product's foreign key refused (the database's message);
	// Kept names whose row (the membership's, the organization's or the
	// user's). A row that could be removed is gone and leaves both empty.
	RowKept string          `json:"row_kept,omitempty"`
	Kept    contract.Entity `json:"kept,omitempty"`
}

// DeleteOrganizationInput names the organization and when Clerk deleted it.
type DeleteOrganizationInput struct {
	ClerkID   string    `json:"clerk_id"`
	DeletedAt time.Time `json:"deleted_at"`
}

// DeleteMembershipInput is the deleted membership and when.
type DeleteMembershipInput struct {
	Membership clerkevent.Membership `json:"membership"`
	DeletedAt  time.Time             `json:"deleted_at"`
}

// UpsertOrganization writes the organization under last-writer-wins unless
// it was deleted.
func (a *Activities) UpsertOrganization(ctx context.Context, o clerkevent.Organization) (OrganizationWriteResult, error) {
	if o.ClerkID == "" || o.ClerkUpdatedAt.IsZero() {
		return OrganizationWriteResult{}, a.Metrics.failed("upsert_organization",
			invalid(fmt.Errorf("upsert organization %q: no ID or no updated_at to order it by", o.ClerkID)))
	}
	res, err := a.Store.UpsertOrganization(ctx, o)
	if err != nil {
		return OrganizationWriteResult{}, a.Metrics.failed("upsert_organization", a.classify(ctx, err))
	}
	return OrganizationWriteResult{Outcome: WriteOutcome(res.Outcome), RowKept: res.RowKept, Kept: res.Kept}, nil
}

// DeleteOrganization tombstones the organization, then removes its row
// with its memberships. A removal the database refuses (a product's foreign
// key without ON DELETE CASCADE) is reported as RowKept, as for users, and
// RemoveDeletedOrganization retries it.
func (a *Activities) DeleteOrganization(ctx context.Context, in DeleteOrganizationInput) (RemovalResult, error) {
	if err := a.Store.TombstoneOrganization(ctx, in.ClerkID, in.DeletedAt); err != nil {
		return RemovalResult{}, a.Metrics.failed("delete_organization", a.classify(ctx, err))
	}
	return rowRemoval(a.Store.RemoveOrganizationRow(ctx, in.ClerkID))
}

// RemoveDeletedOrganization removes a tombstoned organization's row,
// retrying every failure until the product lets it go.
func (a *Activities) RemoveDeletedOrganization(ctx context.Context, clerkID string) (RemovalResult, error) {
	removed, err := a.Store.RemoveOrganizationRow(ctx, clerkID)
	if err != nil {
		return RemovalResult{}, err
	}
	return RemovalResult{Removed: removed}, nil
}

// UpsertMembership writes a membership, its organization's embedded data
// and a minimal row for a member without one, unless the membership, the
// organization or the user was deleted.
func (a *Activities) UpsertMembership(ctx context.Context, m clerkevent.Membership) (OrganizationWriteResult, error) {
	if m.ClerkID == "" || m.ClerkUpdatedAt.IsZero() {
		return OrganizationWriteResult{}, a.Metrics.failed("upsert_membership",
			invalid(fmt.Errorf("upsert membership %q: no ID or no updated_at to order it by", m.ClerkID)))
	}
	res, err := a.Store.UpsertMembership(ctx, m)
	if err != nil {
		return OrganizationWriteResult{}, a.Metrics.failed("upsert_membership", a.classify(ctx, err))
	}
	return OrganizationWriteResult{Outcome: WriteOutcome(res.Outcome), Refused: res.Refused, RowKept: res.RowKept, Kept: res.Kept}, nil
}

// DeleteMembership tombstones the membership and removes its row; a
// removal a product's foreign key refuses is reported as RowKept, and
// RemoveDeletedMembership retries it.
func (a *Activities) DeleteMembership(ctx context.Context, in DeleteMembershipInput) (RemovalResult, error) {
	res, err := rowRemoval(a.Store.DeleteMembership(ctx, in.Membership, in.DeletedAt))
	if err != nil {
		return res, a.Metrics.failed("delete_membership", a.classify(ctx, err))
	}
	return res, nil
}

// RemoveDeletedMembership removes a tombstoned membership's row, retrying
// every failure until the product lets it go.
func (a *Activities) RemoveDeletedMembership(ctx context.Context, in DeleteMembershipInput) (RemovalResult, error) {
	removed, err := a.Store.RemoveMembershipRow(ctx, in.Membership)
	if err != nil {
		return RemovalResult{}, err
	}
	return RemovalResult{Removed: removed}, nil
}

// WriteHeldMembership writes a membership whose write found the row of
// the membership it replaces kept by a product's foreign key (Held),
// failing while the row is still kept so that Temporal retries it until the
// product lets that row go.
func (a *Activities) WriteHeldMembership(ctx context.Context, m clerkevent.Membership) (OrganizationWriteResult, error) {
	res, err := a.UpsertMembership(ctx, m)
	if err == nil && res.Outcome == Held {
		return res, fmt.Errorf("membership %s: %s", m.ClerkID, res.RowKept)
	}
	return res, err
}
