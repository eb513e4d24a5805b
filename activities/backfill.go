package activities

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/clerk/clerk-sdk-go/v2"
	"go.temporal.io/sdk/activity"

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
	if a.ClerkBackend == nil {
		return BackfillPagesResult{}, noClerkKey("backfill")
	}
	res := BackfillPagesResult{Cursor: in.Cursor}
	if activity.HasHeartbeatDetails(ctx) {
		var hb BackfillPagesResult
		if err := activity.GetHeartbeatDetails(ctx, &hb); err == nil {
			res = hb
		}
	}
	run := ""
	if in.Reconcile {
		run = in.Run
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// The cursor past every page written, for heartbeats: after every page,
	// and while a request waits out a 429 or a backoff, so a long wait is not
	// taken for a dead worker.
	var mu sync.Mutex
	beat := func() {
		mu.Lock()
		defer mu.Unlock()
		activity.RecordHeartbeat(ctx, res)
	}

	// Reader: pages in listing order, numbered.
	type page struct {
		seq     int
		users   []*clerk.User
		after   BackfillCursor // the cursor past this page
		stats   BackfillStats  // what reading it cost
		result  store.PageResult
		refused []RefusedUser
		err     error
	}
	pages := make(chan page, pageWriters)
	go func() {
		defer close(pages)
		deadline := time.Now().Add(in.MaxDuration)
		c := res.Cursor
		for seq := 0; !c.Done; seq++ {
			users, stats, err := a.listPage(ctx, c, beat)
			p := page{seq: seq, users: users, stats: stats, err: err}
			if err == nil {
				c = advance(c, users)
				p.after = c
			}
			select {
			case pages <- p:
			case <-ctx.Done():
				return
			}
			if err != nil || time.Now().After(deadline) {
				return
			}
		}
	}()

	// Writers.
	written := make(chan page)
	var wg sync.WaitGroup
	for range pageWriters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for p := range pages {
				if p.err == nil {
					p.result, p.refused, p.err = a.writePage(ctx, run, normalize(ctx, p.users))
				}
				select {
				case written <- p:
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	go func() { wg.Wait(); close(written) }()

	// The cursor moves past a page only once every earlier page is written.
	done := map[int]page{}
	next := 0
	var firstErr error
	for p := range written {
		if p.err != nil {
			if firstErr == nil {
				firstErr = p.err
				cancel()
			}
			continue
		}
		done[p.seq] = p
		mu.Lock()
		for q, ok := done[next]; ok; q, ok = done[next] {
			delete(done, next)
			next++
			r := q.result
			res.Cursor = q.after
			pageStats := BackfillStats{Pages: 1, Seen: len(q.users), Inserted: r.Inserted, Updated: r.Updated,
				Unchanged: len(q.users) - r.Inserted - r.Updated - r.Tombstoned - len(q.refused), Tombstoned: r.Tombstoned,
				Trials: r.Trials, Refused: len(q.refused)}
			a.Metrics.backfilled(pageStats)
			res.Stats = res.Stats.Add(q.stats).Add(pageStats)
			res.Refused = KeepRefused(res.Refused, q.refused)
		}
		mu.Unlock()
		beat()
	}
	if firstErr != nil {
		return res, classify(firstErr)
	}
	return res, nil
}

// writePage writes a page of users in one transaction. A page PostgreSQL
// refuses for good (one user's data it can never take) is written again a
// user at a time, so every other user lands; each refused one is returned
// with the database's message, and still counts as seen by a
// reconciliation (Clerk has it).
func (a *Activities) writePage(ctx context.Context, run string, users []clerkevent.User) (store.PageResult, []RefusedUser, error) {
	res, err := a.Store.WriteUserPage(ctx, run, users, a.TrialPeriod)
	if !store.IsPermanent(err) {
		return res, nil, err
	}
	res = store.PageResult{}
	var refused []RefusedUser
	for _, u := range users {
		r, err := a.Store.WriteUserPage(ctx, run, []clerkevent.User{u}, a.TrialPeriod)
		switch {
		case store.IsPermanent(err):
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
func normalize(ctx context.Context, page []*clerk.User) []clerkevent.User {
	users := make([]clerkevent.User, 0, len(page))
	for _, cu := range page {
		u, err := clerkevent.NormalizeUser(cu)
		if err != nil {
			activity.GetLogger(ctx).Warn("Skipped a user Clerk listed without the fields clerksync needs", "clerk_id", cu.ID, "error", err)
			continue
		}
		users = append(users, u)
	}
	return users
}

// advance moves the cursor past a page read from c.
func advance(c BackfillCursor, page []*clerk.User) BackfillCursor {
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
func (a *Activities) listPage(ctx context.Context, c BackfillCursor, beat func()) ([]*clerk.User, BackfillStats, error) {
	var stats BackfillStats
	params := map[string]string{
		"limit": strconv.Itoa(ClerkPageSize), "order_by": "+created_at", "offset": strconv.Itoa(c.Skip),
	}
	if c.CreatedAt > 0 {
		params["created_at_after"] = strconv.FormatInt(c.CreatedAt-1, 10) // Clerk's bound is exclusive
	}
	var page userPage
	err := a.callClerk(ctx, &stats, beat, func() error {
		page = nil
		return a.ClerkBackend.Call(ctx, newListRequest("/users", params), &page)
	})
	return page, stats, listed("/users", err)
}

// callClerk makes one Clerk API call, retrying until it gets an answer: a
// 429 waits for its Retry-After, a 5xx or a network error backs off up to
// 30 s. Only ctx's end (the activity cancelled or timed out, then retried by
// Temporal) stops it. A refused key (401) or request (403) fails for good,
// but for an instance without the Organizations feature
// (errOrganizationsDisabled); any other 4xx (a 404) is an answer, returned
// to the caller. Every request waits for the worker's Clerk rate limit.
func (a *Activities) callClerk(ctx context.Context, stats *BackfillStats, beat func(), call func() error) error {
	for wait := time.Second; ; wait = min(2*wait, 30*time.Second) {
		if err := a.waitForClerk(ctx); err != nil {
			return err
		}
		stats.Requests++
		err := call()
		if err == nil {
			return nil
		}
		delay := wait
		var apiErr *clerk.APIErrorResponse
		switch {
		case errors.As(err, &apiErr) && apiErr.HTTPStatusCode == http.StatusTooManyRequests:
			stats.RateLimited++
			delay = retryAfter(apiErr, wait)
		case errors.As(err, &apiErr) && apiErr.HTTPStatusCode == http.StatusUnauthorized:
			return misconfigured(fmt.Errorf("clerk API: Clerk refused CLERK_SECRET_KEY (HTTP 401)"))
		case errors.As(err, &apiErr) && apiErr.HTTPStatusCode == http.StatusForbidden && hasErrorCode(apiErr, organizationsNotEnabled):
			return fmt.Errorf("clerk API: %w", errOrganizationsDisabled)
		case errors.As(err, &apiErr) && apiErr.HTTPStatusCode == http.StatusForbidden:
			return misconfigured(fmt.Errorf("clerk API: Clerk refused the request (HTTP 403%s)", errorCodes(apiErr)))
		case errors.As(err, &apiErr) && apiErr.HTTPStatusCode < 500:
			return err
		default:
			stats.Retried++
		}
		activity.GetLogger(ctx).Warn("Clerk API call failed; retrying", "retry_in", delay.String(), "error", err)
		if err := sleep(ctx, delay, beat); err != nil {
			return err
		}
	}
}

// sleep waits d, heartbeating every 10 s, until ctx ends.
func sleep(ctx context.Context, d time.Duration, beat func()) error {
	end := time.Now().Add(d)
	for {
		left := time.Until(end)
		if left <= 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(min(left, 10*time.Second)):
			beat()
		}
	}
}

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
		var cu *clerk.User
		err := a.callClerk(ctx, &res.Stats, func() { activity.RecordHeartbeat(ctx, res.After) }, func() (err error) {
			cu, err = a.Clerk.Get(ctx, id)
			return err
		})
		switch {
		case notFound(err):
			kept, err := deleteConfirmed(
				func() error { return a.Store.TombstoneUser(ctx, id, time.Now()) },
				func() (bool, error) { return a.Store.RemoveUserRow(ctx, id) })
			switch {
			case err != nil:
				return res, err
			case kept:
				res.RowsKept++
			default:
				res.Removed++
			}
		case err != nil:
			return res, err
		default:
			u, err := clerkevent.NormalizeUser(cu)
			if err != nil {
				activity.GetLogger(ctx).Warn("Skipped a user Clerk returned without the fields clerksync needs", "clerk_id", id, "error", err)
				break
			}
			up, err := a.Store.UpsertUser(ctx, u, a.TrialPeriod)
			if store.IsPermanent(err) {
				// Still in Clerk, so not removed; PostgreSQL refuses its data,
				// as its listing page already found.
				res.Stats.Refused++
				break
			}
			if err != nil {
				return res, classify(err)
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

// notFound reports whether err is the Clerk API's 404.
func notFound(err error) bool {
	var apiErr *clerk.APIErrorResponse
	return errors.As(err, &apiErr) && apiErr.HTTPStatusCode == http.StatusNotFound
}

// deleteConfirmed deletes what Clerk confirmed gone (a 404), as its signed
// deletion webhook would: the tombstone, then the row. kept reports a row a
// product's foreign key holds.
func deleteConfirmed(tombstone func() error, remove func() (bool, error)) (kept bool, err error) {
	if err := tombstone(); err != nil {
		return false, classify(err)
	}
	r, err := rowRemoval(remove())
	return r.RowKept != "", err
}

// ForgetRun drops what a run recorded as seen, once it has ended.
func (a *Activities) ForgetRun(ctx context.Context, run string) error {
	return a.Store.ForgetRun(ctx, run)
}

// ClerkCount is how many users Clerk has, and what asking cost.
type ClerkCount struct {
	Total int           `json:"total"`
	Stats BackfillStats `json:"stats"`
}

// CountClerkUsers asks Clerk how many users it has, once per run, for the
// progress display.
func (a *Activities) CountClerkUsers(ctx context.Context) (ClerkCount, error) {
	if a.ClerkBackend == nil {
		return ClerkCount{}, noClerkKey("count clerk users")
	}
	var total struct {
		clerk.APIResource
		TotalCount int `json:"total_count"`
	}
	var res ClerkCount
	if err := a.callClerk(ctx, &res.Stats, func() { activity.RecordHeartbeat(ctx) }, func() error {
		return a.ClerkBackend.Call(ctx, newListRequest("/users/count", nil), &total)
	}); err != nil {
		// Unwrapped: Temporal reads a non-retryable error only at the top.
		return res, listed("/users/count", err)
	}
	res.Total = total.TotalCount
	return res, nil
}

// waitForClerk waits for the worker's Clerk API rate limit (CLERK_API_RPS),
// which every request a worker makes shares.
func (a *Activities) waitForClerk(ctx context.Context) error {
	if a.ClerkLimiter == nil {
		return nil
	}
	if err := a.ClerkLimiter.Wait(ctx); err != nil {
		return fmt.Errorf("wait for the Clerk rate limit: %w", err)
	}
	return nil
}

// retryAfter reads a 429's Retry-After (seconds), or falls back to wait.
func retryAfter(apiErr *clerk.APIErrorResponse, wait time.Duration) time.Duration {
	if apiErr.Response == nil {
		return wait
	}
	if s, err := strconv.Atoi(apiErr.Response.Header.Get("Retry-After")); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	return wait
}

// userPage decodes GET /v1/users, a bare JSON array. clerk-sdk-go's own
// user.List also calls /users/count for every page, doubling the requests a
// run makes against Clerk's rate limit.
type userPage []*clerk.User

// Read implements clerk.ResponseReader.
func (*userPage) Read(*clerk.APIResponse) {}

// listQuery is a query string for clerk.APIRequest (clerk.Params).
type listQuery map[string]string

// ToMultipart implements clerk.Params; a GET has no body.
func (listQuery) ToMultipart() ([]byte, string, error) { return nil, "", nil }

// ToQuery implements clerk.Params.
func (q listQuery) ToQuery() url.Values {
	v := url.Values{}
	for k, val := range q {
		v.Set(k, val)
	}
	return v
}

func newListRequest(path string, params map[string]string) *clerk.APIRequest {
	req := clerk.NewAPIRequest(http.MethodGet, path)
	if params != nil {
		req.SetParams(listQuery(params))
	}
	return req
}
