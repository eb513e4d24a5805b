package telemetry

import (
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
)

// poolCollector exports a pgx pool's statistics, read at each scrape.
type poolCollector struct {
	pool                     *pgxpool.Pool
	conns, max, waits, waitS *prometheus.Desc
}

// PoolCollector exports pool's use: connections by state
// (clerksync_db_pool_connections{state="acquired|idle|constructing"}),
// its size (clerksync_db_pool_max_connections), and the acquisitions that
// found no idle connection and how long they waited
// (clerksync_db_pool_empty_acquires_total,
// clerksync_db_pool_acquire_wait_seconds_total): a pool that keeps its
// callers waiting is too small, or its queries too slow.
func PoolCollector(pool *pgxpool.Pool) prometheus.Collector {
	return &poolCollector{
		pool:  pool,
		conns: prometheus.NewDesc("clerksync_db_pool_connections", "PostgreSQL connections of the process's pool, by state (acquired, idle, constructing).", []string{"state"}, nil),
		max:   prometheus.NewDesc("clerksync_db_pool_max_connections", "The size of the process's PostgreSQL pool (pool_max_conns in DATABASE_URL).", nil, nil),
		waits: prometheus.NewDesc("clerksync_db_pool_empty_acquires_total", "Acquisitions of a PostgreSQL connection that found none idle and waited.", nil, nil),
		waitS: prometheus.NewDesc("clerksync_db_pool_acquire_wait_seconds_total", "Time spent waiting for a PostgreSQL connection, in seconds.", nil, nil),
	}
}

func (c *poolCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.conns
	ch <- c.max
	ch <- c.waits
	ch <- c.waitS
}

func (c *poolCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.pool.Stat()
	ch <- prometheus.MustNewConstMetric(c.conns, prometheus.GaugeValue, float64(s.AcquiredConns()), "acquired")
	ch <- prometheus.MustNewConstMetric(c.conns, prometheus.GaugeValue, float64(s.IdleConns()), "idle")
	ch <- prometheus.MustNewConstMetric(c.conns, prometheus.GaugeValue, float64(s.ConstructingConns()), "constructing")
	ch <- prometheus.MustNewConstMetric(c.max, prometheus.GaugeValue, float64(s.MaxConns()))
	ch <- prometheus.MustNewConstMetric(c.waits, prometheus.CounterValue, float64(s.EmptyAcquireCount()))
	ch <- prometheus.MustNewConstMetric(c.waitS, prometheus.CounterValue, s.EmptyAcquireWaitTime().Seconds())
}
