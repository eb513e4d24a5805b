package clerkevent_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/clerksync/clerksync/internal/clerkevent"
)

// FuzzParse: any body either parses into an event a workflow can apply, or is
// refused as malformed or unhandled. It never panics. Clerk's published
// examples seed it; testdata/fuzz/FuzzParse holds further seeds that every
// test run replays.
func FuzzParse(f *testing.F) {
	examples, _ := filepath.Glob(filepath.Join("testdata", "*.json"))
	for _, p := range examples {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, "msg_1")
	}
	f.Add([]byte(`{"type":"user.deleted","data":{"id":"user_1","deleted":true}}`), "")
	f.Add([]byte(`{"type":"user.updated","data":{"id":"user_1","updated_at":-5}}`), "msg")
	f.Fuzz(func(t *testing.T, body []byte, svixID string) {
		ev, err := clerkevent.Parse(body, svixID)
		if err != nil {
			if !errors.Is(err, clerkevent.ErrMalformed) && !errors.Is(err, clerkevent.ErrUnhandledType) {
				t.Fatalf("error is neither malformed nor unhandled: %v", err)
			}
			return
		}
		if ev.ID != svixID {
			t.Fatalf("event ID %q, want the svix-id %q", ev.ID, svixID)
		}
		if err := clerkevent.ValidateClerkID(ev.ClerkID); err != nil {
			t.Fatalf("accepted an event with an unusable Clerk ID: %v", err)
		}
		switch ev.Type {
		case clerkevent.UserDeleted:
			if ev.User != nil {
				t.Fatal("a delete carries no user")
			}
		case clerkevent.UserCreated, clerkevent.UserUpdated:
			if ev.User == nil || ev.User.ClerkID != ev.ClerkID || ev.User.ClerkUpdatedAt.IsZero() {
				t.Fatalf("user event without a usable user: %+v", ev.User)
			}
			for _, s := range []*string{ev.User.Email, ev.User.FirstName, ev.User.LastName, ev.User.Username, ev.User.ImageURL} {
				if s != nil && *s == "" {
					t.Fatal("an absent value must be nil, never empty")
				}
			}
		default:
			t.Fatalf("accepted unhandled type %q", ev.Type)
		}
	})
}
