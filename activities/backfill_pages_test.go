package activities_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/testsuite"

	"github.com/clerksync/clerksync/activities"
	"github.com/clerksync/clerksync/internal/clerkapi"
	"github.com/clerksync/clerksync/internal/config"
	"github.com/clerksync/clerksync/internal/testsupport/clerkfake"
	"github.com/clerksync/clerksync/internal/testsupport/testenv"
)

// windowedListing is a fake Clerk of n users, the first clump of them
// created in one millisecond (a bulk import), the rest a millisecond
// apart, and activities reading it in windows into a database of their
// own.
func windowedListing(t *testing.T, n, clump, windows int) (*clerkfake.Server, *activities.Activities, string) {
	t.Helper()
	fake := clerkfake.Start(t)
	created := time.Now().Add(-48 * time.Hour).Truncate(time.Millisecond)
	users := make([]clerkfake.User, n)
	for i := range users {
		c := created
		if i >= clump {
			c = created.Add(time.Duration(i) * time.Millisecond)
		}
		users[i] = clerkfake.User{ID: fmt.Sprintf("user_win%05d", i), Email: fmt.Sprintf("w%d@example.com", i), CreatedAt: c, UpdatedAt: c}
	}
	fake.PutUsers(users...)
	st, dbURL := testenv.Store(t)
	cfg := config.Config{ClerkAPIURL: fake.URL(), ClerkSecretKey: clerkfake.SecretKey}
	return fake, &activities.Activities{Store: st, Clerk: clerkapi.New(cfg.ClerkClient(), 0), BackfillWindows: windows}, dbURL
}

// backfillPages calls BackfillPages once.
func backfillPages(t *testing.T, a *activities.Activities, in activities.BackfillPagesInput) activities.BackfillPagesResult {
	t.Helper()
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	env.RegisterActivity(a)
	v, err := env.ExecuteActivity(a.BackfillPages, in)
	require.NoError(t, err)
	var res activities.BackfillPagesResult
	require.NoError(t, v.Get(&res))
	return res
}

// requireUserRows requires n rows in dbURL's users table.
func requireUserRows(t *testing.T, dbURL string, n int) {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), dbURL)
	require.NoError(t, err)
	defer conn.Close(context.Background())
	var rows int
	require.NoError(t, conn.QueryRow(context.Background(), `select count(*) from users`).Scan(&rows))
	require.Equal(t, n, rows)
}

// usersIn counts the users window w holds.
func usersIn(users []clerkfake.User, w activities.BackfillWindow) int {
	in := 0
	for _, u := range users {
		if at := u.CreatedAt.UnixMilli(); at >= w.Cursor.CreatedAt && (w.Before == 0 || at < w.Before) {
			in++
		}
	}
	return in
}

// backfillSlices calls BackfillPages as BackfillWorkflow does, a slice at
// a time, each resuming where the last left every window, until the
// listing is done; it returns every call's result.
func backfillSlices(t *testing.T, a *activities.Activities, slice time.Duration) []activities.BackfillPagesResult {
	t.Helper()
	var results []activities.BackfillPagesResult
	in := activities.BackfillPagesInput{Run: "windows", MaxDuration: slice}
	for len(results) < 200 {
		res := backfillPages(t, a, in)
		results = append(results, res)
		if res.Cursor.Done {
			return results
		}
		in.Cursor, in.Windows = res.Cursor, res.Windows
	}
	t.Fatal("the listing never finished")
	return nil
}

// The listing read in windows side by side, a slice at a time (each call
// resuming every window where it was, as a retry after a crash does),
// writes every user once: none skipped at a window's bounds or in the
// millisecond a bulk import shares, none read twice.
func TestBackfillPages_WindowsReadEveryUserOnce(t *testing.T) {
	t.Parallel()
	const n = 6_000
	fake, a, dbURL := windowedListing(t, n, 1_200, 4)
	results := backfillSlices(t, a, time.Nanosecond) // a page a window a call
	windows := results[0].Windows
	require.Greater(t, len(windows), 1, "the listing was not split into windows")
	for i, w := range windows { // about a quarter each: none holds up the run
		in := usersIn(fake.Users(), w)
		require.LessOrEqual(t, in, n/4*3/2, "window %d of %d holds %d users", i, len(windows), in)
	}
	require.Greater(t, len(results), 2, "one call read it all: nothing resumed")
	var seen, inserted int
	for _, r := range results { // each call counts its own pages
		seen, inserted = seen+r.Stats.Seen, inserted+r.Stats.Inserted
	}
	require.Equal(t, n, seen, "users listed")
	require.Equal(t, n, inserted, "users written")
	last := results[len(results)-1]
	for _, w := range last.Windows {
		require.True(t, w.Cursor.Done, "window %+v", w)
	}
	requireUserRows(t, dbURL, n)
}

// Rate-limited by Clerk (whose limit is the instance's, which the windows
// share), the windows wait out each 429's Retry-After and the listing
// still ends complete, every 429 counted. (That one 429 holds every
// caller back is clerkapi's TestClient_OneRateLimitPausesEveryCaller.)
func TestBackfillPages_WindowsWaitOutClerks429s(t *testing.T) {
	t.Parallel()
	const n = 3_000
	fake, a, _ := windowedListing(t, n, 0, 2)
	fake.FailListsWith(3, http.StatusTooManyRequests, 1)
	results := backfillSlices(t, a, time.Hour)
	require.Greater(t, len(results[0].Windows), 1, "the listing was not split into windows")
	var seen, limited int
	for _, r := range results {
		seen, limited = seen+r.Stats.Seen, limited+r.Stats.RateLimited
	}
	require.Equal(t, n, seen)
	require.Equal(t, 3, limited, "every 429 counted")
}

// importThenSignups is a fake Clerk of an import of n users 10 ms apart
// and, a month later, late signups a second apart, and activities reading
// it in windows into a database of their own.
func importThenSignups(t *testing.T, n, late, windows int) (*clerkfake.Server, []clerkfake.User, *activities.Activities) {
	t.Helper()
	fake := clerkfake.Start(t)
	created := time.Now().Add(-60 * 24 * time.Hour).Truncate(time.Millisecond)
	users := make([]clerkfake.User, 0, n+late)
	for i := range n + late {
		c := created.Add(time.Duration(i) * 10 * time.Millisecond)
		if i >= n {
			c = created.Add(30*24*time.Hour + time.Duration(i)*time.Second)
		}
		users = append(users, clerkfake.User{ID: fmt.Sprintf("user_imp%05d", i), Email: fmt.Sprintf("i%d@example.com", i), CreatedAt: c, UpdatedAt: c})
	}
	fake.PutUsers(users...)
	st, _ := testenv.Store(t)
	cfg := config.Config{ClerkAPIURL: fake.URL(), ClerkSecretKey: clerkfake.SecretKey}
	return fake, users, &activities.Activities{Store: st, Clerk: clerkapi.New(cfg.ClerkClient(), 0), BackfillWindows: windows}
}

// A listing that keeps the pace of its first page (a bulk import, users
// 10 ms apart) followed a month later by a few signups is planned with one
// count a boundary, beside the total: searching the month between the
// import and the signups by halves took several each. The windows still
// hold about as many users each.
func TestBackfillPages_AnImportIsPlannedWithOneCountABoundary(t *testing.T) {
	t.Parallel()
	const n, late, windows = 12_000, 20, 6
	fake, users, a := importThenSignups(t, n, late, windows)
	results := backfillSlices(t, a, time.Nanosecond)
	require.Len(t, results[0].Windows, windows)
	require.Equal(t, windows, fake.Calls("/v1/users/count"), "the total, then one count a boundary")
	for i, w := range results[0].Windows {
		in := usersIn(users, w)
		require.InDelta(t, (n+late)/windows, in, float64(n/windows/4), "window %d holds %d users", i, in)
	}
	var seen int
	for _, r := range results {
		seen += r.Stats.Seen
	}
	require.Equal(t, n+late, seen)
}

// A listing whose newest users came long after the rest (an import, then
// a month of a few signups) is read without a request for a page of
// nobody: the latest window's reader, once past the import, was thought
// to have thousands of users left in that month (spread evenly between
// the planning's counts), and every reader done with its own window took
// half of it, each a window of no users.
func TestBackfillPages_NoWindowIsSplitOffInAGap(t *testing.T) {
	t.Parallel()
	const n, late, windows = 12_000, 20, 4
	fake, users, a := importThenSignups(t, n, late, windows)
	fake.Pace(20*time.Millisecond, 0) // readers go at one pace, whatever the machine's load
	res := backfillPages(t, a, activities.BackfillPagesInput{Run: "gap", MaxDuration: time.Hour})
	require.True(t, res.Cursor.Done)
	require.Equal(t, n+late, res.Stats.Inserted)
	for i, w := range res.Windows {
		in := usersIn(users, w)
		require.Positive(t, in, "window %d of %d (%+v) holds no user: windows %+v", i, len(res.Windows), w, res.Windows)
	}
}

// Windows planned unevenly (nine tenths of the users in the first) end
// together: the reader of the small window, once done, takes half of what
// the large one has left, and so on, each user still written once.
func TestBackfillPages_AReaderDoneTakesHalfOfTheLargestWindow(t *testing.T) {
	t.Parallel()
	const n = 6_000
	fake, a, dbURL := windowedListing(t, n, 0, 2)
	fake.Pace(20*time.Millisecond, 0) // readers go at one pace, whatever the machine's load
	users := fake.Users()
	split := users[n*9/10].CreatedAt.UnixMilli()
	res := backfillPages(t, a, activities.BackfillPagesInput{Run: "steal", MaxDuration: time.Hour,
		Windows: []activities.BackfillWindow{{Before: split}, {Cursor: activities.BackfillCursor{CreatedAt: split}}}})
	require.True(t, res.Cursor.Done)
	require.Greater(t, len(res.Windows), 2, "no window was split: %+v", res.Windows)
	require.Equal(t, n, res.Stats.Seen, "users listed")
	require.Equal(t, n, res.Stats.Inserted, "users written")
	requireUserRows(t, dbURL, n)
}

// A run whose planning was cut short (the worker killed while the first
// window was read and the bounds sought) is planned again from where that
// window was, rather than read in one to the end.
func TestBackfillPages_APlanningCutShortIsPlannedAgain(t *testing.T) {
	t.Parallel()
	const n = 8_000
	fake, a, _ := windowedListing(t, n, 0, 4)
	from := fake.Users()[1000].CreatedAt.UnixMilli()
	res := backfillPages(t, a, activities.BackfillPagesInput{Run: "replan", MaxDuration: time.Nanosecond,
		Cursor: activities.BackfillCursor{CreatedAt: from}, Windows: []activities.BackfillWindow{{Cursor: activities.BackfillCursor{CreatedAt: from}}}})
	require.Len(t, res.Windows, 4, "windows: %+v", res.Windows)
	for _, w := range res.Windows {
		require.GreaterOrEqual(t, w.Cursor.CreatedAt, from, "a window reads before where the run was: %+v", w)
	}
}

// The run's start asks what the windows are planned from (the total, the
// first page's pace, the newest user) beside its count, and whether Clerk
// has any organization (once: a failing organization endpoint holds no
// run back); BackfillPages' first call, given it, plans the windows with
// one count a boundary and no request of its own before the first window
// reads: a request's latency off every run.
func TestBackfillPages_TheRunsStartPlansTheWindows(t *testing.T) {
	t.Parallel()
	const n, windows = 6_000, 4
	fake, a, dbURL := windowedListing(t, n, 0, windows)
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	env.RegisterActivity(a)
	count := countClerkUsers(t, env, a)
	require.Equal(t, n, count.Total)
	require.NotNil(t, count.Listing, "the listing's extent was not asked")
	require.Equal(t, n, count.Listing.Total)
	require.Equal(t, activities.BackfillOrganizationsResult{Done: true}, *count.NoOrganizations, "Clerk has no organization")
	require.Equal(t, 4, count.Stats.Requests, "the total, the first page, the newest user and a page of organizations")

	counted := fake.Calls("/v1/users/count")
	res := backfillPages(t, a, activities.BackfillPagesInput{Run: "seeded", MaxDuration: time.Hour, Listing: count.Listing})
	require.True(t, res.Cursor.Done)
	require.Len(t, res.Windows, windows)
	require.Equal(t, windows-1, fake.Calls("/v1/users/count")-counted, "one count a boundary, the total not asked again")
	require.Equal(t, n, res.Stats.Inserted)
	requireUserRows(t, dbURL, n)

	fake.FailOrganizationsWith(http.StatusInternalServerError)
	require.Nil(t, countClerkUsers(t, env, a).NoOrganizations, "Clerk did not say: the listing asks in its turn")
	fake.FailOrganizationsWith(0)
	fake.PutOrganizations(clerkfake.Organization{ID: "org_seeded", Name: "Seeded", Slug: "seeded", CreatedAt: time.Now(), UpdatedAt: time.Now()})
	require.Nil(t, countClerkUsers(t, env, a).NoOrganizations, "Clerk has an organization to list")
	fake.DisableOrganizations()
	require.Equal(t, activities.BackfillOrganizationsResult{Done: true, Disabled: true}, *countClerkUsers(t, env, a).NoOrganizations)
}

// countClerkUsers calls CountClerkUsers once.
func countClerkUsers(t *testing.T, env *testsuite.TestActivityEnvironment, a *activities.Activities) activities.ClerkCount {
	t.Helper()
	v, err := env.ExecuteActivity(a.CountClerkUsers)
	require.NoError(t, err)
	var count activities.ClerkCount
	require.NoError(t, v.Get(&count))
	return count
}

// A listing too small for every window to hold three pages is split into
// fewer windows, not read in one. Before, a listing under two pages for
// each of BACKFILL_WINDOWS (12,000 users at the default) was read in one,
// a page at a time: 10,000 users were 20 requests one after the other.
func TestBackfillPages_ASmallListingIsReadInFewerWindows(t *testing.T) {
	t.Parallel()
	const n = 4_600
	_, a, dbURL := windowedListing(t, n, 0, 12)
	results := backfillSlices(t, a, time.Hour)
	require.Len(t, results[0].Windows, 3, "three windows of three pages or more: %+v", results[0].Windows)
	require.Equal(t, n, results[0].Stats.Inserted)
	requireUserRows(t, dbURL, n)
}
