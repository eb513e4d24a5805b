// Package systemtest holds clerksync's whole-system tests: the starter's
// HTTP service in-process, a real worker on a task queue of each test's
// own, a Temporal dev server and PostgreSQL. Webhooks, ensure, trials,
// readiness, the Temporal budget and the recorded replay histories are
// tested here; chaos/ runs the binaries under injected faults, and bench/
// is `make bench`. Nothing here ships.
package systemtest
