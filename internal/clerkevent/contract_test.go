package clerkevent_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/stretchr/testify/require"

	"github.com/clerksync/clerksync/internal/clerkevent"
)

// TestContract_TodaysWebhooksAreTheDocumentsAndParse: for every event
// clerksync handles there is a payload of today's shape (the example of
// Clerk's webhook document), it is what the document's schemas describe,
// and clerksync parses it: the subject's ID, the occurrence time (the
// document's examples give seconds, Clerk's payloads milliseconds) and the
// instance it came from.
func TestContract_TodaysWebhooksAreTheDocumentsAndParse(t *testing.T) {
	t.Parallel()
	doc, err := openapi3.NewLoader().LoadFromFile("../../testdata/clerk-openapi/webhooks-2025-04-15.yml")
	require.NoError(t, err)
	hooks, ok := doc.Extensions["x-webhooks"].(map[string]any)
	require.True(t, ok, "the document's x-webhooks")
	handled := []clerkevent.Type{clerkevent.UserCreated, clerkevent.UserUpdated, clerkevent.UserDeleted,
		clerkevent.OrganizationCreated, clerkevent.OrganizationUpdated, clerkevent.OrganizationDeleted,
		clerkevent.MembershipCreated, clerkevent.MembershipUpdated, clerkevent.MembershipDeleted}
	for _, typ := range handled {
		t.Run(string(typ), func(t *testing.T) {
			t.Parallel()
			body, err := os.ReadFile(filepath.Join("testdata", "2025-04-15", string(typ)+".json"))
			require.NoError(t, err, "no payload of today's shape for %s", typ)
			var payload map[string]any
			require.NoError(t, json.Unmarshal(body, &payload))
			require.NoError(t, doc.Components.Schemas["WebhookEventPayload"].Value.VisitJSON(payload), "the envelope")
			data := dataSchema(t, hooks, string(typ))
			require.NoError(t, doc.Components.Schemas[data].Value.VisitJSON(payload["data"]), "data, a %s", data)

			ev, err := clerkevent.Parse(body, "msg_today")
			require.NoError(t, err)
			require.Equal(t, typ, ev.Type)
			require.Equal(t, payload["instance_id"], ev.InstanceID)
			require.Equal(t, time.Unix(int64(payload["timestamp"].(float64)), 0).UTC(), ev.OccurredAt, "the document's seconds")
			subject := payload["data"].(map[string]any)["id"].(string)
			switch {
			case strings.HasPrefix(string(typ), "user."):
				require.Equal(t, subject, ev.ClerkID)
			case strings.HasPrefix(string(typ), "organization."):
				require.Equal(t, subject, ev.OrganizationID)
			default:
				require.Equal(t, subject, ev.Membership.ClerkID)
			}
		})
	}
}

// dataSchema names the components schema of an event's data, as the
// document's x-webhooks entry for it refers to it.
func dataSchema(t *testing.T, hooks map[string]any, typ string) string {
	t.Helper()
	var entry struct {
		Post struct {
			RequestBody struct {
				Content map[string]struct {
					Schema struct {
						AllOf []struct {
							Properties map[string]struct {
								Ref string `json:"$ref"`
							} `json:"properties"`
						} `json:"allOf"`
					} `json:"schema"`
				} `json:"content"`
			} `json:"requestBody"`
		} `json:"post"`
	}
	raw, err := json.Marshal(hooks[typ])
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(raw, &entry))
	for _, part := range entry.Post.RequestBody.Content["application/json"].Schema.AllOf {
		if ref := part.Properties["data"].Ref; ref != "" {
			return ref[strings.LastIndex(ref, "/")+1:]
		}
	}
	t.Fatalf("x-webhooks %s: no data schema", typ)
	return ""
}

// TestParse_AMembershipDeletionNeedsNoMember: Clerk's webhook document
// does not require a membership's public_user_data; a deletion without it
// is parsed (applied by the membership's ID, its member unknown), while a
// creation or an update without it, which could not be written, is
// refused.
func TestParse_AMembershipDeletionNeedsNoMember(t *testing.T) {
	t.Parallel()
	for _, typ := range []clerkevent.Type{clerkevent.MembershipDeleted, clerkevent.MembershipCreated} {
		body, err := os.ReadFile(filepath.Join("testdata", "2025-04-15", string(typ)+".json"))
		require.NoError(t, err)
		var payload map[string]any
		require.NoError(t, json.Unmarshal(body, &payload))
		delete(payload["data"].(map[string]any), "public_user_data")
		body, err = json.Marshal(payload)
		require.NoError(t, err)
		ev, err := clerkevent.Parse(body, "msg_no_member")
		if typ == clerkevent.MembershipCreated {
			require.ErrorIs(t, err, clerkevent.ErrMalformed)
			require.ErrorContains(t, err, "public_user_data.user_id is missing")
			continue
		}
		require.NoError(t, err)
		require.Empty(t, ev.ClerkID)
		require.Empty(t, ev.Membership.UserID)
		require.Equal(t, payload["data"].(map[string]any)["id"], ev.Membership.ClerkID)
		require.NotEmpty(t, ev.OrganizationID)
	}
}
