// Package payloadcodec encrypts every payload clerksync hands to Temporal
// (workflow inputs, signals, activity inputs and results, query answers,
// failure messages) with AES-256-GCM, so whoever reads the Temporal cluster
// reads no email address or name. Keys come from PAYLOAD_KEYS: the first
// encrypts, all decrypt, and each payload names the ID of its key, so keys
// rotate without re-encrypting history.
package payloadcodec

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"google.golang.org/protobuf/proto"
)

// Metadata of an encrypted payload. The original payload (its metadata and
// data) is the plaintext, so decoding restores it exactly.
const (
	// Encoding is the payload's "encoding" metadata once encrypted.
	Encoding = "binary/encrypted"
	// MetadataKeyID names the ID of the key that encrypted the payload.
	MetadataKeyID = "encryption-key-id"
	// MetadataCipher names the cipher, so a future one can be told apart.
	MetadataCipher = "encryption-cipher"
	cipherName     = "AES-256-GCM"
)

// ErrUnknownKey: a payload was encrypted under a key ID that PAYLOAD_KEYS
// does not hold (a key dropped too early, or another deployment's).
var ErrUnknownKey = errors.New("payload encrypted under an unknown key ID")

// key is one named AES-256-GCM key.
type key struct {
	id   string
	aead cipher.AEAD
}

// Keys are the keys of PAYLOAD_KEYS, the encrypting one first.
type Keys struct {
	keys []key
	byID map[string]cipher.AEAD
}

// ParseKeys reads PAYLOAD_KEYS: one or more id:base64key pairs separated by
// commas or spaces, each key 32 bytes (AES-256) in standard or URL-safe
// base64. Errors name a key by its position, never its value. An empty
// string gives nil: no encryption.
func ParseKeys(s string) (*Keys, error) {
	fields := strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\t' })
	if len(fields) == 0 {
		return nil, nil
	}
	ks := &Keys{byID: map[string]cipher.AEAD{}}
	for i, f := range fields {
		id, encoded, ok := strings.Cut(f, ":")
		if !ok || id == "" || encoded == "" {
			return nil, fmt.Errorf("PAYLOAD_KEYS key %d: want id:base64key", i+1)
		}
		if _, dup := ks.byID[id]; dup {
			return nil, fmt.Errorf("PAYLOAD_KEYS key %d: key ID %q appears twice", i+1, id)
		}
		raw, err := decodeBase64(encoded)
		if err != nil {
			return nil, fmt.Errorf("PAYLOAD_KEYS key %d (ID %q): not base64", i+1, id)
		}
		if len(raw) != 32 {
			return nil, fmt.Errorf("PAYLOAD_KEYS key %d (ID %q): %d bytes, want 32 (AES-256; make one with `openssl rand -base64 32`)", i+1, id, len(raw))
		}
		block, err := aes.NewCipher(raw)
		if err != nil {
			return nil, fmt.Errorf("PAYLOAD_KEYS key %d (ID %q): %w", i+1, id, err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("PAYLOAD_KEYS key %d (ID %q): %w", i+1, id, err)
		}
		ks.keys = append(ks.keys, key{id: id, aead: aead})
		ks.byID[id] = aead
	}
	return ks, nil
}

func decodeBase64(s string) ([]byte, error) {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			return b, nil
		}
	}
	return nil, errors.New("not base64")
}

// EncryptingKeyID is the ID of the key new payloads are encrypted with.
func (ks *Keys) EncryptingKeyID() string { return ks.keys[0].id }

// Codec is the converter.PayloadCodec that encrypts with ks's first key and
// decrypts with any of them. Payloads that were never encrypted pass through
// Decode unchanged, so encryption can be turned on under a running system.
func (ks *Keys) Codec() converter.PayloadCodec { return codec{ks} }

type codec struct{ ks *Keys }

func (c codec) Encode(payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	k := c.ks.keys[0]
	out := make([]*commonpb.Payload, len(payloads))
	for i, p := range payloads {
		plain, err := proto.Marshal(p)
		if err != nil {
			return nil, fmt.Errorf("encrypt payload: %w", err)
		}
		nonce := make([]byte, k.aead.NonceSize(), k.aead.NonceSize()+len(plain)+k.aead.Overhead())
		if _, err := rand.Read(nonce); err != nil {
			return nil, fmt.Errorf("encrypt payload: %w", err)
		}
		out[i] = &commonpb.Payload{
			Metadata: map[string][]byte{
				converter.MetadataEncoding: []byte(Encoding),
				MetadataKeyID:              []byte(k.id),
				MetadataCipher:             []byte(cipherName),
			},
			// The key ID is authenticated with the data, so a payload
			// relabelled with another key's ID fails rather than decrypts.
			Data: k.aead.Seal(nonce, nonce, plain, []byte(k.id)),
		}
	}
	return out, nil
}

func (c codec) Decode(payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	out := make([]*commonpb.Payload, len(payloads))
	for i, p := range payloads {
		if string(p.GetMetadata()[converter.MetadataEncoding]) != Encoding {
			out[i] = p // never encrypted
			continue
		}
		id := string(p.GetMetadata()[MetadataKeyID])
		aead, ok := c.ks.byID[id]
		if !ok {
			return nil, fmt.Errorf("%w %q: add that key to PAYLOAD_KEYS (keys drop out only once no history holds payloads under them)", ErrUnknownKey, id)
		}
		data := p.GetData()
		if len(data) < aead.NonceSize() {
			return nil, fmt.Errorf("decrypt payload under key %q: too short", id)
		}
		plain, err := aead.Open(nil, data[:aead.NonceSize()], data[aead.NonceSize():], []byte(id))
		if err != nil {
			return nil, fmt.Errorf("decrypt payload under key %q: %w", id, err)
		}
		var orig commonpb.Payload
		if err := proto.Unmarshal(plain, &orig); err != nil {
			return nil, fmt.Errorf("decrypt payload under key %q: %w", id, err)
		}
		out[i] = &orig
	}
	return out, nil
}

// Apply sets opts to encrypt every payload with ks, failure messages and
// stack traces included (they move into an encrypted payload). A nil ks
// leaves opts as they are.
func Apply(opts *client.Options, ks *Keys) {
	if ks == nil {
		return
	}
	base := opts.DataConverter
	if base == nil {
		base = converter.GetDefaultDataConverter()
	}
	dc := converter.NewCodecDataConverter(base, ks.Codec())
	opts.DataConverter = dc
	opts.FailureConverter = temporal.NewDefaultFailureConverter(temporal.DefaultFailureConverterOptions{
		DataConverter:          dc,
		EncodeCommonAttributes: true,
	})
}
