//go:build !unix

package testenv

import "testing"

// RefusingAddr returns a loopback host:port that was free a moment ago;
// where a bound socket cannot hold it (not unix), another test's server
// may take it meanwhile.
func RefusingAddr(t testing.TB) string {
	t.Helper()
	return FreeAddr(t)
}
