//go:build unix

package testenv_test

import (
	"errors"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/clerksync/clerksync/internal/testsupport/testenv"
)

// TestRefusingAddr_RefusesAndStaysHeld: a connection to the address is
// refused at once, and no server of another test can take the address
// while the test runs, so "nothing answers" stays true.
func TestRefusingAddr_RefusesAndStaysHeld(t *testing.T) {
	addr := testenv.RefusingAddr(t)
	_, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("dial %s: %v, want connection refused", addr, err)
	}
	if ln, err := net.Listen("tcp", addr); err == nil {
		ln.Close()
		t.Fatalf("a listener took %s while it was held", addr)
	}
	for range 1000 {
		if free := testenv.FreeAddr(t); free == addr {
			t.Fatalf("FreeAddr handed out %s while it was held", addr)
		}
	}
}
