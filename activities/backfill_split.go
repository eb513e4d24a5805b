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

// windowPlan splits the listing from a cursor on into up to k windows of
// about as many users each. ask asks Clerk's total, the listing's first
// page and its newest user at once (or the run's start did:
// ListingStart); then, between the oldest and the newest user's
// created_at, each boundary is sought by asking Clerk's
// count of the users created before a time (GET /v1/users/count,
// created_at_before), the boundaries side by side, each handed to found
// as soon as it is. Each search's first guess assumes users kept arriving
// at the pace of the listing's first page (an import, a steady signup
// rate); later guesses interpolate between the counts known and halve in
// turn, so a listing that does not keep that pace converges too. A
// listing is split into fewer windows when it has fewer than
// minWindowPages pages for each (a window costs a count and a partial last
// page), and read in one below two such windows.
type windowPlan struct {
	a      *Activities
	from   int64 // the cursor's created_at
	k      int
	beat   func()
	total  int
	oldest int64
	newest int64
	known  *countCurve
	pace   countPoint
}

// count is Clerk's count of the users created at p.from or later, and
// before before (Unix ms) when it is not 0.
func (p *windowPlan) count(ctx context.Context, s *BackfillStats, before int64) (int, error) {
	params := map[string]string{}
	if p.from > 0 {
		params["created_at_after"] = strconv.FormatInt(p.from-1, 10)
	}
	if before > 0 {
		params["created_at_before"] = strconv.FormatInt(before, 10)
	}
	return p.a.Clerk.CountUsers(ctx, s, p.beat, params)
}

// ask asks the total, the first page from cursor and the newest user at
// once (a request's latency each, one after the other, was the run's
// start), and returns what they say of the listing beside the first page.
func (p *windowPlan) ask(ctx context.Context, cursor BackfillCursor, stats *BackfillStats) (ListingStart, []*clerkevent.ClerkUser, error) {
	var totalStats, firstStats, lastStats BackfillStats
	var ls ListingStart
	var first, last []*clerkevent.ClerkUser
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() (err error) { ls.Total, err = p.count(gctx, &totalStats, 0); return err })
	g.Go(func() (err error) {
		// The cursor's first page, as its window would ask it: that window
		// starts with it.
		first, firstStats, err = p.a.listPage(gctx, cursor, 0, p.beat)
		return err
	})
	g.Go(func() (err error) {
		last, err = p.a.Clerk.ListUsers(gctx, &lastStats, p.beat, map[string]string{"limit": "1", "order_by": "-created_at"}, false)
		return err
	})
	err := g.Wait()
	*stats = stats.Add(totalStats).Add(firstStats).Add(lastStats)
	if err != nil || len(first) == 0 || len(last) == 0 {
		return ls, first, err
	}
	ls.Oldest = first[0].CreatedAt
	ls.Newest = max(last[0].CreatedAt, ls.Oldest)
	pace := firstPagePace(first)
	ls.PaceAt, ls.PaceN = pace.at, pace.n
	return ls, first, nil
}

// minWindowPages is the fewest pages a window is planned with: a smaller
// instance is read in fewer windows, each paying for its count and its
// partial last page with at least two full ones.
const minWindowPages = 3

// start takes what ask says of the listing; split is false when it is
// read in one: few users, or none listed (counted before they were).
func (p *windowPlan) start(ls ListingStart) (split bool) {
	p.k = min(p.k, ls.Total/(minWindowPages*ClerkPageSize))
	if p.k < 2 || ls.Oldest == 0 {
		return false
	}
	p.total, p.oldest, p.newest = ls.Total, ls.Oldest, ls.Newest
	// Every count taken, whichever boundary took it, narrows every search:
	// the searches run side by side over one set of known counts.
	p.known = &countCurve{points: []countPoint{{at: ls.Oldest}, {at: p.newest + 1, n: p.total}}}
	p.pace = countPoint{at: ls.PaceAt, n: ls.PaceN, read: true} // the first window starts with that page
	if p.pace.at > ls.Oldest && p.pace.at <= p.newest {
		p.known.add(p.pace)
	} else {
		p.pace = countPoint{}
	}
	return true
}

// bounds seeks the k-1 boundaries side by side, handing each to found as
// it is found (a point of the curve: its time and count); stats gathers
// what the counts cost.
func (p *windowPlan) bounds(ctx context.Context, stats *BackfillStats, found func(countPoint)) error {
	oldest := p.oldest
	// Close enough: the largest window sets the run's end, and a few pages
	// more in one cost less than the counts to even them out.
	tolerance := max(ClerkPageSize, p.total/(8*p.k))
	boundStats := make([]BackfillStats, p.k-1)
	g, gctx := errgroup.WithContext(ctx)
	for j := range p.k - 1 {
		g.Go(func() error {
			target := (j + 1) * p.total / p.k
			for step := 0; ; step++ {
				lo, hi, near, ok := p.known.bracket(target, tolerance)
				switch {
				case ok:
					found(near)
					return nil
				case hi.at-lo.at <= 1:
					found(hi)
					return nil
				}
				// Interpolated where users were created evenly, halved in
				// turn, so a skewed listing (a bulk import) converges too.
				mid := lo.at + (hi.at-lo.at)/2
				switch {
				case step == 0 && p.pace.n > 0:
					mid = oldest + int64(float64(p.pace.at-oldest)*float64(target)/float64(p.pace.n))
				case step%2 == 0 && hi.n > lo.n:
					mid = lo.at + int64(float64(hi.at-lo.at)*float64(target-lo.n)/float64(hi.n-lo.n))
				}
				mid = min(max(mid, lo.at+1), hi.at-1)
				n, err := p.count(gctx, &boundStats[j], mid)
				if err != nil {
					return err
				}
				p.known.add(countPoint{at: mid, n: n})
			}
		})
	}
	err := g.Wait()
	for _, s := range boundStats {
		*stats = stats.Add(s)
	}
	return err
}

// countPoint is Clerk's count n of the users created before at (Unix ms),
// or what a page read proves of it (read: pagesCall.provenLocked). A read
// point narrows a bound's search but is never a bound itself: its reader
// is already there, and a window cannot be split behind its reader.
type countPoint struct {
	at   int64
	n    int
	read bool
}

// countCurve is the counts a windowPlan has taken, in time order, shared
// by its searches, and what the pages read since prove (pagesCall.provenLocked).
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
// it, hi's above), or near, a point within tolerance of it (ok).
func (c *countCurve) bracket(target, tolerance int) (lo, hi, near countPoint, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	lo, hi = c.points[0], c.points[len(c.points)-1]
	for _, p := range c.points {
		switch {
		case !p.read && p.n >= target-tolerance && p.n <= target+tolerance && p.at > c.points[0].at:
			return lo, hi, p, true
		case p.n < target:
			lo = p
		case p.n > target && p.at < hi.at:
			hi = p
			return lo, hi, countPoint{}, false
		}
	}
	return lo, hi, countPoint{}, false
}

// estimate is the count of users created before at, interpolated between
// the known points around it (the nearest end's count outside them).
func (c *countCurve) estimate(at int64) float64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	i, _ := slices.BinarySearchFunc(c.points, at, func(q countPoint, at int64) int { return cmp.Compare(q.at, at) })
	switch {
	case i == 0:
		return float64(c.points[0].n)
	case i == len(c.points):
		return float64(c.points[i-1].n)
	}
	lo, hi := c.points[i-1], c.points[i]
	return float64(lo.n) + float64(hi.n-lo.n)*float64(at-lo.at)/float64(hi.at-lo.at)
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
