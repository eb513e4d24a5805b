package mapping

import (
	"encoding/json"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/clerksync/clerksync/internal/clerkevent"
)

// everyUserField is a user with every field Clerk sends set.
func everyUserField() clerkevent.User {
	s := func(v string) *string { return &v }
	verified := true
	at := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
	return clerkevent.User{
		ClerkID: "user_1", Email: s("a@example.com"), FirstName: s("Ada"), LastName: s("Lovelace"), Username: s("ada"),
		ImageURL: s("https://img.example/a.png"), ClerkCreatedAt: at, ClerkUpdatedAt: at.Add(time.Hour),
		EmailVerified: &verified, EmailAddresses: []string{"a@example.com", "b@example.com"}, Phone: s("+15555550100"),
		ExternalID: s("42"), PublicMetadata: json.RawMessage(`{"role":"admin"}`), PrivateMetadata: json.RawMessage(`{"plan":"pro"}`),
		UnsafeMetadata: json.RawMessage(`{"theme":"dark"}`), LastSignInAt: at.Add(2 * time.Hour), Banned: true, Locked: true,
		Object: json.RawMessage(`{"id":"user_1"}`), LastActiveAt: at.Add(3 * time.Hour), Deprovisioned: true,
	}
}

// coreUserSources are the fields every user hashes and sends, which Trim
// never drops.
var coreUserSources = []string{SourceClerkID, SourceEmail, SourceFirstName, SourceLastName, SourceUsername, SourceImageURL,
	SourceCreatedAt, SourceUpdatedAt}

// A source Trim drops must count in the user's content hash, which breaks
// ties between two versions with one updated_at: a field left out of it
// lets a stale copy of a user win the tie and stay written. A new source
// fails here until it is hashed (clerkevent.User.extraFields).
func TestUserSources_EachTrimmedSourceIsHashed(t *testing.T) {
	full := everyUserField()
	for _, s := range UserSources {
		if s.Name == "" || s.Value == nil {
			continue // the relation's own columns, and sources computed in SQL
		}
		if s.Drop == nil && s.JSON == nil {
			if !slices.Contains(coreUserSources, s.Name) {
				t.Errorf("source %s: Trim never drops it, but it is no core field; give it a Drop or a JSON accessor", s.Name)
			}
			continue
		}
		without := full
		if s.JSON != nil {
			*s.JSON(&without) = nil
		} else {
			s.Drop(&without)
		}
		if empty(s.Value(full)) || !empty(s.Value(without)) {
			t.Errorf("source %s: the value is %v with the field, %v without; want one, then none", s.Name, s.Value(full), s.Value(without))
		}
		if without.ContentHash() == full.ContentHash() {
			t.Errorf("source %s: not in the content hash; a stale version that differs only there wins a tie", s.Name)
		}
	}
}

// empty reports whether a statement's parameter is no value: nil, a nil
// pointer, false.
func empty(v any) bool { return v == nil || reflect.ValueOf(v).IsZero() }

// Trim keeps exactly what the mapping's columns read and its links need.
func TestTrim_KeepsWhatColumnsAndLinksRead(t *testing.T) {
	full := everyUserField()
	m := &Mapping{Users: &Users{Link: []string{LinkEmail}, Entity: Entity{Columns: []Column{{Name: "phone", Source: SourcePhone},
		{Name: "role", Source: SourcePublicMetadata, Path: []string{"role"}}}}}}
	got := m.Trim(full)
	if got.Phone == nil || *got.Phone != *full.Phone {
		t.Errorf("phone, a column's source, was dropped: %v", got.Phone)
	}
	if got.EmailVerified == nil {
		t.Error("email_verified, which the email link reads, was dropped")
	}
	if got.ExternalID != nil || got.Banned || got.Object != nil || got.EmailAddresses != nil || !got.LastActiveAt.IsZero() {
		t.Errorf("a source no column reads was kept: %+v", got)
	}
	if string(got.PublicMetadata) != `{"role":"admin"}` || got.PrivateMetadata != nil {
		t.Errorf("metadata: public %s, private %s; want the path read and nothing else", got.PublicMetadata, got.PrivateMetadata)
	}
	if *got.Email != *full.Email {
		t.Error("a core field was dropped")
	}
}
