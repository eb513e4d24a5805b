package activities

import (
	"github.com/clerksync/clerksync/internal/clerkevent"
)

// BackfillWindow is a slice of Clerk's user listing by created_at, read
// on its own: from its cursor up to Before (Unix ms, exclusive). The
// window without Before (the latest) also takes the users created while
// the run reads, as their webhooks do. The windows of a run cover the
// listing from its cursor on without overlapping, in no particular order:
// a window split while it is read keeps its place, and the part split off
// it is appended.
type BackfillWindow struct {
	Cursor BackfillCursor `json:"cursor"`
	Before int64          `json:"before,omitempty"`
}

// windowsCursor sums windows up as one cursor: done once every window
// is, otherwise the earliest unfinished window's cursor. Read from there
// in one, the listing skips no user the windows have not written.
func windowsCursor(windows []BackfillWindow) BackfillCursor {
	var earliest, latest *BackfillWindow
	for i := range windows {
		w := &windows[i]
		if w.Before == 0 {
			latest = w
		}
		if !w.Cursor.Done && (earliest == nil || w.Cursor.CreatedAt < earliest.Cursor.CreatedAt) {
			earliest = w
		}
	}
	switch {
	case earliest != nil:
		return earliest.Cursor
	case latest != nil:
		return BackfillCursor{CreatedAt: latest.Cursor.CreatedAt, Done: true}
	default:
		return BackfillCursor{}
	}
}

// stealMin is the fewest users a window is thought to have left for a
// reader that has finished its own to take half of them: a split costs
// each half a short last page.
const stealMin = 4 * ClerkPageSize

// windowReading is what a call knows of a window it reads, beside its
// cursor: past what created_at its reader has taken users (a split must
// fall after it), how long its last full page's users took to sign up
// (the window's pace), and whether its reader has taken its last page.
// When the planning counted the users before the window's start
// (preceding; -1 when it did not: a window split off by a steal), the
// users its reader has taken (taken) make each full page a count the
// planning did not have to ask: the curve the steals estimate by.
type windowReading struct {
	claimed   int64
	pageSpan  int64
	finished  bool
	preceding int
	taken     int
}

// claimLocked takes a page read from window i at cur, returning what it
// takes and the window's cursor past it: the users at or past the
// window's Before (lowered by a split since the request went out) are
// left to the window split off it. c.mu is held.
func (c *pagesCall) claimLocked(i int, cur BackfillCursor, page []*clerkevent.ClerkUser) ([]*clerkevent.ClerkUser, BackfillCursor) {
	if len(c.res.Windows) == 0 {
		return page, advance(cur, page) // read in one: never split
	}
	w, r := c.res.Windows[i], c.reading(i)
	if w.Before > 0 {
		for n, u := range page {
			if u.CreatedAt >= w.Before {
				page = page[:n]
				break
			}
		}
	}
	after := advance(cur, page)
	r.taken += len(page)
	if len(page) > 0 {
		r.claimed = max(r.claimed, page[len(page)-1].CreatedAt)
	}
	if len(page) == ClerkPageSize {
		r.pageSpan = max(1, page[len(page)-1].CreatedAt-page[0].CreatedAt)
		c.provenLocked(r, after)
	} else {
		r.finished = true
	}
	return page, after
}

// provenLocked adds to the planning's count curve what a full page of a
// window whose start it counted proves: how many users were created
// before the page's last one (after: the cursor past the page, whose Skip
// counts the users taken at that created_at). Without it, a window's users
// were thought spread evenly between the counts around it, and a latest
// window ending in a gap (an import, then months of few signups) looked
// to have thousands left when its reader was past them all: each reader
// that finished its own took half of it, a request for a page of nobody.
// c.mu is held.
func (c *pagesCall) provenLocked(r *windowReading, after BackfillCursor) {
	if c.known != nil && r.preceding >= 0 {
		c.known.add(countPoint{at: after.CreatedAt, n: r.preceding + r.taken - after.Skip, read: true})
	}
}

// reading is window i's reading state. c.mu is held.
func (c *pagesCall) reading(i int) *windowReading {
	if c.readings == nil {
		c.readings = map[int]*windowReading{}
	}
	r, ok := c.readings[i]
	if !ok {
		r = &windowReading{claimed: c.res.Windows[i].Cursor.CreatedAt, finished: c.res.Windows[i].Cursor.Done, preceding: -1}
		c.readings[i] = r
	}
	return r
}

// splitLocked gives the users of window i created at at or later to a new
// window, returned (-1 when at is not inside what i has left to read);
// preceding is the planning's count of the users created before at (-1
// when unknown). c.mu is held.
func (c *pagesCall) splitLocked(i int, at int64, preceding int) int {
	w, r := c.res.Windows[i], c.reading(i)
	if r.finished || at <= r.claimed || (w.Before > 0 && at >= w.Before) {
		return -1
	}
	c.res.Windows = append(c.res.Windows, BackfillWindow{Cursor: BackfillCursor{CreatedAt: at}, Before: w.Before})
	c.res.Windows[i].Before = at
	j := len(c.res.Windows) - 1
	nr := c.reading(j)
	nr.pageSpan = r.pageSpan // the same pace, until its own first page
	nr.preceding = preceding
	return j
}

// splitAt splits the window that has the planning's bound b still to read
// there, returning the new window (-1 when none has).
func (c *pagesCall) splitAt(b countPoint) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, w := range c.res.Windows {
		if b.at > w.Cursor.CreatedAt && (w.Before == 0 || b.at < w.Before) {
			return c.splitLocked(i, b.at, b.n)
		}
	}
	return -1
}

// steal splits the window thought to have the most users left, for a
// reader whose own window is done: windows planned unevenly (or split by
// a pace that changed) end together this way. What a window has left is
// the planning's counts between where its reader is and its end, when
// this call planned (the newest user it saw ends the latest window);
// otherwise its pace over what it has left (and the latest window, of
// unknown end, is not split). The split leaves the window half of that
// at its pace. It returns the new window, or -1 when no window has
// stealMin users left, or the call has split as many times as it has
// windows (a pace gone wrong costs a short page a split).
func (c *pagesCall) steal() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.steals >= c.a.BackfillWindows {
		return -1
	}
	best, bestAt, most := -1, int64(0), float64(stealMin)
	for i, w := range c.res.Windows {
		r := c.reading(i)
		if r.finished || r.pageSpan == 0 {
			continue
		}
		end := w.Before
		if end == 0 {
			end = c.newest + 1
		}
		var left float64
		switch {
		case end <= r.claimed+1: // the latest window, without a planning's newest user
		case c.known != nil:
			left = c.known.estimate(end) - c.known.estimate(r.claimed)
		default:
			left = float64(end-r.claimed) * ClerkPageSize / float64(r.pageSpan)
		}
		if left > most {
			// Never past half its time left: a pace that does not hold
			// (a gap in the signups) must not leave the thief nothing.
			at := min(r.claimed+int64(left/2*float64(r.pageSpan)/ClerkPageSize), r.claimed+(end-r.claimed)/2)
			best, bestAt, most = i, max(at, r.claimed+1), left
		}
	}
	if best < 0 {
		return -1
	}
	c.steals++
	return c.splitLocked(best, bestAt, -1)
}
