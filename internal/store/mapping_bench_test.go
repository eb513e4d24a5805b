package store_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/clerksync/clerksync/internal/clerkevent"
	"github.com/clerksync/clerksync/internal/store"
	"github.com/clerksync/clerksync/internal/testsupport/testenv"
)

// BenchmarkWrites_OwnAndMapped writes new users, with their trials, one at
// a time (a webhook's write) and a page at a time (a backfill's), into
// clerksync's own tables and into the Prisma example's, mapped, side by
// side in one run:
//
//	go test -run XXX -bench OwnAndMapped -benchtime 2000x ./internal/store
func BenchmarkWrites_OwnAndMapped(b *testing.B) {
	layouts := []struct {
		name string
		open func(testing.TB) *store.Store
	}{
		{"own", func(tb testing.TB) *store.Store { st, _ := testenv.Store(tb); return st }},
		{"prisma", func(tb testing.TB) *store.Store { st, _ := testenv.Prisma.Store(tb, "UTC"); return st }},
	}
	created := time.Now().Truncate(time.Millisecond)
	newUser := func(prefix string, i int) clerkevent.User {
		email := fmt.Sprintf("%s%d@example.com", prefix, i)
		return clerkevent.User{ClerkID: fmt.Sprintf("user_%s%07d", prefix, i), Email: &email, ClerkCreatedAt: created, ClerkUpdatedAt: created}
	}
	for _, l := range layouts {
		b.Run("upsert/"+l.name, func(b *testing.B) {
			st := l.open(b)
			ctx := context.Background()
			b.ResetTimer()
			for i := range b.N {
				if _, err := st.UpsertUser(ctx, newUser("up", i), time.Hour); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "users/s")
		})
		b.Run("page/"+l.name, func(b *testing.B) {
			st := l.open(b)
			ctx := context.Background()
			const pageSize = 500
			b.ResetTimer()
			for i := range b.N {
				page := make([]clerkevent.User, pageSize)
				for j := range page {
					page[j] = newUser("pg", i*pageSize+j)
				}
				if _, err := st.WriteUserPage(ctx, "", page, time.Hour); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*pageSize)/b.Elapsed().Seconds(), "users/s")
		})
	}
}
