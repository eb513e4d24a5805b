package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	svix "github.com/svix/svix-webhooks/go"
)

// TestSend_SetsMetadataAndExternalID: `starter send` signs a user event
// carrying the metadata and external_id its flags give, so an adopter can
// rehearse roles kept in public_metadata and legacy rows linked by
// external_id without Clerk; a metadata flag that is not a JSON object is
// refused before anything is sent.
func TestSend_SetsMetadataAndExternalID(t *testing.T) {
	t.Setenv("CLERK_WEBHOOK_SECRET", testSecret)
	wh, err := svix.NewWebhook(testSecret)
	require.NoError(t, err)
	var bodies [][]byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		require.NoError(t, err)
		require.NoError(t, wh.Verify(body, r.Header), "signed with CLERK_WEBHOOK_SECRET")
		bodies = append(bodies, body)
	}))
	t.Cleanup(srv.Close)
	ctx := context.Background()

	var out strings.Builder
	require.NoError(t, send(ctx, []string{"--url", srv.URL, "--id", "user_rehearsal", "--email", "r@example.com",
		"--public-metadata", `{"role":"admin"}`, "--private-metadata", `{"plan":"pro"}`, "--external-id", "42", "--username", "reh"}, &out))
	require.Len(t, bodies, 1)
	var event struct {
		Type string `json:"type"`
		Data struct {
			ID              string          `json:"id"`
			Username        string          `json:"username"`
			ExternalID      *string         `json:"external_id"`
			PublicMetadata  json.RawMessage `json:"public_metadata"`
			PrivateMetadata json.RawMessage `json:"private_metadata"`
			UnsafeMetadata  json.RawMessage `json:"unsafe_metadata"`
		} `json:"data"`
	}
	require.NoError(t, json.Unmarshal(bodies[0], &event))
	require.Equal(t, "user.created", event.Type)
	require.Equal(t, "user_rehearsal", event.Data.ID)
	require.Equal(t, "reh", event.Data.Username)
	require.Equal(t, "42", *event.Data.ExternalID)
	require.JSONEq(t, `{"role":"admin"}`, string(event.Data.PublicMetadata))
	require.JSONEq(t, `{"plan":"pro"}`, string(event.Data.PrivateMetadata))
	require.JSONEq(t, `{}`, string(event.Data.UnsafeMetadata), "left out: empty, as Clerk sends it")

	for _, bad := range []string{`role=admin`, `["admin"]`, `null`} {
		err := send(ctx, []string{"--url", srv.URL, "--public-metadata", bad}, &out)
		require.ErrorContains(t, err, "--public-metadata "+bad+": want a JSON object")
	}
	require.Len(t, bodies, 1, "nothing sent for a refused flag")
}
