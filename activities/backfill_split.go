package activities

import (
	"context"
	"errors"
	"strconv"

	"golang.org/x/sync/errgroup"
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
// created_at_before), interpolated and halved in turn, the boundaries side
// by side. A listing of fewer than two pages a window is read in one.
func (a *Activities) planWindows(ctx context.Context, cursor BackfillCursor, k int, stats *BackfillStats, beat func()) ([]BackfillWindow, error) {
	from := cursor.CreatedAt
	count := func(s *BackfillStats, before int64) (int, error) {
		params := map[string]string{}
		if from > 0 {
			params["created_at_after"] = strconv.FormatInt(from-1, 10)
		}
		if before > 0 {
			params["created_at_before"] = strconv.FormatInt(before, 10)
		}
		return a.Clerk.CountUsers(ctx, s, beat, params)
	}
	total, err := count(stats, 0)
	if err != nil {
		return nil, err
	}
	if total < 2*k*ClerkPageSize {
		return []BackfillWindow{{Cursor: cursor}}, nil
	}
	oldest, newest, err := a.createdRange(ctx, from, stats, beat)
	if err != nil {
		return nil, err
	}
	// Close enough: the largest window sets the run's end, and a few pages
	// more in one cost less than the counts to even them out.
	tolerance := max(ClerkPageSize, total/(8*k))
	bounds := make([]int64, k-1)
	boundStats := make([]BackfillStats, k-1)
	g, _ := errgroup.WithContext(ctx)
	for j := range bounds {
		g.Go(func() error {
			target := (j + 1) * total / k
			lo, hi, nLo, nHi := oldest, newest+1, 0, total
			for step := 0; hi-lo > 1; step++ {
				// Interpolated where users were created evenly, halved in
				// turn, so a skewed listing (a bulk import) converges too.
				mid := lo + (hi-lo)/2
				if step%2 == 0 && nHi > nLo {
					mid = lo + int64(float64(hi-lo)*float64(target-nLo)/float64(nHi-nLo))
					mid = min(max(mid, lo+1), hi-1)
				}
				n, err := count(&boundStats[j], mid)
				if err != nil {
					return err
				}
				switch {
				case n < target-tolerance:
					lo, nLo = mid, n
				case n > target+tolerance:
					hi, nHi = mid, n
				default:
					lo, hi = mid, mid
				}
			}
			bounds[j] = hi
			return nil
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

// createdRange is the created_at (Unix ms) of the oldest user created at
// from or later, and of the newest.
func (a *Activities) createdRange(ctx context.Context, from int64, stats *BackfillStats, beat func()) (oldest, newest int64, err error) {
	first := map[string]string{"limit": "1", "order_by": "+created_at"}
	if from > 0 {
		first["created_at_after"] = strconv.FormatInt(from-1, 10)
	}
	for i, params := range []map[string]string{first, {"limit": "1", "order_by": "-created_at"}} {
		page, err := a.Clerk.ListUsers(ctx, stats, beat, params, false)
		if err != nil {
			return 0, 0, err
		}
		if len(page) == 0 {
			return 0, 0, errors.New("plan the listing's windows: Clerk counted users it does not list")
		}
		if i == 0 {
			oldest = page[0].CreatedAt
		} else {
			newest = page[0].CreatedAt
		}
	}
	return oldest, max(newest, oldest), nil
}
