package testenv

import (
	"net"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestHandedOut_NeverTheSameAddressTwice: a port the kernel offers again
// after it was handed out is passed over, not given to a second server.
func TestHandedOut_NeverTheSameAddressTwice(t *testing.T) {
	offers := []string{"127.0.0.1:4000", "127.0.0.1:4000", "127.0.0.1:4000", "127.0.0.1:4001"}
	free := func() (string, error) {
		addr := offers[0]
		offers = offers[1:]
		return addr, nil
	}
	h := handedOut{addrs: map[string]bool{}}
	first, err := h.next(free)
	require.NoError(t, err)
	second, err := h.next(free)
	require.NoError(t, err)
	require.Equal(t, "127.0.0.1:4000", first)
	require.Equal(t, "127.0.0.1:4001", second, "the address handed out first was handed out again")
}

// TestHandedOut_GivesUpOnAKernelThatOffersOnlyOldPorts: no endless loop.
func TestHandedOut_GivesUpOnAKernelThatOffersOnlyOldPorts(t *testing.T) {
	h := handedOut{addrs: map[string]bool{"127.0.0.1:4000": true}}
	_, err := h.next(func() (string, error) { return "127.0.0.1:4000", nil })
	require.ErrorIs(t, err, errPortsRepeat)
}

// TestFreeAddr_Binds: what FreeAddr returns can be listened on.
func TestFreeAddr_Binds(t *testing.T) {
	addr := FreeAddr(t)
	ln, err := net.Listen("tcp", addr)
	require.NoError(t, err)
	ln.Close()
	require.NotEqual(t, addr, FreeAddr(t))
}
