package payloadcodec

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

func newKey(t *testing.T) string {
	t.Helper()
	b := make([]byte, 32)
	_, err := rand.Read(b)
	require.NoError(t, err)
	return base64.StdEncoding.EncodeToString(b)
}

func mustKeys(t *testing.T, s string) *Keys {
	t.Helper()
	ks, err := ParseKeys(s)
	require.NoError(t, err)
	return ks
}

func payloadOf(t *testing.T, v any) *commonpb.Payload {
	t.Helper()
	p, err := converter.GetDefaultDataConverter().ToPayload(v)
	require.NoError(t, err)
	return p
}

func TestCodec_RoundTripHidesThePlaintextAndRestoresThePayload(t *testing.T) {
	ks := mustKeys(t, "a:"+newKey(t))
	orig := payloadOf(t, map[string]string{"email": "ada@example.com", "first_name": "Ada"})
	enc, err := ks.Codec().Encode([]*commonpb.Payload{orig})
	require.NoError(t, err)
	require.Len(t, enc, 1)
	require.Equal(t, Encoding, string(enc[0].Metadata[converter.MetadataEncoding]))
	require.Equal(t, "a", string(enc[0].Metadata[MetadataKeyID]))
	raw, err := proto.Marshal(enc[0])
	require.NoError(t, err)
	require.False(t, bytes.Contains(raw, []byte("ada@example.com")))
	require.False(t, bytes.Contains(raw, []byte("json/plain")), "the original encoding is encrypted too")

	dec, err := ks.Codec().Decode(enc)
	require.NoError(t, err)
	require.True(t, proto.Equal(orig, dec[0]))

	again, err := ks.Codec().Encode([]*commonpb.Payload{orig})
	require.NoError(t, err)
	require.NotEqual(t, enc[0].Data, again[0].Data, "a fresh nonce per payload")
}

func TestCodec_PlaintextPayloadsDecodeUnchanged(t *testing.T) {
	ks := mustKeys(t, "a:"+newKey(t))
	plain := payloadOf(t, "written before encryption was turned on")
	dec, err := ks.Codec().Decode([]*commonpb.Payload{plain})
	require.NoError(t, err)
	require.True(t, proto.Equal(plain, dec[0]))
}

func TestCodec_RotationReadsOldKeysAndWritesWithTheFirst(t *testing.T) {
	a, b := "a:"+newKey(t), "b:"+newKey(t)
	old := mustKeys(t, a)
	rotated := mustKeys(t, b+","+a)
	orig := payloadOf(t, "under a")
	underA, err := old.Codec().Encode([]*commonpb.Payload{orig})
	require.NoError(t, err)

	dec, err := rotated.Codec().Decode(underA)
	require.NoError(t, err, "payloads under the old key stay readable")
	require.True(t, proto.Equal(orig, dec[0]))
	underB, err := rotated.Codec().Encode([]*commonpb.Payload{orig})
	require.NoError(t, err)
	require.Equal(t, "b", string(underB[0].Metadata[MetadataKeyID]))
	require.Equal(t, "b", rotated.EncryptingKeyID())

	_, err = mustKeys(t, b).Codec().Decode(underA)
	require.ErrorIs(t, err, ErrUnknownKey)
	require.Contains(t, err.Error(), `"a"`, "the error names the missing key ID")
}

func TestCodec_APayloadRelabelledWithAnotherKeyIDFails(t *testing.T) {
	ks := mustKeys(t, "a:"+newKey(t)+" b:"+newKey(t))
	enc, err := ks.Codec().Encode([]*commonpb.Payload{payloadOf(t, "x")})
	require.NoError(t, err)
	enc[0].Metadata[MetadataKeyID] = []byte("b")
	_, err = ks.Codec().Decode(enc)
	require.Error(t, err)
}

func TestParseKeys_RefusalsNameThePositionNeverTheValue(t *testing.T) {
	good := newKey(t)
	short := base64.StdEncoding.EncodeToString([]byte("sixteen byte key"))
	for _, tc := range []struct {
		in, want string
	}{
		{"a:" + good + ",b" + good, "PAYLOAD_KEYS key 2: want id:base64key"},
		{"a:" + short, `PAYLOAD_KEYS key 1 (ID "a"): 16 bytes, want 32`},
		{"a:" + good + " a:" + good, `PAYLOAD_KEYS key 2: key ID "a" appears twice`},
		{"a:not*base64", `PAYLOAD_KEYS key 1 (ID "a"): not base64`},
		{":" + good, "PAYLOAD_KEYS key 1: want id:base64key"},
	} {
		_, err := ParseKeys(tc.in)
		require.ErrorContains(t, err, tc.want, tc.in)
		require.NotContains(t, err.Error(), good)
		require.NotContains(t, err.Error(), short)
	}
	ks, err := ParseKeys("  ")
	require.NoError(t, err)
	require.Nil(t, ks, "no keys: no encryption")
	_, err = ParseKeys("k1:" + strings.TrimRight(base64.URLEncoding.EncodeToString(make([]byte, 32)), "="))
	require.NoError(t, err, "unpadded URL-safe base64 is accepted")
}

func TestServer_AuthCORSAndDecoding(t *testing.T) {
	ks := mustKeys(t, "a:"+newKey(t))
	srv := httptest.NewServer(Handler(ks, ServerOptions{AuthToken: "s3cret", CORSOrigins: []string{"http://ui.example"}}))
	defer srv.Close()
	enc, err := ks.Codec().Encode([]*commonpb.Payload{payloadOf(t, "Ada Lovelace")})
	require.NoError(t, err)
	body, err := protojson.Marshal(&commonpb.Payloads{Payloads: enc})
	require.NoError(t, err)

	post := func(auth string) *http.Response {
		req, err := http.NewRequest(http.MethodPost, srv.URL+"/codec/decode", bytes.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/json")
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		return resp
	}
	for _, auth := range []string{"", "Bearer wrong", "s3cret", "Basic s3cret"} {
		resp := post(auth)
		resp.Body.Close()
		require.Equal(t, http.StatusUnauthorized, resp.StatusCode, "auth %q", auth)
	}
	resp := post("bearer s3cret")
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var out bytes.Buffer
	_, err = out.ReadFrom(resp.Body)
	require.NoError(t, err)
	var decoded commonpb.Payloads
	require.NoError(t, protojson.Unmarshal(out.Bytes(), &decoded))
	var s string
	require.NoError(t, converter.GetDefaultDataConverter().FromPayload(decoded.Payloads[0], &s))
	require.Equal(t, "Ada Lovelace", s)

	preflight := func(origin string) *http.Response {
		req, err := http.NewRequest(http.MethodOptions, srv.URL+"/codec/decode", nil)
		require.NoError(t, err)
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", "POST")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp
	}
	ok := preflight("http://ui.example")
	require.Equal(t, http.StatusNoContent, ok.StatusCode)
	require.Equal(t, "http://ui.example", ok.Header.Get("Access-Control-Allow-Origin"))
	require.Contains(t, ok.Header.Get("Access-Control-Allow-Headers"), "Authorization")
	refused := preflight("http://evil.example")
	require.Equal(t, http.StatusForbidden, refused.StatusCode)
	require.Empty(t, refused.Header.Get("Access-Control-Allow-Origin"), "no CORS grant for an unlisted origin")
}

func TestServer_UnknownKeyIsAClearError(t *testing.T) {
	writer := mustKeys(t, "old:"+newKey(t))
	enc, err := writer.Codec().Encode([]*commonpb.Payload{payloadOf(t, "x")})
	require.NoError(t, err)
	body, err := protojson.Marshal(&commonpb.Payloads{Payloads: enc})
	require.NoError(t, err)
	srv := httptest.NewServer(Handler(mustKeys(t, "new:"+newKey(t)), ServerOptions{}))
	defer srv.Close()
	resp, err := http.Post(srv.URL+"/codec/decode", "application/json", bytes.NewReader(body))
	require.NoError(t, err)
	defer resp.Body.Close()
	var msg bytes.Buffer
	_, _ = msg.ReadFrom(resp.Body)
	require.Equal(t, http.StatusBadRequest, resp.StatusCode)
	require.Contains(t, msg.String(), `unknown key ID "old"`)
}
