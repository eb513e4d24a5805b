package activities

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/clerk/clerk-sdk-go/v2"
	"go.temporal.io/sdk/activity"

	"github.com/clerksync/clerksync/internal/clerkapi"
	"github.com/clerksync/clerksync/internal/clerkevent"
	"github.com/clerksync/clerksync/internal/store"
)

// OrganizationPageSize is how many organizations, or memberships of one,
// a backfill asks Clerk for at once.
const OrganizationPageSize = 100

// BackfillOrganizationsInput says which run reads from where, and for how
// long.
type BackfillOrganizationsInput struct {
	Run       string `json:"run"`
	Reconcile bool   `json:"reconcile,omitempty"`
	// Offset is how far into Clerk's listing (oldest first) the run is.
	Offset      int           `json:"offset"`
	MaxDuration time.Duration `json:"max_duration"`
}

// BackfillOrganizationsResult is where the listing is now and what this
// call did.
type BackfillOrganizationsResult struct {
	Offset int  `json:"offset"`
	Done   bool `json:"done,omitempty"`
	// Disabled: the Clerk instance has no Organizations feature (Clerk's
	// 403, organization_not_enabled_in_instance); there is nothing to read.
	Disabled bool `json:"disabled,omitempty"`
	// NotKept: clerksync keeps no organizations here (CLERKSYNC_MAPPING
	// maps users alone), so there is nothing to read or reconcile.
	NotKept bool          `json:"not_kept,omitempty"`
	Stats   BackfillStats `json:"stats"`
}

// BackfillOrganizations reads Clerk's organizations (GET /v1/organizations,
// oldest first) from the offset, and for each one its memberships, and
// writes them under the same rules as webhooks: last-writer-wins,
// deletions final, a member without a row given a minimal one. It
// heartbeats the offset past every organization written, so a retry resumes
// there. Organizations are few beside users, so each is written on its own
// rather than by page.
func (a *Activities) BackfillOrganizations(ctx context.Context, in BackfillOrganizationsInput) (BackfillOrganizationsResult, error) {
	if a.Clerk == nil {
		return BackfillOrganizationsResult{}, noClerkKey("backfill organizations")
	}
	res := BackfillOrganizationsResult{Offset: in.Offset}
	if activity.HasHeartbeatDetails(ctx) {
		var hb BackfillOrganizationsResult
		if err := activity.GetHeartbeatDetails(ctx, &hb); err == nil {
			res = hb
		}
	}
	if a.Store.Mapping().OrganizationsOff() {
		res.Done, res.NotKept = true, true
		return res, nil
	}
	beat := func() { activity.RecordHeartbeat(ctx, res) }
	deadline := time.Now().Add(in.MaxDuration)
	for time.Now().Before(deadline) {
		params := map[string]string{"limit": strconv.Itoa(OrganizationPageSize), "offset": strconv.Itoa(res.Offset), "order_by": "+created_at"}
		page, err := a.Clerk.ListOrganizations(ctx, &res.Stats, beat, params)
		if errors.Is(err, clerkapi.ErrOrganizationsDisabled) {
			res.Done, res.Disabled = true, true
			return res, nil
		}
		if err != nil {
			return res, err
		}
		for _, co := range page {
			if err := a.backfillOrganization(ctx, in, co, &res.Stats, beat); err != nil {
				return res, err
			}
			res.Offset++
			beat()
		}
		if len(page) < OrganizationPageSize {
			res.Done = true
			return res, nil
		}
	}
	return res, nil
}

// noOrganizations is BackfillOrganizations' whole answer from its start
// when it would read nothing: organizations not kept here, an instance
// without the feature, or none in Clerk (one request for a page of one).
// nil when there is one to read, or when Clerk did not answer at once:
// the listing asks again in its turn, so the users' listing never waits
// on a failing organization endpoint.
func (a *Activities) noOrganizations(ctx context.Context, stats *BackfillStats) *BackfillOrganizationsResult {
	if a.Store.Mapping().OrganizationsOff() {
		return &BackfillOrganizationsResult{Done: true, NotKept: true}
	}
	ctx, cancel := context.WithTimeout(ctx, organizationsProbeTimeout)
	defer cancel()
	found, err := a.Clerk.AnyOrganization(ctx, stats)
	switch {
	case errors.Is(err, clerkapi.ErrOrganizationsDisabled):
		return &BackfillOrganizationsResult{Done: true, Disabled: true}
	case err != nil, found:
		return nil
	}
	return &BackfillOrganizationsResult{Done: true}
}

// organizationsProbeTimeout bounds noOrganizations' one request: a run's
// start waits on it beside the user count, which takes a request's
// latency.
const organizationsProbeTimeout = 5 * time.Second

// backfillOrganization writes one organization and every membership Clerk
// lists for it, and with Reconcile records them as seen.
func (a *Activities) backfillOrganization(ctx context.Context, in BackfillOrganizationsInput, co *clerk.Organization,
	stats *BackfillStats, beat func()) error {
	o, err := clerkevent.NormalizeOrganization(co)
	if err != nil {
		activity.GetLogger(ctx).Warn("Skipped an organization Clerk listed without the fields clerksync needs", "organization_id", co.ID, "error", err)
		return nil
	}
	written, err := a.Store.UpsertOrganization(ctx, o)
	if err != nil {
		if a.refusedInListing(ctx, err, "organization_id", o.ClerkID, stats) {
			// Still in Clerk: a reconciliation does not take it for gone.
			return a.markSeen(ctx, in, o.ClerkID)
		}
		return a.classify(ctx, err)
	}
	stats.Organizations++
	if written.Outcome == store.Tombstoned {
		return nil // deleted by webhook: its memberships would be refused
	}
	members, _, err := a.listMemberships(ctx, co, stats, beat)
	if errors.Is(err, errOrganizationGone) {
		return nil // deleted meanwhile: its webhook or the next run removes it
	}
	if err != nil {
		return err
	}
	seen := []string{o.ClerkID}
	for _, m := range members {
		seen = append(seen, m.ClerkID)
		if _, err := a.Store.UpsertMembership(ctx, m); err != nil {
			if a.refusedInListing(ctx, err, "membership_id", m.ClerkID, stats) {
				continue
			}
			return a.classify(ctx, err)
		}
		stats.Memberships++
	}
	return a.markSeen(ctx, in, seen...)
}

var errOrganizationGone = errors.New("organization not found in Clerk")

// organizationGone asks Clerk for the organization itself: gone when
// Clerk answers 404.
func (a *Activities) organizationGone(ctx context.Context, id string, stats *BackfillStats, beat func()) (bool, error) {
	_, err := a.Clerk.GetOrganization(ctx, stats, beat, id)
	switch {
	case clerkapi.NotFound(err):
		return true, nil
	case err != nil:
		return false, err
	}
	return false, nil
}

// listMemberships reads every membership Clerk has for the organization,
// page by page: those it can write, and the IDs of all it listed;
// errOrganizationGone when Clerk answers 404.
func (a *Activities) listMemberships(ctx context.Context, co *clerk.Organization, stats *BackfillStats, beat func()) (
	[]clerkevent.Membership, map[string]bool, error) {
	var members []clerkevent.Membership
	listed := map[string]bool{}
	for offset := 0; ; {
		// Paged by offset, so in an order that holds still: Clerk's
		// document states none for this listing without order_by.
		params := map[string]string{"limit": strconv.Itoa(OrganizationPageSize), "offset": strconv.Itoa(offset), "order_by": "+created_at"}
		page, err := a.Clerk.ListMemberships(ctx, stats, beat, co.ID, params)
		if clerkapi.NotFound(err) {
			// Clerk's document gives this listing no 404: whether the
			// organization is gone is for the organization itself to say.
			gone, gerr := a.organizationGone(ctx, co.ID, stats, beat)
			if gerr != nil {
				return nil, nil, gerr
			}
			if gone {
				return nil, nil, errOrganizationGone
			}
		}
		if err != nil {
			return nil, nil, err
		}
		for _, cm := range page {
			listed[cm.ID] = true
			if cm.Organization == nil {
				cm.Organization = co
			}
			m, err := clerkevent.NormalizeMembership(cm)
			if err != nil {
				activity.GetLogger(ctx).Warn("Skipped a membership Clerk listed without the fields clerksync needs", "membership_id", cm.ID, "error", err)
				continue
			}
			members = append(members, m)
		}
		offset += len(page)
		if len(page) < OrganizationPageSize {
			return members, listed, nil
		}
	}
}

// OrganizationsUnseen counts reconciliation's organization candidates.
type OrganizationsUnseen struct {
	Organizations int `json:"organizations"`
	Memberships   int `json:"memberships"`
}

// CountUnseenOrganizations counts the organizations and memberships the
// run did not see, for reconciliation's safety stop.
func (a *Activities) CountUnseenOrganizations(ctx context.Context, in UnseenInput) (OrganizationsUnseen, error) {
	orgs, err := a.Store.UnseenOrganizations(ctx, in.Run, in.StartedAt)
	if err != nil {
		return OrganizationsUnseen{}, err
	}
	members, err := a.Store.UnseenMemberships(ctx, in.Run, in.StartedAt)
	if err != nil {
		return OrganizationsUnseen{}, err
	}
	return OrganizationsUnseen{Organizations: len(orgs), Memberships: len(members)}, nil
}

// refusedInListing reports whether err is the product's schema refusing
// one organization or membership of Clerk's listing (store.Classify: a
// CHECK, a unique index an app's own row holds): it is counted in
// stats.Refused and logged by ID and constraint, and the backfill writes
// the rest, rather than retrying the one row for ever.
func (a *Activities) refusedInListing(ctx context.Context, err error, idKey, id string, stats *BackfillStats) bool {
	if a.Store.Classify(err) == store.Transient {
		return false
	}
	stats.Refused++
	r, _ := store.RefusalOf(err)
	activity.GetLogger(ctx).Warn("PostgreSQL refused a row from Clerk's listing; the rest is written",
		idKey, id, "sqlstate", r.SQLState, "constraint", r.Constraint, "table", r.Table)
	return true
}

// markSeen records ids as seen by a reconciling run.
func (a *Activities) markSeen(ctx context.Context, in BackfillOrganizationsInput, ids ...string) error {
	if !in.Reconcile {
		return nil
	}
	return a.Store.MarkSeen(ctx, in.Run, ids)
}
