package testenv

import (
	"errors"
	"net"
	"sync"
	"testing"
)

// FreeAddr returns a loopback host:port that was free a moment ago, for a
// process the test starts, and that no other FreeAddr call of this test
// binary has returned. The kernel may hand a port it has just freed to the
// next listener that asks; two tests of one package, started side by side,
// would then be given one port for two servers, and one would fail to bind
// or, worse, be answered by the other.
func FreeAddr(t testing.TB) string {
	t.Helper()
	addr, err := loopbackPorts.next(listenLoopback)
	if err != nil {
		t.Fatal(err)
	}
	return addr
}

// loopbackPorts holds every address FreeAddr has returned in this process.
var loopbackPorts = handedOut{addrs: map[string]bool{}}

// handedOut hands out addresses, each at most once.
type handedOut struct {
	mu    sync.Mutex
	addrs map[string]bool
}

// errPortsRepeat: the kernel kept offering ports already handed out.
var errPortsRepeat = errors.New("free address: the kernel keeps offering ports already handed out")

// next returns the first address free returns that was not handed out
// before.
func (h *handedOut) next(free func() (string, error)) (string, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for range 100 {
		addr, err := free()
		if err != nil {
			return "", err
		}
		if !h.addrs[addr] {
			h.addrs[addr] = true
			return addr, nil
		}
	}
	return "", errPortsRepeat
}

// listenLoopback returns a loopback address the kernel chose free, freed.
func listenLoopback() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}
