package main

import (
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/converter"

	"github.com/clerksync/clerksync/internal/config"
	"github.com/clerksync/clerksync/internal/payloadcodec"
)

// TestCodecExposed: with payload keys, a starter on an address other than
// loopback refuses to start unless /codec is authenticated (or the
// operator says the network keeps others out), and says what to set.
func TestCodecExposed(t *testing.T) {
	t.Parallel()
	keys, err := payloadcodec.ParseKeys("k1:Y2xlcmtzeW5jIGxvY2FsIGRldmVsb3BtZW50IG9ubHk=")
	require.NoError(t, err)
	for _, tc := range []struct {
		name    string
		cfg     config.Config
		refused bool
	}{
		{"all interfaces, no authentication", config.Config{HTTPAddr: ":8080", PayloadKeys: keys}, true},
		{"a public address, no authentication", config.Config{HTTPAddr: "10.1.2.3:8080", PayloadKeys: keys}, true},
		{"loopback", config.Config{HTTPAddr: "127.0.0.1:8080", PayloadKeys: keys}, false},
		{"localhost", config.Config{HTTPAddr: "localhost:8080", PayloadKeys: keys}, false},
		{"a token", config.Config{HTTPAddr: ":8080", PayloadKeys: keys, CodecAuthToken: "t"}, false},
		{"an issuer", config.Config{HTTPAddr: ":8080", PayloadKeys: keys, CodecOIDCIssuer: "https://sso.example.com", CodecOIDCAudience: "ui"}, false},
		{"said to be safe", config.Config{HTTPAddr: ":8080", PayloadKeys: keys, CodecUnauthenticated: true}, false},
		{"nothing to decrypt", config.Config{HTTPAddr: ":8080"}, false},
	} {
		err := codecExposed(tc.cfg)
		if !tc.refused {
			require.NoError(t, err, tc.name)
			continue
		}
		require.Error(t, err, tc.name)
		require.Contains(t, err.Error(), "CODEC_AUTH_TOKEN", tc.name)
	}
}

// TestWithPayloadKeysHint: a command that met encrypted payloads without
// PAYLOAD_KEYS says which variable is missing and where make run's is.
func TestWithPayloadKeysHint(t *testing.T) {
	t.Parallel()
	err := fmt.Errorf("decode backfill/x state: %w", converter.ErrEncodingIsNotSupported)
	require.ErrorContains(t, withPayloadKeysHint(err, ""), "PAYLOAD_KEYS is not set")
	require.ErrorIs(t, withPayloadKeysHint(err, ""), converter.ErrEncodingIsNotSupported)
	require.Equal(t, err, withPayloadKeysHint(err, "k1:key"), "with keys set the error is another's")
	other := errors.New("connection refused")
	require.Equal(t, other, withPayloadKeysHint(other, ""))
}
