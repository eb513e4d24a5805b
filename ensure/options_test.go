package ensure_test

import (
	"encoding/base64"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"

	"github.com/clerksync/clerksync/ensure"
	"github.com/clerksync/clerksync/internal/payloadcodec"
)

func TestClientOptions_EncryptsAsTheWorkerDoes(t *testing.T) {
	key := "k1:" + base64.StdEncoding.EncodeToString([]byte(strings.Repeat("k", 32)))
	opts, err := ensure.ClientOptions(client.Options{HostPort: "temporal:7233"}, key)
	require.NoError(t, err)
	require.Equal(t, "temporal:7233", opts.HostPort, "the product's own options are kept")
	p, err := opts.DataConverter.ToPayload("user_2abc")
	require.NoError(t, err)
	require.Equal(t, payloadcodec.Encoding, string(p.Metadata["encoding"]))
	require.Equal(t, "k1", string(p.Metadata[payloadcodec.MetadataKeyID]))

	plain, err := ensure.ClientOptions(client.Options{}, "")
	require.NoError(t, err)
	require.Nil(t, plain.DataConverter, "no keys: the SDK's default converter")

	_, err = ensure.ClientOptions(client.Options{}, "k1:short")
	require.ErrorContains(t, err, "PAYLOAD_KEYS key 1")
}
