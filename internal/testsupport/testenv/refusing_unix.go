//go:build unix

package testenv

import (
	"fmt"
	"syscall"
	"testing"
)

// RefusingAddr returns a loopback host:port that refuses every connection
// until the test ends. A socket bound to it, never listening, holds it: a
// port that was merely free a moment ago goes to the next server that asks
// for one (another test's FreeAddr), which then answers in its place.
func RefusingAddr(t testing.TB) string {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatalf("a socket for a refusing address: %v", err)
	}
	t.Cleanup(func() { _ = syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatalf("bind a refusing address: %v", err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatalf("the refusing address's port: %v", err)
	}
	in4, ok := sa.(*syscall.SockaddrInet4)
	if !ok {
		t.Fatalf("the refusing address is a %T, not IPv4", sa)
	}
	return fmt.Sprintf("127.0.0.1:%d", in4.Port)
}
