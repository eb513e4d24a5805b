package activities

import (
	"context"
	"errors"
	"time"

	"github.com/clerk/clerk-sdk-go/v2"
	"go.temporal.io/sdk/activity"

	"github.com/clerksync/clerksync/internal/clerkapi"
	"github.com/clerksync/clerksync/internal/clerkevent"
	"github.com/clerksync/clerksync/internal/store"
)

// Reconciliation: after a run's listing, the live local users Clerk did not
// list are confirmed one by one (only a 404 deletes), behind the
// workflow's safety stop.

// UnseenInput names a reconciliation run and where its confirmation is.
type UnseenInput struct {
	Run string `json:"run"`
	// StartedAt: local users created after it are not candidates, since the
	// listing may have passed them by.
	StartedAt time.Time `json:"started_at"`
	// After is the last Clerk ID confirmed, in ID order.
	After string `json:"after,omitempty"`
}

// UnseenCount is how many live local users the run did not see in Clerk's
// listing, beside how many live users there are.
type UnseenCount struct {
	Unseen int `json:"unseen"`
	Local  int `json:"local"`
}

// CountUnseenUsers counts the reconciliation's candidates, for its safety
// stop.
func (a *Activities) CountUnseenUsers(ctx context.Context, in UnseenInput) (UnseenCount, error) {
	unseen, _, err := a.Store.UnseenUsers(ctx, in.Run, in.StartedAt, "", 0)
	if err != nil {
		return UnseenCount{}, err
	}
	local, err := a.Store.CountUsers(ctx)
	if err != nil {
		return UnseenCount{}, err
	}
	return UnseenCount{Unseen: unseen, Local: local}, nil
}

// ConfirmResult is what one ConfirmRemovals call did.
type ConfirmResult struct {
	// After is the last Clerk ID it confirmed; Done when none are left.
	After string `json:"after"`
	Done  bool   `json:"done,omitempty"`
	// Removed: Clerk answered 404, the user is tombstoned and its row
	// removed. Updated: Clerk still has the user (created during the run, or
	// its listing missed it); its data was written. RowsKept: tombstoned,
	// but a product's foreign key holds its row.
	Removed  int           `json:"removed"`
	Updated  int           `json:"updated"`
	RowsKept int           `json:"rows_kept"`
	Stats    BackfillStats `json:"stats"`
}

// confirmBatch is how many candidates one ConfirmRemovals call confirms.
const confirmBatch = 100

// ConfirmRemovals asks Clerk, one user at a time, about the next candidates
// after in.After: only a 404 confirmed this way deletes and tombstones a
// user, as a signed user.deleted would.
func (a *Activities) ConfirmRemovals(ctx context.Context, in UnseenInput) (ConfirmResult, error) {
	if a.Clerk == nil {
		return ConfirmResult{}, noClerkKey("reconcile")
	}
	_, ids, err := a.Store.UnseenUsers(ctx, in.Run, in.StartedAt, in.After, confirmBatch)
	if err != nil {
		return ConfirmResult{}, err
	}
	res := ConfirmResult{After: in.After, Done: len(ids) < confirmBatch}
	for _, id := range ids {
		cu, err := a.Clerk.FindUser(ctx, &res.Stats, func() { activity.RecordHeartbeat(ctx, res.After) }, id)
		switch {
		case clerkapi.NotFound(err):
			if err := deleteConfirmed(
				func() error { return a.Store.TombstoneUser(ctx, id, time.Now()) },
				func() (bool, error) { return a.Store.RemoveUserRow(ctx, id) },
				&res.Removed, &res.RowsKept); err != nil {
				return res, err
			}
		case err != nil:
			return res, err
		default:
			var u clerkevent.User
			full, err := clerkevent.FromSDK(cu)
			if err == nil {
				u, err = a.Store.Mapping().NormalizeUser(full)
			}
			if err != nil {
				activity.GetLogger(ctx).Warn("Skipped a user Clerk returned without the fields clerksync needs", "clerk_id", id, "error", err)
				break
			}
			up, err := a.Store.UpsertUser(ctx, u, a.TrialPeriod)
			if err != nil && a.Store.Classify(err) != store.Transient {
				// Still in Clerk, so not removed; PostgreSQL refuses its data,
				// as its listing page already found.
				res.Stats.Refused++
				break
			}
			if err != nil {
				return res, a.classify(ctx, err)
			}
			if up.Outcome == store.Inserted || up.Outcome == store.Updated {
				res.Updated++
			}
		}
		res.After = id
		activity.RecordHeartbeat(ctx, res.After)
	}
	return res, nil
}

// deleteConfirmed deletes what Clerk confirmed gone (a 404), as its signed
// deletion webhook would: the tombstone, then the row. It counts the row as
// removed, or as kept when a product's foreign key holds it.
func deleteConfirmed(tombstone func() error, remove func() (bool, error), removed, kept *int) error {
	if err := tombstone(); err != nil {
		return err // the bookkeeping's: retried (Store.Classify)
	}
	r, err := rowRemoval(remove())
	switch {
	case err != nil:
		return err
	case r.RowKept != "":
		*kept++
	default:
		*removed++
	}
	return nil
}

// ForgetRun drops what a run recorded as seen, once it has ended.
func (a *Activities) ForgetRun(ctx context.Context, run string) error {
	return a.Store.ForgetRun(ctx, run)
}

// ReconcileOrganizationsResult is what reconciling organizations did.
type ReconcileOrganizationsResult struct {
	// RemovedOrganizations: Clerk answered 404, the organization is
	// tombstoned and removed with its memberships. RemovedMemberships: a
	// second listing of the organization still lacked them.
	// Restored: still in Clerk after all; written.
	RemovedOrganizations int `json:"removed_organizations"`
	// RowsKept: tombstoned, but a product's foreign key holds the row.
	RowsKept           int           `json:"rows_kept,omitempty"`
	RemovedMemberships int           `json:"removed_memberships"`
	Restored           int           `json:"restored"`
	Stats              BackfillStats `json:"stats"`
}

// ReconcileOrganizations confirms each organization the run did not see
// with Clerk (GET /v1/organizations/{id}: only a 404 deletes it, as a
// signed organization.deleted would), and each membership missing from its
// organization's listing with a second listing of that organization: one
// missing from both is deleted.
func (a *Activities) ReconcileOrganizations(ctx context.Context, in UnseenInput) (ReconcileOrganizationsResult, error) {
	if a.Clerk == nil {
		return ReconcileOrganizationsResult{}, noClerkKey("reconcile organizations")
	}
	var res ReconcileOrganizationsResult
	beat := func() { activity.RecordHeartbeat(ctx) }
	orgs, err := a.Store.UnseenOrganizations(ctx, in.Run, in.StartedAt)
	if err != nil {
		return res, err
	}
	for _, id := range orgs {
		co, err := a.Clerk.GetOrganization(ctx, &res.Stats, beat, id)
		switch {
		case clerkapi.NotFound(err):
			if err := deleteConfirmed(
				func() error { return a.Store.TombstoneOrganization(ctx, id, time.Now()) },
				func() (bool, error) { return a.Store.RemoveOrganizationRow(ctx, id) },
				&res.RemovedOrganizations, &res.RowsKept); err != nil {
				return res, err
			}
		case err != nil:
			return res, err
		default:
			o, err := clerkevent.NormalizeOrganization(co)
			if err != nil {
				continue
			}
			if _, err := a.Store.UpsertOrganization(ctx, o); err != nil {
				return res, a.classify(ctx, err)
			}
			res.Restored++
		}
		beat()
	}
	err = a.reconcileMemberships(ctx, in, &res, beat)
	return res, err
}

// reconcileMemberships confirms each membership the run did not see, of
// an organization it saw, with a second listing of that organization.
func (a *Activities) reconcileMemberships(ctx context.Context, in UnseenInput, res *ReconcileOrganizationsResult, beat func()) error {
	unseen, err := a.Store.UnseenMemberships(ctx, in.Run, in.StartedAt)
	if err != nil {
		return err
	}
	type listing struct {
		members map[string]clerkevent.Membership
		ids     map[string]bool
	}
	listings := map[string]listing{} // organization -> its memberships now
	for _, u := range unseen {
		now, ok := listings[u.OrganizationID]
		if !ok {
			members, ids, err := a.listMemberships(ctx, &clerk.Organization{ID: u.OrganizationID}, &res.Stats, beat)
			if err != nil && !errors.Is(err, errOrganizationGone) {
				return err
			}
			now = listing{members: map[string]clerkevent.Membership{}, ids: ids}
			for _, m := range members {
				now.members[m.ClerkID] = m
			}
			listings[u.OrganizationID] = now
		}
		if now.ids[u.ClerkID] {
			if m, ok := now.members[u.ClerkID]; ok {
				if _, err := a.Store.UpsertMembership(ctx, m); err != nil {
					return a.classify(ctx, err)
				}
			}
			res.Restored++
			continue
		}
		gone := clerkevent.Membership{ClerkID: u.ClerkID, UserID: u.UserID, Organization: clerkevent.Organization{ClerkID: u.OrganizationID}}
		r, err := rowRemoval(a.Store.DeleteMembership(ctx, gone, time.Now()))
		switch {
		case err != nil:
			return a.classify(ctx, err)
		case r.RowKept != "":
			res.RowsKept++
		default:
			res.RemovedMemberships++
		}
		beat()
	}
	return nil
}
