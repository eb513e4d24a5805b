package clerkevent_test

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/clerksync/clerksync/internal/clerkevent"
)

func load(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	require.NoError(t, err)
	return b
}

func TestParse_ClerkPublishedExamples(t *testing.T) {
	t.Parallel()
	created := time.UnixMilli(1654012591514).UTC()
	for _, tc := range []struct {
		file       string
		typ        clerkevent.Type
		last       *string
		version    int64
		externalID *string
		lastSignIn time.Time
	}{
		// The docs example carries instance_id, the catalog one
		// event_attributes: neither is required.
		{"user.created.docs.json", clerkevent.UserCreated, ptr("Example"), 1654012591835, ptr("567772"), created},
		{"user.created.catalog.json", clerkevent.UserCreated, ptr("Example"), 1654012591835, ptr("567772"), created},
		// last_name null stays NULL, as do external_id and last_sign_in_at.
		{"user.updated.catalog.json", clerkevent.UserUpdated, nil, 1654012824306, nil, time.Time{}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			t.Parallel()
			ev, err := clerkevent.Parse(load(t, tc.file), "msg_1")
			require.NoError(t, err)
			var object struct{ ID, Object string }
			require.NoError(t, json.Unmarshal(ev.User.Object, &object), "the whole object, as JSON")
			require.Equal(t, "user_29w83sxmDNGwOuEthce5gg56FcC", object.ID)
			require.Equal(t, "user", object.Object)
			ev.User.Object = nil
			ev.InstanceID = "" // the docs example's (the contract test reads it)
			require.Equal(t, clerkevent.Event{
				ID:      "msg_1",
				Type:    tc.typ,
				ClerkID: "user_29w83sxmDNGwOuEthce5gg56FcC",
				User: &clerkevent.User{
					ClerkID:        "user_29w83sxmDNGwOuEthce5gg56FcC",
					Email:          ptr("example@example.org"),
					FirstName:      ptr("Example"),
					LastName:       tc.last,
					ImageURL:       ptr("https://img.clerk.com/xxxxxx"),
					ClerkCreatedAt: created,
					ClerkUpdatedAt: time.UnixMilli(tc.version).UTC(),
					// The metadata objects are {}: none.
					EmailVerified:  ptr(true),
					EmailAddresses: []string{"example@example.org"},
					ExternalID:     tc.externalID,
					LastSignInAt:   tc.lastSignIn,
				},
				OccurredAt: time.UnixMilli(tc.version).UTC(),
			}, ev)
		})
	}
}

func TestParse_DeletedCarriesOnlyID(t *testing.T) {
	t.Parallel()
	ev, err := clerkevent.Parse(load(t, "user.deleted.catalog.json"), "msg_2")
	require.NoError(t, err)
	require.Equal(t, clerkevent.Event{
		ID: "msg_2", Type: clerkevent.UserDeleted, ClerkID: "user_29wBMCtzATuFJut8jO2VNTVekS4",
		OccurredAt: time.UnixMilli(1661861640000).UTC(),
	}, ev)
}

func TestParse_UserWithoutPrimaryEmailHasNilEmail(t *testing.T) {
	t.Parallel()
	for name, body := range map[string]string{
		"no addresses":         `{"type":"user.created","data":{"id":"user_1","email_addresses":[],"primary_email_address_id":null,"updated_at":5}}`,
		"primary not in list":  `{"type":"user.created","data":{"id":"user_1","email_addresses":[{"id":"idn_a","email_address":"a@b.c"}],"primary_email_address_id":"idn_x","updated_at":5}}`,
		"empty primary string": `{"type":"user.created","data":{"id":"user_1","email_addresses":[{"id":"idn_a","email_address":""}],"primary_email_address_id":"idn_a","updated_at":5}}`,
	} {
		t.Run(name, func(t *testing.T) {
			ev, err := clerkevent.Parse([]byte(body), "")
			require.NoError(t, err)
			require.Nil(t, ev.User.Email)
			require.Nil(t, ev.User.FirstName, "absent names are nil, not empty")
			require.True(t, ev.OccurredAt.IsZero(), "timestamp is optional")
		})
	}
}

func TestParse_PicksPrimaryAmongSeveralAddresses(t *testing.T) {
	t.Parallel()
	body := `{"type":"user.updated","data":{"id":"user_1","updated_at":7,"primary_email_address_id":"idn_b",
		"email_addresses":[{"id":"idn_a","email_address":"old@x.io"},{"id":"idn_b","email_address":"new@x.io"}],
		"some_field_clerk_adds_later":{"nested":[1,2]}},"extra_envelope":true}`
	ev, err := clerkevent.Parse([]byte(body), "")
	require.NoError(t, err)
	require.Equal(t, "new@x.io", *ev.User.Email)
}

func TestParse_Rejects(t *testing.T) {
	t.Parallel()
	for name, body := range map[string]string{
		"not json":              `{"type":`,
		"json array":            `[1,2]`,
		"no type":               `{"data":{"id":"user_1","updated_at":1}}`,
		"created without id":    `{"type":"user.created","data":{"updated_at":1}}`,
		"updated with empty id": `{"type":"user.updated","data":{"id":"","updated_at":1}}`,
		"deleted without id":    `{"type":"user.deleted","data":{"deleted":true}}`,
		"no data":               `{"type":"user.created"}`,
		"null data":             `{"type":"user.updated","data":null}`,
		"data of wrong type":    `{"type":"user.created","data":"user_1"}`,
		"id with spaces":        `{"type":"user.created","data":{"id":"user 1","updated_at":1}}`,
		"id with a slash":       `{"type":"user.deleted","data":{"id":"user_1/../jwks"}}`,
		"id with non-ASCII":     `{"type":"user.deleted","data":{"id":"user_é"}}`,
		"id too long":           `{"type":"user.deleted","data":{"id":"user_` + strings.Repeat("x", 200) + `"}}`,
		"no updated_at":         `{"type":"user.updated","data":{"id":"user_1"}}`,
	} {
		t.Run(name, func(t *testing.T) {
			_, err := clerkevent.Parse([]byte(body), "msg")
			require.ErrorIs(t, err, clerkevent.ErrMalformed)
		})
	}
}

func TestParse_UnhandledTypeIsReportedWithItsType(t *testing.T) {
	t.Parallel()
	ev, err := clerkevent.Parse([]byte(`{"type":"session.created","data":{"id":"sess_1"}}`), "msg")
	require.True(t, errors.Is(err, clerkevent.ErrUnhandledType))
	require.False(t, errors.Is(err, clerkevent.ErrMalformed))
	require.Equal(t, clerkevent.Type("session.created"), ev.Type)
}

func ptr[T any](v T) *T { return &v }

// TestParse_KeepsTheObjectAsClerkSentIt: the object source is Clerk's
// JSON, compacted, not clerk-sdk-go's struct re-encoded: fields the SDK
// does not model (deprovisioned, scim, bypass_client_trust) stay in it,
// and deprovisioned and last_active_at are read as sources of their own.
func TestParse_KeepsTheObjectAsClerkSentIt(t *testing.T) {
	t.Parallel()
	var event map[string]any
	require.NoError(t, json.Unmarshal(load(t, "user.updated.catalog.json"), &event))
	data := event["data"].(map[string]any)
	data["deprovisioned"], data["bypass_client_trust"], data["last_active_at"] = true, true, 1765000000000
	data["scim"] = map[string]any{"enterprise_connection_id": "entconn_1", "external_id": "okta-42"}
	body, err := json.Marshal(event)
	require.NoError(t, err)
	ev, err := clerkevent.Parse(body, "msg_1")
	require.NoError(t, err)
	want, err := json.Marshal(data)
	require.NoError(t, err)
	require.JSONEq(t, string(want), string(ev.User.Object))
	require.NotContains(t, string(ev.User.Object), "\n", "compacted")
	require.True(t, ev.User.Deprovisioned)
	require.Equal(t, time.UnixMilli(1765000000000).UTC(), ev.User.LastActiveAt)

	plain, err := clerkevent.Parse(load(t, "user.updated.catalog.json"), "msg_1")
	require.NoError(t, err)
	require.False(t, plain.User.Deprovisioned)
	require.NotEqual(t, plain.User.ContentHash(), ev.User.ContentHash(), "the new fields are content")
}
