// Package chaos holds the fault-injection test of clerksync: the worker
// and starter run as real processes, PostgreSQL and Temporal sit behind
// proxies the test cuts, the worker is killed, and the users table must still
// converge to exactly what the webhooks imply. The package has no code of its
// own; `make chaos` runs the full-size run.
package chaos
