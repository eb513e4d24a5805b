package activities_test

import (
	"fmt"
	"testing"
	"time"

	"go.temporal.io/sdk/testsuite"

	"github.com/clerksync/clerksync/activities"
	"github.com/clerksync/clerksync/internal/clerkapi"
	"github.com/clerksync/clerksync/internal/config"
	"github.com/clerksync/clerksync/internal/store"
	"github.com/clerksync/clerksync/internal/testsupport/clerkfake"
	"github.com/clerksync/clerksync/internal/testsupport/testenv"
)

// BenchmarkBackfillPages reads the fake Clerk's listing of 20,000 users
// and writes it, as one BackfillPages call does, into empty tables:
// clerksync's own and the Prisma example's, mapped. It is the backfill's
// own rate, without Temporal around it (make bench measures the whole
// workflow).
func BenchmarkBackfillPages(b *testing.B) {
	const users = 20_000
	fake := clerkfake.Start(b)
	created := time.Now().Add(-30 * 24 * time.Hour).Truncate(time.Millisecond)
	listed := make([]clerkfake.User, users)
	for i := range listed {
		c := created.Add(time.Duration(i) * 10 * time.Millisecond)
		listed[i] = clerkfake.User{ID: fmt.Sprintf("user_bench%06d", i), Email: fmt.Sprintf("bf%d@example.com", i), FirstName: "Backfill",
			CreatedAt: c, UpdatedAt: c}
	}
	fake.PutUsers(listed...)
	if err := fake.Warm(); err != nil {
		b.Fatal(err)
	}
	cfg := config.Config{ClerkAPIURL: fake.URL(), ClerkSecretKey: clerkfake.SecretKey}
	for _, layout := range []struct {
		name string
		open func(testing.TB) *store.Store
	}{
		{"own", func(tb testing.TB) *store.Store { st, _ := testenv.Store(tb); return st }},
		{"prisma", func(tb testing.TB) *store.Store { st, _ := testenv.Prisma.Store(tb, "UTC"); return st }},
	} {
		b.Run(layout.name, func(b *testing.B) {
			b.StopTimer()
			for range b.N {
				// Each round writes every user anew, into a database of its own.
				a := &activities.Activities{Store: layout.open(b), TrialPeriod: time.Hour, Clerk: clerkapi.New(cfg.ClerkClient(), 0)}
				var s testsuite.WorkflowTestSuite
				env := s.NewTestActivityEnvironment()
				env.RegisterActivity(a)
				b.StartTimer()
				v, err := env.ExecuteActivity(a.BackfillPages, activities.BackfillPagesInput{Run: "bench", MaxDuration: time.Hour})
				if err != nil {
					b.Fatal(err)
				}
				var res activities.BackfillPagesResult
				if err := v.Get(&res); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				if res.Stats.Seen != users || res.Stats.Inserted != users {
					b.Fatalf("seen %d and inserted %d of %d users", res.Stats.Seen, res.Stats.Inserted, users)
				}
			}
			b.ReportMetric(float64(b.N*users)/b.Elapsed().Seconds(), "users/s")
		})
	}
}
