package store_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/clerksync/clerksync/internal/store"
	"github.com/clerksync/clerksync/internal/store/migrations"
	"github.com/clerksync/clerksync/internal/testsupport/testenv"
)

// BenchmarkUpsertUser_PoolSize drains a backlog of user writes, as the worker
// does when PostgreSQL returns after an outage (hundreds of retried writes at
// once), through pools of several sizes. It is what store.DefaultMaxConns is
// chosen by:
//
//	go test -run XXX -bench PoolSize -benchtime 20000x ./internal/store
func BenchmarkUpsertUser_PoolSize(b *testing.B) {
	for _, conns := range []int{4, 8, 16, 32} {
		b.Run(fmt.Sprintf("conns=%d", conns), func(b *testing.B) {
			dbURL := testenv.Database(b)
			ctx := context.Background()
			st, err := store.Open(ctx, dbURL+"?pool_max_conns="+fmt.Sprint(conns), store.Layout{})
			if err != nil {
				b.Fatal(err)
			}
			defer st.Close()
			if err := migrations.Apply(ctx, st); err != nil {
				b.Fatal(err)
			}
			var n atomic.Int64
			b.SetParallelism(64) // writers waiting on the pool, as after an outage
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					i := n.Add(1)
					if _, err := st.UpsertUser(ctx, user(fmt.Sprintf("user_pool_%d", i), 1, "Pool"), 0); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "writes/s")
		})
	}
}
