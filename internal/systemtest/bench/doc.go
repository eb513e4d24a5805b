// Package bench measures clerksync side by side with a trivial
// Temporal entity workflow on the same dev server, in one run, and writes
// docs/benchmarks.md: `make bench` runs BenchmarkReport. Nothing here ships.
package bench
