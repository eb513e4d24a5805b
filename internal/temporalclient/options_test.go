package temporalclient

import (
	"log/slog"
	"testing"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"

	"github.com/clerksync/clerksync/internal/config"
)

// The client the worker and the starter dial compresses as
// TEMPORAL_GRPC_COMPRESSION says: the SDK's own default is gzip, so a
// setting that did not reach the options would go unnoticed.
func TestOptions_CompressesAsConfigured(t *testing.T) {
	for value, want := range map[string]client.GrpcCompression{"none": &client.GrpcCompressionNone{}, "gzip": &client.GrpcCompressionGzip{}} {
		t.Setenv("TEMPORAL_GRPC_COMPRESSION", value)
		cfg, err := config.Load()
		require.NoError(t, err)
		opts, err := Options(cfg, slog.New(slog.DiscardHandler), nil)
		require.NoError(t, err)
		require.IsType(t, want, opts.ConnectionOptions.GrpcCompression, value)
	}
}
