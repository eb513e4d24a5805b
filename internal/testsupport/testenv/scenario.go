package testenv

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"regexp"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/clerksync/clerksync/internal/clerkwebhook"
)

// Delivery is one webhook as Svix would send it: a message ID and a body.
// Svix keeps the ID across redeliveries and signs each attempt anew.
type Delivery struct {
	MsgID string
	Body  []byte
}

// Row is the part of a users row a Scenario decides.
type Row struct {
	Email, FirstName, LastName *string
	Version                    time.Time
}

func (r Row) String() string {
	s := func(p *string) string {
		if p == nil {
			return "NULL"
		}
		return *p
	}
	return fmt.Sprintf("{%s %s %s %s}", s(r.Email), s(r.FirstName), s(r.LastName), r.Version.UTC().Format(time.RFC3339Nano))
}

// Scenario is a batch of Clerk webhooks for many users, shuffled and partly
// duplicated, with the table state they must converge to.
type Scenario struct {
	Deliveries []Delivery
	// Live is every user that must have a row, with its newest version.
	Live map[string]Row
	// Deleted is every user that must be absent and tombstoned.
	Deleted map[string]bool
	// ignored users are left out of Compare (see Ignoring).
	ignored map[string]bool
}

// Ignoring returns the scenario with the users clerkIDs left out of
// Compare: users whose rows the test holds back on purpose for a while.
func (s Scenario) Ignoring(clerkIDs []string) Scenario {
	s.ignored = map[string]bool{}
	for _, id := range clerkIDs {
		s.ignored[id] = true
	}
	return s
}

// ScenarioNames matches every name a Scenario gives its users, for
// CheckLogs.
var ScenarioNames = regexp.MustCompile(`First \d+\.\d+|Last-\d+`)

// ScenarioOptions shapes a Scenario.
type ScenarioOptions struct {
	Users int
	// DuplicateRate is the share of deliveries sent twice.
	DuplicateRate float64
	// Unusual adds users whose events are only updates (no create) and users
	// who are only deleted (never seen before).
	Unusual bool
	Seed    uint64
	// Prefix keeps Clerk IDs apart between scenarios sharing a database.
	Prefix string
}

// NewScenario builds users who are created, updated 1-4 times with rising
// versions, and a fifth of them deleted; with Unusual, a tenth only updated
// and a tenth only deleted.
func NewScenario(t testing.TB, o ScenarioOptions) Scenario {
	t.Helper()
	rng := rand.New(rand.NewPCG(o.Seed, 0))
	base := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	s := Scenario{Live: map[string]Row{}, Deleted: map[string]bool{}}
	must := func(b []byte, err error) []byte {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	for i := range o.Users {
		id := fmt.Sprintf("user_%s%04d", o.Prefix, i)
		kind := i % 10
		if o.Unusual && kind == 9 { // a delete of a user never seen
			s.Deliveries = append(s.Deliveries, Delivery{"msg_" + id + "_del", must(clerkwebhook.DeletedEvent(id, base.Add(time.Minute)))})
			s.Deleted[id] = true
			continue
		}
		versions := 2 + rng.IntN(4)
		var last Row
		for k := range versions {
			f := clerkwebhook.UserFields{
				ClerkID: id, FirstName: fmt.Sprintf("First %d.%d", i, k), CreatedAt: base,
				UpdatedAt: base.Add(time.Duration(k) * time.Second),
			}
			if k%2 == 0 { // some versions have no email at all
				f.Email = fmt.Sprintf("u%d.v%d@example.com", i, k)
			}
			if k == versions-1 && i%3 == 0 {
				f.LastName = fmt.Sprintf("Last-%d", i)
			}
			typ := "user.updated"
			if k == 0 && !(o.Unusual && kind == 8) { // kind 8: updates without a create
				typ = "user.created"
			}
			s.Deliveries = append(s.Deliveries, Delivery{fmt.Sprintf("msg_%s_%d", id, k), must(clerkwebhook.UserEvent(typ, f))})
			last = Row{Email: optional(f.Email), FirstName: optional(f.FirstName), LastName: optional(f.LastName), Version: f.UpdatedAt}
		}
		if kind < 2 {
			s.Deliveries = append(s.Deliveries, Delivery{"msg_" + id + "_del", must(clerkwebhook.DeletedEvent(id, base.Add(time.Minute)))})
			s.Deleted[id] = true
		} else {
			s.Live[id] = last
		}
	}
	n := len(s.Deliveries)
	for _, d := range s.Deliveries[:n:n] {
		if rng.Float64() < o.DuplicateRate {
			s.Deliveries = append(s.Deliveries, d)
		}
	}
	rng.Shuffle(len(s.Deliveries), func(i, j int) { s.Deliveries[i], s.Deliveries[j] = s.Deliveries[j], s.Deliveries[i] })
	return s
}

// DeliveryStats counts what sending took.
type DeliveryStats struct {
	Attempts int64
	// Deferred counts the answers that ask Svix to retry later (503, as the
	// starter gives when Temporal is slow to take an event, which a loaded
	// machine makes happen) and connection errors; Refused counts every
	// other non-2xx answer. Each is retried.
	Deferred, Refused int64
}

// Deliver POSTs every delivery to url from senders goroutines, signing each
// attempt with secret as Svix does, and retries any non-2xx answer or
// connection error with backoff, as Svix does, until ctx ends. Starts are
// spread evenly over spread (0: as fast as the senders go).
func Deliver(ctx context.Context, url, secret string, deliveries []Delivery, senders int, spread time.Duration) (DeliveryStats, error) {
	var stats DeliveryStats
	queue := make(chan Delivery)
	var wg sync.WaitGroup
	var firstErr error
	var errOnce sync.Once
	client := &http.Client{Timeout: 20 * time.Second}
	for range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for d := range queue {
				for wait := 100 * time.Millisecond; ; wait = min(2*wait, 2*time.Second) {
					atomic.AddInt64(&stats.Attempts, 1)
					status, err := post(ctx, client, url, secret, d)
					if err != nil {
						errOnce.Do(func() { firstErr = err })
						return
					}
					switch {
					case status/100 == 2:
					case status == 0 || status == http.StatusServiceUnavailable:
						atomic.AddInt64(&stats.Deferred, 1)
					default:
						atomic.AddInt64(&stats.Refused, 1)
					}
					if status/100 == 2 {
						break
					}
					select {
					case <-ctx.Done():
						errOnce.Do(func() { firstErr = fmt.Errorf("deliver %s: %w", d.MsgID, ctx.Err()) })
						return
					case <-time.After(wait):
					}
				}
			}
		}()
	}
	start := time.Now()
	for i, d := range deliveries {
		if spread > 0 {
			time.Sleep(time.Until(start.Add(spread * time.Duration(i) / time.Duration(len(deliveries)))))
		}
		select {
		case queue <- d:
		case <-ctx.Done():
		}
	}
	close(queue)
	wg.Wait()
	return stats, firstErr
}

// post sends one attempt and returns the answer's status, 0 for a
// connection error; a non-nil error only for a failure retrying cannot fix
// (a bad secret).
func post(ctx context.Context, client *http.Client, url, secret string, d Delivery) (int, error) {
	h, err := clerkwebhook.Sign(secret, d.MsgID, time.Now(), d.Body)
	if err != nil {
		return 0, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(d.Body))
	if err != nil {
		return 0, err
	}
	req.Header = h
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

// Divergence counts how the table differs from a Scenario.
type Divergence struct {
	Lost, Stale, Resurrected, Duplicate, Unexpected, Untombstoned int
	// BesideTombstone counts rows whose Clerk ID is tombstoned: a deletion
	// that took effect but whose row the product still shows.
	BesideTombstone int
}

// Zero reports full convergence.
func (d Divergence) Zero() bool { return d == Divergence{} }

func (d Divergence) String() string {
	return fmt.Sprintf("%d lost, %d resurrected, %d stale, %d duplicate, %d unexpected, %d deletions not tombstoned, %d rows beside a tombstone",
		d.Lost, d.Resurrected, d.Stale, d.Duplicate, d.Unexpected, d.Untombstoned, d.BesideTombstone)
}

// Querier is what a comparison reads the tables with: a *pgx.Conn, or a
// *pgxpool.Pool for a test whose goroutines read at once.
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// Compare reads clerksync's users table and clerksync.user_tombstones and
// counts the divergence from s.
func (s Scenario) Compare(ctx context.Context, db Querier) (Divergence, error) {
	return s.CompareRows(ctx, db, `select clerk_id, email, first_name, last_name, clerk_updated_at from users`)
}

// CompareRows is Compare for a mapped table: rowsSQL selects each live
// user's Clerk ID, email, first and last name, and version.
func (s Scenario) CompareRows(ctx context.Context, db Querier, rowsSQL string) (Divergence, error) {
	var d Divergence
	rows, err := db.Query(ctx, rowsSQL)
	if err != nil {
		return d, fmt.Errorf("read users: %w", err)
	}
	users := map[string]Row{}
	for rows.Next() {
		var id string
		var r Row
		if err := rows.Scan(&id, &r.Email, &r.FirstName, &r.LastName, &r.Version); err != nil {
			return d, err
		}
		if _, ok := users[id]; ok {
			d.Duplicate++
		}
		users[id] = r
	}
	if err := rows.Err(); err != nil {
		return d, err
	}
	for id := range s.ignored {
		delete(users, id)
	}
	tombstones := map[string]bool{}
	rows, err = db.Query(ctx, `select clerk_id from clerksync.user_tombstones`)
	if err != nil {
		return d, fmt.Errorf("read tombstones: %w", err)
	}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return d, err
		}
		tombstones[id] = true
	}
	if err := rows.Err(); err != nil {
		return d, err
	}
	for id := range s.ignored {
		delete(tombstones, id)
	}
	for id, want := range s.Live {
		if s.ignored[id] {
			continue
		}
		got, ok := users[id]
		switch {
		case !ok:
			d.Lost++
		case got.String() != want.String():
			d.Stale++
		}
	}
	for id := range users {
		if s.Deleted[id] {
			d.Resurrected++
		} else if _, ok := s.Live[id]; !ok {
			d.Unexpected++
		}
	}
	for id := range s.Deleted {
		if !tombstones[id] && !s.ignored[id] {
			d.Untombstoned++
		}
	}
	for id := range users {
		if tombstones[id] {
			d.BesideTombstone++
		}
	}
	for id := range tombstones {
		if !s.Deleted[id] {
			d.Unexpected++
		}
	}
	return d, nil
}

func optional(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
