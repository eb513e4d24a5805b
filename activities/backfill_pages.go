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

// pageWriters is how many pages BackfillPages writes at once, beside the
// ones it reads: pages hold disjoint users, and each takes its users'
// locks in one order, so they never wait on each other.
const pageWriters = 2

// BackfillPages reads Clerk's user listing, a page at a time, and writes
// each page in one transaction (store.WriteUserPage), for up to
// MaxDuration. The listing is read in created_at windows side by side
// (BackfillWindows, planned on a run's first call: windowPlan), every
// request under the worker's one Clerk rate limit, so a run is bound by
// that limit rather than by a request's latency; the first window is read
// while the others are planned, a reader whose window is done takes half
// of the window with the most left (steal), and pages are written by
// pageWriters at once while the next are read. It heartbeats each
// window's cursor past the pages written (every earlier page of the
// window included), so a retry after a crash resumes every window where
// it was; a page written twice changes nothing.
func (a *Activities) BackfillPages(ctx context.Context, in BackfillPagesInput) (BackfillPagesResult, error) {
	if a.Clerk == nil {
		return BackfillPagesResult{}, noClerkKey("backfill")
	}
	c := &pagesCall{a: a, ctx: ctx, res: BackfillPagesResult{Cursor: in.Cursor, Windows: in.Windows}, listing: in.Listing}
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
	c.g, c.gctx, c.deadline = g, gctx, time.Now().Add(in.MaxDuration)
	c.pages = make(chan listedPage, pageWriters)
	c.readers.Add(1) // the planning's, while it may start readers
	g.Go(func() error {
		defer c.readers.Done()
		if c.unplanned() {
			return c.plan(gctx)
		}
		for i, w := range c.windows() {
			if !w.Cursor.Done {
				c.startReader(i, nil)
			}
		}
		return nil
	})
	go func() { c.readers.Wait(); close(c.pages) }()
	written := make(chan listedPage)
	var writers sync.WaitGroup
	for range pageWriters {
		writers.Add(1)
		g.Go(func() error {
			defer writers.Done()
			for p := range c.pages {
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

// unplanned: the listing is to be read in windows and is not split yet,
// or its planning was cut short before it found a bound (a crash; the one
// window it had is read from where it was).
func (c *pagesCall) unplanned() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	w := c.res.Windows
	return c.a.BackfillWindows > 1 && !c.res.Cursor.Done && (len(w) == 0 || len(w) == 1 && w[0].Before == 0)
}

// plan plans the windows of a listing not yet split, reading the first
// while it seeks the others' bounds: each bound found splits the window
// that holds it, and the part split off gets a reader.
func (c *pagesCall) plan(ctx context.Context) error {
	c.mu.Lock()
	cursor := c.res.Cursor
	if len(c.res.Windows) == 1 {
		cursor = c.res.Windows[0].Cursor
	}
	c.mu.Unlock()
	p := &windowPlan{a: c.a, from: cursor.CreatedAt, k: c.a.BackfillWindows, beat: c.beat}
	var stats BackfillStats
	var first []*clerkevent.ClerkUser
	var err error
	ls := c.listing
	if ls == nil || cursor != (BackfillCursor{}) {
		// Not asked at the run's start (an earlier release's, or a
		// planning resumed past the listing's beginning).
		var asked ListingStart
		asked, first, err = p.ask(ctx, cursor, &stats)
		ls = &asked
	}
	split := err == nil && p.start(*ls)
	c.mu.Lock()
	c.res.Stats = c.res.Stats.Add(stats)
	if split {
		c.res.Windows, c.known, c.newest = []BackfillWindow{{Cursor: cursor}}, p.known, p.newest
		if cursor.Skip == 0 {
			c.reading(0).preceding = 0 // the counts are of the users from the cursor on
		}
	}
	c.mu.Unlock()
	if err != nil {
		return err
	}
	c.startReader(0, first)
	if !split {
		return nil
	}
	stats = BackfillStats{}
	err = p.bounds(ctx, &stats, func(b countPoint) {
		if j := c.splitAt(b); j >= 0 {
			c.startReader(j, nil)
		}
	})
	c.mu.Lock()
	c.res.Stats = c.res.Stats.Add(stats)
	c.mu.Unlock()
	return err
}

// startReader reads window i on a goroutine of the call's own, starting
// with first when it is not nil (a page of it already read).
func (c *pagesCall) startReader(i int, first []*clerkevent.ClerkUser) {
	c.readers.Add(1)
	c.g.Go(func() error {
		defer c.readers.Done()
		return c.read(c.gctx, i, first)
	})
}

// listedPage is one page of Clerk's listing on its way through
// BackfillPages: read from its window, then written.
type listedPage struct {
	window, seq int
	users       []*clerkevent.ClerkUser
	after       BackfillCursor // the window's cursor past this page
	stats       BackfillStats  // what reading it cost
	result      store.PageResult
	refused     []RefusedUser
}

// pagesCall is one BackfillPages call: its result so far (each window's
// cursor past every page of it written), reported by heartbeat after every
// page and while a request waits out a 429 or a backoff, so a long wait is
// not taken for a dead worker.
type pagesCall struct {
	a        *Activities
	ctx      context.Context
	g        *errgroup.Group
	gctx     context.Context // g's: ended by the first error
	deadline time.Time
	pages    chan listedPage
	readers  sync.WaitGroup // pages closes once every reader is done

	mu       sync.Mutex
	res      BackfillPagesResult
	readings map[int]*windowReading // by window
	steals   int
	// listing is what the run's start learned of the listing, for the
	// planning; nil when it did not ask.
	listing *ListingStart
	// known and newest are the planning's counts and newest user, when
	// this call planned.
	known  *countCurve
	newest int64
}

func (c *pagesCall) beat() {
	c.mu.Lock()
	defer c.mu.Unlock()
	activity.RecordHeartbeat(c.ctx, c.res)
}

// windows are the call's windows: the result's, or the whole listing from
// its cursor when it is read in one.
func (c *pagesCall) windows() []BackfillWindow {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.res.Windows) == 0 {
		return []BackfillWindow{{Cursor: c.res.Cursor}}
	}
	return append([]BackfillWindow(nil), c.res.Windows...)
}

// read lists window i's pages in listing order, numbered, from its cursor
// on, until the deadline (at least one page a call, so every call makes
// progress); first, when not nil, is its first page, already read. Once
// its window is done, the reader goes on with half of another (steal).
func (c *pagesCall) read(ctx context.Context, i int, first []*clerkevent.ClerkUser) error {
	c.mu.Lock()
	cur := c.res.Cursor
	if len(c.res.Windows) > 0 {
		cur = c.res.Windows[i].Cursor
	}
	c.mu.Unlock()
	for seq := 0; ; seq++ {
		users, stats := first, BackfillStats{}
		if first == nil {
			var err error
			if users, stats, err = c.a.listPage(ctx, cur, c.before(i), c.beat); err != nil {
				return err
			}
		}
		first = nil
		c.mu.Lock()
		users, cur = c.claimLocked(i, cur, users)
		c.mu.Unlock()
		select {
		case c.pages <- listedPage{window: i, seq: seq, users: users, after: cur, stats: stats}:
		case <-ctx.Done():
			return ctx.Err()
		}
		if time.Now().After(c.deadline) {
			return nil
		}
		if cur.Done {
			if i = c.steal(); i < 0 {
				return nil
			}
			cur, seq = BackfillCursor{CreatedAt: c.windowStart(i)}, -1
		}
	}
}

// before is window i's Before now (a split may lower it).
func (c *pagesCall) before(i int) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.res.Windows) == 0 {
		return 0
	}
	return c.res.Windows[i].Before
}

// windowStart is where window i, split off another, starts.
func (c *pagesCall) windowStart(i int) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.res.Windows[i].Cursor.CreatedAt
}

// foldInOrder counts written pages into the result: a window's cursor
// moves past a page only once every earlier page of the window is written.
func (c *pagesCall) foldInOrder(written <-chan listedPage) {
	done := map[[2]int]listedPage{}
	next := map[int]int{}
	for p := range written {
		done[[2]int{p.window, p.seq}] = p
		c.mu.Lock()
		for q, ok := done[[2]int{p.window, next[p.window]}]; ok; q, ok = done[[2]int{p.window, next[p.window]}] {
			delete(done, [2]int{q.window, q.seq})
			next[q.window]++
			c.committed(q)
		}
		c.mu.Unlock()
		c.beat()
	}
}

// committed moves q's window's cursor past q and counts it; c.mu is held.
func (c *pagesCall) committed(q listedPage) {
	if len(c.res.Windows) == 0 {
		c.res.Cursor = q.after
	} else {
		c.res.Windows[q.window].Cursor = q.after
		c.res.Cursor = windowsCursor(c.res.Windows)
	}
	r := q.result
	pageStats := BackfillStats{Pages: 1, Seen: len(q.users), Inserted: r.Inserted, Updated: r.Updated,
		Unchanged: len(q.users) - r.Inserted - r.Updated - r.Tombstoned - len(q.refused), Tombstoned: r.Tombstoned,
		Trials: r.Trials, Refused: len(q.refused)}
	c.a.Metrics.backfilled(pageStats)
	c.res.Stats = c.res.Stats.Add(q.stats).Add(pageStats)
	c.res.Refused = KeepRefused(c.res.Refused, q.refused)
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

// listPage reads one page of Clerk's listing at c, of the users created
// before before (Unix ms, 0 for no bound), retrying until it gets one: a
// 429 waits for its Retry-After, a 5xx or a network error backs off up to
// 30 s. Only ctx's end (the activity cancelled or timed out, then retried
// by Temporal) stops it. Every request waits for the worker's Clerk rate
// limit.
func (a *Activities) listPage(ctx context.Context, c BackfillCursor, before int64, beat func()) ([]*clerkevent.ClerkUser, BackfillStats, error) {
	var stats BackfillStats
	params := map[string]string{
		"limit": strconv.Itoa(ClerkPageSize), "order_by": "+created_at", "offset": strconv.Itoa(c.Skip),
	}
	if c.CreatedAt > 0 {
		params["created_at_after"] = strconv.FormatInt(c.CreatedAt-1, 10) // Clerk's bounds are exclusive
	}
	if before > 0 {
		params["created_at_before"] = strconv.FormatInt(before, 10)
	}
	page, err := a.Clerk.ListUsers(ctx, &stats, beat, params, a.Store.Mapping().Uses(mapping.SourceObject))
	return page, stats, err
}
