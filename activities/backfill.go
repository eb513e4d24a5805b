package activities

import (
	"context"
	"time"

	"go.temporal.io/sdk/activity"
	"golang.org/x/sync/errgroup"

	"github.com/clerksync/clerksync/internal/clerkevent"
	"github.com/clerksync/clerksync/internal/store"
)

// ClerkPageSize is how many users one listing request asks for: Clerk's
// maximum, so a run makes as few requests as it can.
const ClerkPageSize = 500

// BackfillCursor is where a run is in Clerk's listing, ordered by
// created_at (oldest first): the next page starts at CreatedAt (Unix ms),
// after Skip users created in that same millisecond. Users created or
// deleted elsewhere in the listing do not move it, so a user who exists
// throughout is never skipped.
type BackfillCursor struct {
	CreatedAt int64 `json:"created_at"`
	Skip      int   `json:"skip,omitempty"`
	// Done: the listing has been read to its end.
	Done bool `json:"done,omitempty"`
}

// BackfillStats count a run's work so far.
type BackfillStats struct {
	Pages      int `json:"pages"`
	Seen       int `json:"seen"`
	Inserted   int `json:"inserted"`
	Updated    int `json:"updated"`
	Unchanged  int `json:"unchanged"`
	Tombstoned int `json:"tombstoned"`
	Trials     int `json:"trials"`
	// Organizations listed by Clerk and Memberships written from its
	// listings.
	Organizations int `json:"organizations,omitempty"`
	Memberships   int `json:"memberships,omitempty"`
	// Refused: users PostgreSQL refused (see RefusedUser); every other
	// user of their pages was written.
	Refused int `json:"refused,omitempty"`
	// Requests to the Clerk API, RateLimited of them answered 429, Retried
	// after a 5xx or a network error.
	Requests    int `json:"requests"`
	RateLimited int `json:"rate_limited"`
	Retried     int `json:"retried"`
}

// CountRequest counts a Clerk API request: with CountRateLimited and
// CountRetry, s is the clerkapi.Counter of the calls it counts.
func (s *BackfillStats) CountRequest() { s.Requests++ }

// CountRateLimited counts a request Clerk answered 429.
func (s *BackfillStats) CountRateLimited() { s.RateLimited++ }

// CountRetry counts a request retried after a 5xx or a network error.
func (s *BackfillStats) CountRetry() { s.Retried++ }

// Add sums two counts.
func (s BackfillStats) Add(o BackfillStats) BackfillStats {
	return BackfillStats{
		Pages: s.Pages + o.Pages, Seen: s.Seen + o.Seen, Inserted: s.Inserted + o.Inserted, Updated: s.Updated + o.Updated,
		Unchanged: s.Unchanged + o.Unchanged, Tombstoned: s.Tombstoned + o.Tombstoned, Trials: s.Trials + o.Trials,
		Requests: s.Requests + o.Requests, RateLimited: s.RateLimited + o.RateLimited, Retried: s.Retried + o.Retried,
		Organizations: s.Organizations + o.Organizations, Memberships: s.Memberships + o.Memberships,
		Refused: s.Refused + o.Refused,
	}
}

// RefusedUser is a user from Clerk's listing that PostgreSQL refused for
// good (a NUL byte in a name, say): the run writes every other user and
// goes on, as the webhook path records one event as failed.
type RefusedUser struct {
	ClerkID string `json:"clerk_id"`
	// Reason is the database's message, with no user data in it.
	Reason string `json:"reason"`
}

// MaxRefusedListed bounds the refused users a run lists (the progress
// query, its result); BackfillStats.Refused counts them all.
const MaxRefusedListed = 20

// KeepRefused appends more to list, keeping the first MaxRefusedListed.
func KeepRefused(list, more []RefusedUser) []RefusedUser {
	n := min(len(more), MaxRefusedListed-len(list))
	if n <= 0 {
		return list
	}
	return append(list, more[:n]...)
}

// BackfillPagesInput says which run reads from where, and for how long.
type BackfillPagesInput struct {
	// Run names the run (its workflow ID); it records the IDs it sees when
	// Reconcile is set.
	Run       string         `json:"run"`
	Reconcile bool           `json:"reconcile,omitempty"`
	Cursor    BackfillCursor `json:"cursor"`
	// Windows are the listing's windows being read side by side, as the
	// first call of a run split it (BackfillWindows); none while the
	// listing is read in one, from Cursor.
	Windows []BackfillWindow `json:"windows,omitempty"`
	// Listing is what the run's start learned of the listing
	// (ClerkCount.Listing), so that the first call plans its windows
	// without asking again; nil: the call asks.
	Listing *ListingStart `json:"listing,omitempty"`
	// MaxDuration bounds one activity, so the workflow records progress
	// (and can continue as new) between calls.
	MaxDuration time.Duration `json:"max_duration"`
}

// BackfillPagesResult is where the listing is now and what this call did.
type BackfillPagesResult struct {
	// Cursor is where the listing is; read in windows, Done once every
	// window is, and otherwise the first unfinished window's cursor (where
	// a release that reads in one would resume, skipping no user).
	Cursor  BackfillCursor   `json:"cursor"`
	Windows []BackfillWindow `json:"windows,omitempty"`
	Stats   BackfillStats    `json:"stats"`
	// Refused lists the first users PostgreSQL refused (MaxRefusedListed).
	Refused []RefusedUser `json:"refused,omitempty"`
}

// writePage writes a page of users in one transaction. A page PostgreSQL
// refuses for good (one user's data it can never take) is written again a
// user at a time, so every other user lands; each refused one is returned
// with the database's message, and still counts as seen by a
// reconciliation (Clerk has it).
func (a *Activities) writePage(ctx context.Context, run string, users []clerkevent.User) (store.PageResult, []RefusedUser, error) {
	res, err := a.Store.WriteUserPage(ctx, run, users, a.TrialPeriod)
	if a.Store.Classify(err) == store.Transient {
		return res, nil, err
	}
	res = store.PageResult{}
	var refused []RefusedUser
	for _, u := range users {
		r, err := a.Store.WriteUserPage(ctx, run, []clerkevent.User{u}, a.TrialPeriod)
		// A conflict (a legacy row, or another Clerk user, holding this
		// user's email under a unique index) is refused here rather than
		// retried: retrying the page would stall the whole run on one user.
		switch {
		case err != nil && a.Store.Classify(err) != store.Transient:
			refused = append(refused, RefusedUser{ClerkID: u.ClerkID, Reason: store.Redact(err).Error()})
			activity.GetLogger(ctx).Warn("PostgreSQL refused a user from Clerk's listing; the rest of the page is written",
				"clerk_id", u.ClerkID, "error", store.Redact(err))
			if run != "" {
				if err := a.Store.MarkSeen(ctx, run, []string{u.ClerkID}); err != nil {
					return store.PageResult{}, nil, err
				}
			}
		case err != nil:
			return store.PageResult{}, nil, err
		default:
			res = res.Add(r)
		}
	}
	return res, refused, nil
}

// normalize maps a page of Clerk users to what the store writes, skipping
// (and logging) a user without the fields clerksync needs.
func (a *Activities) normalize(ctx context.Context, page []*clerkevent.ClerkUser) []clerkevent.User {
	users := make([]clerkevent.User, 0, len(page))
	for _, cu := range page {
		u, err := a.Store.Mapping().NormalizeUser(cu)
		if err != nil {
			activity.GetLogger(ctx).Warn("Skipped a user Clerk listed without the fields clerksync needs", "clerk_id", cu.ID, "error", err)
			continue
		}
		users = append(users, u)
	}
	return users
}

// ClerkCount is how many users Clerk has, what asking cost, and what the
// run's later phases would otherwise ask first, one request's latency
// each, when the run's start is already waiting on Clerk.
type ClerkCount struct {
	Total int           `json:"total"`
	Stats BackfillStats `json:"stats"`
	// Listing is the listing's extent and pace, from which BackfillPages'
	// first call splits it into windows (BackfillPagesInput.Listing); nil
	// when it is read in one window.
	Listing *ListingStart `json:"listing,omitempty"`
	// NoOrganizations is the organization listing's whole answer when it
	// had nothing to read: Clerk has no organization, or no Organizations
	// feature, or clerksync keeps none here. nil when it has some to read.
	NoOrganizations *BackfillOrganizationsResult `json:"no_organizations,omitempty"`
}

// ListingStart is what the start of a run learned of Clerk's listing from
// its beginning: the total and the newest user's created_at, and the
// first page's created_at and pace (firstPagePace).
type ListingStart struct {
	Total  int   `json:"total"`
	Oldest int64 `json:"oldest"`
	Newest int64 `json:"newest"`
	PaceAt int64 `json:"pace_at,omitempty"`
	PaceN  int   `json:"pace_n,omitempty"`
}

// CountClerkUsers asks Clerk how many users it has, once per run, for the
// progress display. Beside it (the run waits on Clerk's latency anyway),
// it asks what the listing's windows are planned from, when there are
// more than one, and whether there is any organization to list.
func (a *Activities) CountClerkUsers(ctx context.Context) (ClerkCount, error) {
	if a.Clerk == nil {
		return ClerkCount{}, noClerkKey("count clerk users")
	}
	var res ClerkCount
	beat := func() { activity.RecordHeartbeat(ctx) }
	var countStats, orgStats BackfillStats
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() (err error) {
		if a.BackfillWindows <= 1 {
			res.Total, err = a.Clerk.CountUsers(gctx, &countStats, beat, nil)
			return err
		}
		p := &windowPlan{a: a, k: a.BackfillWindows, beat: beat}
		ls, _, err := p.ask(gctx, BackfillCursor{}, &countStats)
		res.Total, res.Listing = ls.Total, &ls
		return err
	})
	g.Go(func() error {
		res.NoOrganizations = a.noOrganizations(gctx, &orgStats)
		return nil
	})
	err := g.Wait()
	res.Stats = countStats.Add(orgStats)
	// Unwrapped: Temporal reads a non-retryable error only at the top.
	return res, err
}
