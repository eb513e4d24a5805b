package clerkapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/clerk/clerk-sdk-go/v2"
	jsonv1 "github.com/go-json-experiment/json/v1"
	"github.com/stretchr/testify/require"

	"github.com/clerksync/clerksync/internal/clerkevent"
	"github.com/clerksync/clerksync/internal/config"
	"github.com/clerksync/clerksync/internal/testsupport/clerkfake"
)

// sdkUserPage is a page of GET /v1/users as clerk-sdk-go's Backend.Call
// reads it: the reading listUsers replaces.
type sdkUserPage []*clerk.User

func (*sdkUserPage) Read(*clerk.APIResponse) {}

// sdkUsers are the SDK's part of a listing's users.
func sdkUsers(us []*clerkevent.ClerkUser) []*clerk.User {
	out := make([]*clerk.User, len(us))
	for i, u := range us {
		out[i] = &u.User
	}
	return out
}

// TestListUsers_DecodesAsTheSDK: a page of Clerk's user objects (the
// fake's and those of Clerk's webhook examples, and one with everything a
// product may map filled in: metadata of every JSON kind, a phone number,
// escapes and characters beyond ASCII) decodes to exactly what
// encoding/json, which clerk-sdk-go uses, makes of it.
func TestListUsers_DecodesAsTheSDK(t *testing.T) {
	t.Parallel()
	template, err := os.ReadFile(filepath.Join("..", "testsupport", "clerkfake", "testdata", "user.json"))
	require.NoError(t, err)
	page := []json.RawMessage{template}
	for _, name := range []string{"user.created.catalog.json", "user.created.docs.json", "user.updated.catalog.json"} {
		raw, err := os.ReadFile(filepath.Join("..", "clerkevent", "testdata", name))
		require.NoError(t, err)
		var event struct {
			Data json.RawMessage `json:"data"`
		}
		require.NoError(t, json.Unmarshal(raw, &event), name)
		page = append(page, event.Data)
	}
	var full map[string]any
	require.NoError(t, json.Unmarshal(template, &full))
	full["id"], full["username"], full["external_id"] = "user_full", "zoë_😀", "ext-\"quoted\"\n"
	full["first_name"], full["last_name"] = "Zoë", "O'Brien \u00e9"
	full["public_metadata"] = map[string]any{"role": "admin", "plan": map[string]any{"seats": 3, "ratio": 2.5, "tags": []any{"a", nil, true}}}
	full["private_metadata"] = map[string]any{"stripe_id": "cus_123"}
	full["unsafe_metadata"] = map[string]any{"theme": "dark"}
	full["primary_phone_number_id"] = "idn_phone"
	full["phone_numbers"] = []any{map[string]any{
		"id": "idn_phone", "object": "phone_number", "phone_number": "+15555550100", "reserved_for_second_factor": false,
		"default_second_factor": false, "reserved": false, "linked_to": []any{}, "created_at": 1677691943000, "updated_at": 1677691949000,
		"verification": map[string]any{"status": "verified", "strategy": "phone_code", "attempts": 1, "expire_at": 1677692549435},
	}}
	full["banned"], full["locked"], full["deprovisioned"] = true, true, true
	raw, err := json.Marshal(full)
	require.NoError(t, err)
	page = append(page, raw)
	body, err := json.Marshal(page)
	require.NoError(t, err)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	}))
	t.Cleanup(srv.Close)

	got, err := clerkAPI(srv.URL, "sk_test_any").listUsers(context.Background(), nil, true)
	require.NoError(t, err)
	var want []*clerk.User
	require.NoError(t, json.Unmarshal(body, &want))
	require.Len(t, got, len(page))
	require.Equal(t, want, sdkUsers(got))
	for i, u := range got {
		require.JSONEq(t, string(page[i]), string(u.Raw), "the object as Clerk sent it")
	}
	require.True(t, got[len(got)-1].Deprovisioned, "a field the SDK does not model")
	withoutRaw, err := clerkAPI(srv.URL, "sk_test_any").listUsers(context.Background(), nil, false)
	require.NoError(t, err)
	require.Nil(t, withoutRaw[0].Raw, "kept only for a layout that stores the object")
	last := got[len(got)-1]
	require.Equal(t, "+15555550100", last.PhoneNumbers[0].PhoneNumber)
	require.JSONEq(t, `{"role":"admin","plan":{"seats":3,"ratio":2.5,"tags":["a",null,true]}}`, string(last.PublicMetadata))
}

// TestListUsers_SpeaksAsTheSDK: listUsers asks as clerk-sdk-go does (key,
// Clerk-API-Version, query) and gets what the SDK gets; a refusal is the
// SDK's *clerk.APIErrorResponse, status, codes and Retry-After alike, so
// retrying classifies both the same.
func TestListUsers_SpeaksAsTheSDK(t *testing.T) {
	t.Parallel()
	fake := clerkfake.Start(t)
	created := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	for i, id := range []string{"user_a", "user_b", "user_c"} {
		c := created.Add(time.Duration(i) * time.Second)
		fake.PutUser(clerkfake.User{ID: id, Email: id + "@example.com", FirstName: "F", CreatedAt: c, UpdatedAt: c})
	}
	ctx := context.Background()
	api := clerkAPI(fake.URL(), clerkfake.SecretKey)
	params := map[string]string{"limit": "2", "order_by": "+created_at", "offset": "1"}

	var want sdkUserPage
	require.NoError(t, api.backend.Call(ctx, get("/users", params), &want))
	sdkHeader := fake.Header("/v1/users")
	got, err := api.listUsers(ctx, params, false)
	require.NoError(t, err)
	require.Equal(t, []*clerk.User(want), sdkUsers(got))
	require.Equal(t, []string{"user_b", "user_c"}, []string{got[0].ID, got[1].ID})
	require.Equal(t, sdkHeader.Get("Clerk-API-Version"), fake.Header("/v1/users").Get("Clerk-API-Version"),
		"clerkAPIVersion is not the version clerk-sdk-go sends: set it to the SDK's")

	refusals := map[string]func(){
		"429 with Retry-After": func() { fake.FailListsWith(1, http.StatusTooManyRequests, 7) },
		"500":                  func() { fake.FailListsWith(1, http.StatusInternalServerError, 0) },
	}
	for name, fail := range refusals {
		fail()
		sdkErr := api.backend.Call(ctx, get("/users", params), &want)
		fail()
		_, err := api.listUsers(ctx, params, false)
		requireSameRefusal(t, name, sdkErr, err)
	}
	badKey := clerkAPI(fake.URL(), "sk_test_wrong")
	sdkErr := badKey.backend.Call(ctx, get("/users", params), &want)
	_, err = badKey.listUsers(ctx, params, false)
	requireSameRefusal(t, "401", sdkErr, err)

	// A JSON body that is not Clerk's error shape: the SDK's bare message.
	odd := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadGateway)
		_, _ = w.Write([]byte(`{"message":"upstream timed out"}`))
	}))
	t.Cleanup(odd.Close)
	oddAPI := clerkAPI(odd.URL, "sk_test_any")
	sdkErr = oddAPI.backend.Call(ctx, get("/users", params), &want)
	_, err = oddAPI.listUsers(ctx, params, false)
	require.Error(t, err)
	require.EqualError(t, err, sdkErr.Error())
}

func clerkAPI(url, key string) *Client {
	cfg := config.Config{ClerkAPIURL: url, ClerkSecretKey: key}
	return New(cfg.ClerkClient(), 0)
}

// requireSameRefusal checks that err is the SDK's sdkErr: the same status,
// codes and Retry-After.
func requireSameRefusal(t *testing.T, name string, sdkErr, err error) {
	t.Helper()
	var want, got *clerk.APIErrorResponse
	require.True(t, errors.As(sdkErr, &want), "%s: the SDK's error %v", name, sdkErr)
	require.True(t, errors.As(err, &got), "%s: %v is not a *clerk.APIErrorResponse", name, err)
	require.Equal(t, want.HTTPStatusCode, got.HTTPStatusCode, name)
	require.Equal(t, want.Errors, got.Errors, name)
	require.Equal(t, retryAfter(want, time.Minute), retryAfter(got, time.Minute), name)
}

// pageSize is the backfill's page, as Clerk's listing allows at most.
const pageSize = 500

// BenchmarkDecodeUserPage decodes a page of 500 of Clerk's user objects
// (the fake's, as listUsers gets them) as clerk-sdk-go's Backend.Call does
// (encoding/json) and as listUsers does (go-json-experiment/json's v1).
func BenchmarkDecodeUserPage(b *testing.B) {
	fake := clerkfake.Start(b)
	created := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	for i := range pageSize {
		c := created.Add(time.Duration(i) * time.Millisecond)
		fake.PutUser(clerkfake.User{ID: fmt.Sprintf("user_bench%06d", i), Email: fmt.Sprintf("b%d@example.com", i), FirstName: "Bench", CreatedAt: c, UpdatedAt: c})
	}
	req, err := http.NewRequest(http.MethodGet, fake.URL()+"/users?limit=500", nil)
	require.NoError(b, err)
	req.Header.Set("Authorization", "Bearer "+clerkfake.SecretKey)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(b, err)
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(b, err)
	for _, decoder := range []struct {
		name      string
		unmarshal func([]byte, any) error
	}{{"encoding_json", json.Unmarshal}, {"json_experiment_v1", jsonv1.Unmarshal}} {
		b.Run(decoder.name, func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				var page []*clerk.User
				if err := decoder.unmarshal(body, &page); err != nil || len(page) != pageSize {
					b.Fatalf("decoded %d users: %v", len(page), err)
				}
			}
		})
	}
}
