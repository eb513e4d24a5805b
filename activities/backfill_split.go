package activities

import (
	"cmp"
	"context"
	"slices"
	"strconv"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/clerksync/clerksync/internal/clerkevent"
)

// BackfillWindow is a slice of Clerk's user listing by created_at, read
// on its own: from its cursor up to Before (Unix ms, exclusive). The last
// window has no Before: it also takes the users created while the run
// reads, as their webhooks do.
type BackfillWindow struct {
	Cursor BackfillCursor `json:"cursor"`
	Before int64          `json:"before,omitempty"`
}

// windowsCursor sums windows up as one cursor: done once every window
// is, otherwise the first unfinished window's cursor. Read from there in
// one, the listing skips no user the windows have not written.
func windowsCursor(windows []BackfillWindow) BackfillCursor {
	for _, w := range windows {
		if !w.Cursor.Done {
			return w.Cursor
		}
	}
	if len(windows) == 0 {
		return BackfillCursor{}
	}
	return BackfillCursor{CreatedAt: windows[len(windows)-1].Cursor.CreatedAt, Done: true}
}

// planWindows splits the listing from cursor on into up to k windows of
// about as many users each: between the oldest and the newest user's
// created_at (a listing request each), each boundary is sought by asking
// Clerk's count of the users created before a time (GET /v1/users/count,
// created_at_before), the boundaries side by side. Each search's first
// guess assumes users kept arriving at the pace of the listing's first
// page (an import, a steady signup rate); later guesses interpolate
// between the counts known and halve in turn, so a listing that does not
// keep that pace converges too. A listing of fewer than two pages a
// window is read in one.
func (a *Activities) planWindows(ctx context.Context, cursor BackfillCursor, k int, stats *BackfillStats, beat func()) ([]BackfillWindow, error) {
	from := cursor.CreatedAt
	count := func(ctx context.Context, s *BackfillStats, before int64) (int, error) {
		params := map[string]string{}
		if from > 0 {
			params["created_at_after"] = strconv.FormatInt(from-1, 10)
		}
		if before > 0 {
			params["created_at_before"] = strconv.FormatInt(before, 10)
		}
		return a.Clerk.CountUsers(ctx, s, beat, params)
	}
	// The total, the first page and the newest user are asked at once: a
	// request's latency each, one after the other, was the run's start.
	var (
		total               int
		first               []*clerkevent.ClerkUser
		newest              int64
		totalStats, rangeSt BackfillStats
	)
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() (err error) { total, err = count(gctx, &totalStats, 0); return err })
	g.Go(func() (err error) { first, newest, err = a.createdRange(gctx, from, &rangeSt, beat); return err })
	err := g.Wait()
	*stats = stats.Add(totalStats).Add(rangeSt)
	switch {
	case err != nil:
		return nil, err
	case total < 2*k*ClerkPageSize:
		return []BackfillWindow{{Cursor: cursor}}, nil
	case len(first) == 0: // the users counted went before they were listed
		return []BackfillWindow{{Cursor: cursor}}, nil
	}
	oldest := first[0].CreatedAt
	// Close enough: the largest window sets the run's end, and a few pages
	// more in one cost less than the counts to even them out.
	tolerance := max(ClerkPageSize, total/(8*k))
	// Every count taken, whichever boundary took it, narrows every search:
	// the searches run side by side over one set of known counts.
	known := &countCurve{points: []countPoint{{oldest, 0}, {newest + 1, total}}}
	pace := firstPagePace(first)
	if pace.at > oldest && pace.at <= newest {
		known.add(pace)
	}
	bounds := make([]int64, k-1)
	boundStats := make([]BackfillStats, k-1)
	g, gctx = errgroup.WithContext(ctx)
	for j := range bounds {
		g.Go(func() error {
			target := (j + 1) * total / k
			for step := 0; ; step++ {
				lo, hi, found := known.bracket(target, tolerance)
				switch {
				case found >= 0:
					bounds[j] = found
					return nil
				case hi.at-lo.at <= 1:
					bounds[j] = hi.at
					return nil
				}
				// Interpolated where users were created evenly, halved in
				// turn, so a skewed listing (a bulk import) converges too.
				mid := lo.at + (hi.at-lo.at)/2
				switch {
				case step == 0 && pace.n > 0:
					mid = oldest + int64(float64(pace.at-oldest)*float64(target)/float64(pace.n))
				case step%2 == 0 && hi.n > lo.n:
					mid = lo.at + int64(float64(hi.at-lo.at)*float64(target-lo.n)/float64(hi.n-lo.n))
				}
				mid = min(max(mid, lo.at+1), hi.at-1)
				n, err := count(gctx, &boundStats[j], mid)
				if err != nil {
					return err
				}
				known.add(countPoint{mid, n})
			}
		})
	}
	err = g.Wait()
	for _, s := range boundStats {
		*stats = stats.Add(s)
	}
	if err != nil {
		return nil, err
	}
	windows := []BackfillWindow{{Cursor: cursor}}
	for _, b := range bounds {
		last := &windows[len(windows)-1]
		if b <= last.Cursor.CreatedAt {
			continue // an empty window: every user of it shares the previous bound
		}
		last.Before = b
		windows = append(windows, BackfillWindow{Cursor: BackfillCursor{CreatedAt: b}})
	}
	return windows, nil
}

// countPoint is Clerk's count n of the users created before at (Unix ms).
type countPoint struct {
	at int64
	n  int
}

// countCurve is the counts planWindows has taken, in time order, shared
// by its searches.
type countCurve struct {
	mu     sync.Mutex
	points []countPoint
}

func (c *countCurve) add(p countPoint) {
	c.mu.Lock()
	defer c.mu.Unlock()
	i, _ := slices.BinarySearchFunc(c.points, p.at, func(q countPoint, at int64) int { return cmp.Compare(q.at, at) })
	c.points = slices.Insert(c.points, i, p)
}

// bracket is the tightest known points around target (lo's count below
// it, hi's above), or found, the time of a point within tolerance of it
// (-1 for none).
func (c *countCurve) bracket(target, tolerance int) (lo, hi countPoint, found int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	lo, hi = c.points[0], c.points[len(c.points)-1]
	for _, p := range c.points {
		switch {
		case p.n >= target-tolerance && p.n <= target+tolerance && p.at > c.points[0].at:
			return lo, hi, p.at
		case p.n < target:
			lo = p
		case p.n > target && p.at < hi.at:
			hi = p
			return lo, hi, -1
		}
	}
	return lo, hi, -1
}

// firstPagePace is what the listing's first page says of its pace: the
// count of users created before its last user's created_at (an exact
// point of the curve), or the zero point when the page is not full or
// took no time (no pace to go by).
func firstPagePace(first []*clerkevent.ClerkUser) countPoint {
	if len(first) < ClerkPageSize {
		return countPoint{}
	}
	last := first[len(first)-1].CreatedAt
	n := 0
	for _, u := range first {
		if u.CreatedAt < last {
			n++
		}
	}
	if last == first[0].CreatedAt {
		return countPoint{}
	}
	return countPoint{at: last, n: n}
}

// createdRange is the first page of the listing from from on (oldest
// first; empty when Clerk lists no such user, each deleted since it was
// counted) and the newest user's created_at (Unix ms), asked at once.
func (a *Activities) createdRange(ctx context.Context, from int64, stats *BackfillStats, beat func()) (first []*clerkevent.ClerkUser, newest int64, err error) {
	oldest := map[string]string{"limit": strconv.Itoa(ClerkPageSize), "order_by": "+created_at"}
	if from > 0 {
		oldest["created_at_after"] = strconv.FormatInt(from-1, 10)
	}
	var last []*clerkevent.ClerkUser
	var lastStats BackfillStats
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() (err error) { first, err = a.Clerk.ListUsers(gctx, stats, beat, oldest, false); return err })
	g.Go(func() (err error) {
		last, err = a.Clerk.ListUsers(gctx, &lastStats, beat, map[string]string{"limit": "1", "order_by": "-created_at"}, false)
		return err
	})
	err = g.Wait()
	*stats = stats.Add(lastStats)
	if err != nil || len(first) == 0 || len(last) == 0 {
		return nil, 0, err
	}
	return first, max(last[0].CreatedAt, first[0].CreatedAt), nil
}
