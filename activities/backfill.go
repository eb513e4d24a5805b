package activities

import (
	"context"
	"strconv"
	"sync"
	"time"

	"go.temporal.io/sdk/activity"
	"golang.org/x/sync/errgroup"

	"github.com/clerksync/clerksync/internal/clerkevent"
	"github.com/clerksync/clerksync/internal/mapping"
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
	// MaxDuration bounds one activity, so the workflow records progress
	// (and can continue as new) between calls.
	MaxDuration time.Duration `json:"max_duration"`
}

// BackfillPagesResult is where the listing is now and what this call did.
type BackfillPagesResult struct {
	Cursor BackfillCursor `json:"cursor"`
	Stats  BackfillStats  `json:"stats"`
	// Refused lists the first users PostgreSQL refused (MaxRefusedListed).
	Refused []RefusedUser `json:"refused,omitempty"`
}

// pageWriters is how many pages BackfillPages writes at once, beside the
// one it reads: pages hold disjoint users, and each takes its users' locks
// in one order, so they never wait on each other.
const pageWriters = 2

// BackfillPages reads Clerk's user listing from the cursor, a page at a
// time, and writes each page in one transaction (store.WriteUserPage), for
// up to MaxDuration. Reading goes on while earlier pages are written, by
// pageWriters at once. It heartbeats the cursor past the pages written so
// far (every earlier page included), so a retry after a crash resumes there;
// a page written twice changes nothing.
func (a *Activities) BackfillPages(ctx context.Context, in BackfillPagesInput) (BackfillPagesResult, error) {
	if a.Clerk == nil {
		return BackfillPagesResult{}, noClerkKey("backfill")
	}
	c := &pagesCall{a: a, ctx: ctx, res: BackfillPagesResult{Cursor: in.Cursor}}
	if activity.HasHeartbeatDetails(ctx) {
		var hb BackfillPagesResult
		if err := activity.GetHeartbeatDetails(ctx, &hb); err == nil {
			c.res = hb
		}
	}
	run := ""
	if in.Reconcile {
		run = in.Run
	}
	// The first error (a failed read or write) cancels the rest.
	g, gctx := errgroup.WithContext(ctx)
	pages := make(chan listedPage, pageWriters)
	g.Go(func() error { return c.read(gctx, in.MaxDuration, pages) })
	written := make(chan listedPage)
	var writers sync.WaitGroup
	for range pageWriters {
		writers.Add(1)
		g.Go(func() error {
			defer writers.Done()
			for p := range pages {
				var err error
				if p.result, p.refused, err = a.writePage(gctx, run, a.normalize(gctx, p.users)); err != nil {
					return err
				}
				select {
				case written <- p:
				case <-gctx.Done():
					return gctx.Err()
				}
			}
			return nil
		})
	}
	go func() { writers.Wait(); close(written) }()
	c.foldInOrder(written)
	if err := g.Wait(); err != nil {
		return c.res, a.classify(ctx, err)
	}
	return c.res, nil
}

// listedPage is one page of Clerk's listing on its way through
// BackfillPages: read, then written.
type listedPage struct {
	seq     int
	users   []*clerkevent.ClerkUser
	after   BackfillCursor // the cursor past this page
	stats   BackfillStats  // what reading it cost
	result  store.PageResult
	refused []RefusedUser
}

// pagesCall is one BackfillPages call: its result so far (the cursor past
// every page written), reported by heartbeat after every page and while a
// request waits out a 429 or a backoff, so a long wait is not taken for a
// dead worker.
type pagesCall struct {
	a   *Activities
	ctx context.Context
	mu  sync.Mutex
	res BackfillPagesResult
}

func (c *pagesCall) beat() {
	c.mu.Lock()
	defer c.mu.Unlock()
	activity.RecordHeartbeat(c.ctx, c.res)
}

// read lists pages in listing order, numbered, from the cursor on, for
// maxDuration (at least one page a call, so every call makes progress).
func (c *pagesCall) read(ctx context.Context, maxDuration time.Duration, pages chan<- listedPage) error {
	defer close(pages)
	deadline := time.Now().Add(maxDuration)
	cur := c.res.Cursor
	for seq := 0; !cur.Done; seq++ {
		users, stats, err := c.a.listPage(ctx, cur, c.beat)
		if err != nil {
			return err
		}
		cur = advance(cur, users)
		select {
		case pages <- listedPage{seq: seq, users: users, after: cur, stats: stats}:
		case <-ctx.Done():
			return ctx.Err()
		}
		if time.Now().After(deadline) {
			return nil
		}
	}
	return nil
}

// foldInOrder counts written pages into the result: the cursor moves past
// a page only once every earlier page is written.
func (c *pagesCall) foldInOrder(written <-chan listedPage) {
	done := map[int]listedPage{}
	next := 0
	for p := range written {
		done[p.seq] = p
		c.mu.Lock()
		for q, ok := done[next]; ok; q, ok = done[next] {
			delete(done, next)
			next++
			r := q.result
			c.res.Cursor = q.after
			pageStats := BackfillStats{Pages: 1, Seen: len(q.users), Inserted: r.Inserted, Updated: r.Updated,
				Unchanged: len(q.users) - r.Inserted - r.Updated - r.Tombstoned - len(q.refused), Tombstoned: r.Tombstoned,
				Trials: r.Trials, Refused: len(q.refused)}
			c.a.Metrics.backfilled(pageStats)
			c.res.Stats = c.res.Stats.Add(q.stats).Add(pageStats)
			c.res.Refused = KeepRefused(c.res.Refused, q.refused)
		}
		c.mu.Unlock()
		c.beat()
	}
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

// advance moves the cursor past a page read from c.
func advance(c BackfillCursor, page []*clerkevent.ClerkUser) BackfillCursor {
	if len(page) < ClerkPageSize {
		return BackfillCursor{CreatedAt: c.CreatedAt, Skip: c.Skip + len(page), Done: true}
	}
	last := page[len(page)-1].CreatedAt
	same := 0
	for _, u := range page {
		if u.CreatedAt == last {
			same++
		}
	}
	if last == c.CreatedAt {
		return BackfillCursor{CreatedAt: last, Skip: c.Skip + same}
	}
	return BackfillCursor{CreatedAt: last, Skip: same}
}

// listPage reads one page of Clerk's listing at c, retrying until it gets
// one: a 429 waits for its Retry-After, a 5xx or a network error backs off
// up to 30 s. Only ctx's end (the activity cancelled or timed out, then
// retried by Temporal) stops it. Every request waits for the worker's Clerk
// rate limit.
func (a *Activities) listPage(ctx context.Context, c BackfillCursor, beat func()) ([]*clerkevent.ClerkUser, BackfillStats, error) {
	var stats BackfillStats
	params := map[string]string{
		"limit": strconv.Itoa(ClerkPageSize), "order_by": "+created_at", "offset": strconv.Itoa(c.Skip),
	}
	if c.CreatedAt > 0 {
		params["created_at_after"] = strconv.FormatInt(c.CreatedAt-1, 10) // Clerk's bound is exclusive
	}
	page, err := a.Clerk.ListUsers(ctx, &stats, beat, params, a.Store.Mapping().Uses(mapping.SourceObject))
	return page, stats, err
}

// ClerkCount is how many users Clerk has, and what asking cost.
type ClerkCount struct {
	Total int           `json:"total"`
	Stats BackfillStats `json:"stats"`
}

// CountClerkUsers asks Clerk how many users it has, once per run, for the
// progress display.
func (a *Activities) CountClerkUsers(ctx context.Context) (ClerkCount, error) {
	if a.Clerk == nil {
		return ClerkCount{}, noClerkKey("count clerk users")
	}
	var res ClerkCount
	var err error
	// Unwrapped: Temporal reads a non-retryable error only at the top.
	res.Total, err = a.Clerk.CountUsers(ctx, &res.Stats, func() { activity.RecordHeartbeat(ctx) })
	return res, err
}
