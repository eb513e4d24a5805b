package clerkfake

import (
	"encoding/json"
	"maps"
	"runtime"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"
)

// The users' JSON, in Clerk's shape, encoded once each.

// Warm encodes every user's JSON ahead of time, as Clerk's own servers
// would serve it: a benchmark then measures clerksync on this machine's
// cores, not the fake's encoding.
// The users are encoded on every core: a million take a while.
func (s *Server) Warm() error {
	users := s.Users()
	var g errgroup.Group
	workers := runtime.GOMAXPROCS(0)
	for w := range workers {
		g.Go(func() error {
			for i := w; i < len(users); i += workers {
				if _, err := s.cachedJSON(users[i]); err != nil {
					return err
				}
			}
			return nil
		})
	}
	return g.Wait()
}

// cachedJSON is userJSON, computed once per version of the user.
func (s *Server) cachedJSON(u User) ([]byte, error) {
	s.mu.Lock()
	b, ok := s.encoded[u.ID]
	s.mu.Unlock()
	if ok {
		return b, nil
	}
	b, err := s.userJSON(u)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	if cur, ok := s.users[u.ID]; ok && cur == u {
		s.encoded[u.ID] = b
	}
	s.mu.Unlock()
	return b, nil
}

// userJSON fills Clerk's user object (testdata/user.json) with u, keeping
// every other field Clerk sends.
func (s *Server) userJSON(u User) ([]byte, error) {
	obj := maps.Clone(s.template)
	addresses := obj["email_addresses"].([]any)
	first := maps.Clone(addresses[0].(map[string]any))
	obj["email_addresses"] = []any{first}
	obj["id"] = u.ID
	obj["first_name"] = nullable(u.FirstName)
	obj["last_name"] = nullable(u.LastName)
	obj["created_at"] = u.CreatedAt.UnixMilli()
	obj["updated_at"] = u.UpdatedAt.UnixMilli()
	if u.Email == "" {
		obj["email_addresses"] = []any{}
		obj["primary_email_address_id"] = nil
	} else {
		addr := first
		addr["id"] = "idn_" + strings.TrimPrefix(u.ID, "user_")
		addr["email_address"] = u.Email
		obj["primary_email_address_id"] = addr["id"]
		if u.EmailUnverified {
			verification := maps.Clone(addr["verification"].(map[string]any))
			verification["status"] = "unverified"
			addr["verification"] = verification
		}
	}
	obj["external_id"] = nullable(u.ExternalID)
	obj["deprovisioned"] = u.Deprovisioned
	if u.OAuthProvider != "" {
		obj["external_accounts"] = []any{map[string]any{
			"object": "external_account", "id": "eac_" + strings.TrimPrefix(u.ID, "user_"), "provider": u.OAuthProvider,
			"identification_id": "idn_oauth_" + strings.TrimPrefix(u.ID, "user_"), "provider_user_id": "1" + strings.TrimPrefix(u.ID, "user_"),
			"approved_scopes": "email profile", "email_address": u.Email, "email_address_verified": true,
			"first_name": u.FirstName, "last_name": u.LastName, "avatar_url": "", "image_url": nil, "username": nil, "phone_number": nil,
			"public_metadata": map[string]any{}, "label": nil, "created_at": u.CreatedAt.UnixMilli(), "updated_at": u.CreatedAt.UnixMilli(),
			"verification": map[string]any{"object": "verification_oauth", "status": "verified", "strategy": u.OAuthProvider,
				"attempts": nil, "expire_at": u.CreatedAt.Add(10 * time.Minute).UnixMilli()},
		}}
	}
	if u.Phone != "" {
		id := "idn_phone_" + strings.TrimPrefix(u.ID, "user_")
		obj["primary_phone_number_id"] = id
		obj["phone_numbers"] = []any{map[string]any{
			"id": id, "object": "phone_number", "phone_number": u.Phone, "reserved_for_second_factor": false,
			"default_second_factor": false, "reserved": false, "linked_to": []any{},
			"verification": map[string]any{"object": "verification_otp", "status": "verified", "strategy": "phone_code", "attempts": 1,
				"expire_at": u.CreatedAt.Add(10 * time.Minute).UnixMilli()},
			"created_at": u.CreatedAt.UnixMilli(), "updated_at": u.CreatedAt.UnixMilli(),
		}}
	}
	if u.PublicMetadata != "" {
		obj["public_metadata"] = json.RawMessage(u.PublicMetadata)
	}
	return json.Marshal(obj)
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}
