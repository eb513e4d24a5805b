package clerkfake

import (
	"cmp"
	_ "embed"
	"encoding/json"
	"maps"
	"net/http"
	"slices"
	"time"
)

var (
	//go:embed testdata/organization.json
	organizationTemplate []byte
	//go:embed testdata/organization_membership.json
	membershipTemplate []byte
	//go:embed testdata/organization_not_enabled.json
	organizationsNotEnabledBody []byte
)

// Organization is what a test sets about a Clerk organization.
type Organization struct {
	ID, Name, Slug string
	CreatedAt      time.Time
	UpdatedAt      time.Time
}

// Membership is what a test sets about a membership.
type Membership struct {
	ID, OrganizationID, UserID, Role string
	CreatedAt                        time.Time
	UpdatedAt                        time.Time
}

// PutOrganizations makes the organizations exist in Clerk (or changes them).
func (s *Server) PutOrganizations(os ...Organization) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.orgs == nil {
		s.orgs, s.members = map[string]Organization{}, map[string]Membership{}
	}
	for _, o := range os {
		s.orgs[o.ID] = o
	}
}

// DeleteOrganization makes the organization and its memberships gone.
func (s *Server) DeleteOrganization(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.orgs, id)
	maps.DeleteFunc(s.members, func(_ string, m Membership) bool { return m.OrganizationID == id })
}

// PutMemberships makes the memberships exist (or changes them).
func (s *Server) PutMemberships(ms ...Membership) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.orgs == nil {
		s.orgs, s.members = map[string]Organization{}, map[string]Membership{}
	}
	for _, m := range ms {
		s.members[m.ID] = m
	}
}

// DeleteMembership makes the membership gone.
func (s *Server) DeleteMembership(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.members, id)
}

// DisableOrganizations makes the fake an instance without the
// Organizations feature: every organization endpoint answers Clerk's 403.
func (s *Server) DisableOrganizations() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.orgsDisabled = true
}

// FailOrganizationsWith makes the organization listing answer status
// (with Clerk's error body), as during a Clerk incident; 0 restores it.
func (s *Server) FailOrganizationsWith(status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.orgsFailWith = status
}

// organizationRoutes adds the organization endpoints to mux.
func (s *Server) organizationRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/organizations", s.orgsEnabled(s.listOrganizations))
	mux.HandleFunc("GET /v1/organizations/{id}", s.orgsEnabled(s.organization))
	mux.HandleFunc("GET /v1/organizations/{id}/memberships", s.orgsEnabled(s.listMemberships))
}

// orgsEnabled answers Clerk's 403 (organization_not_enabled_in_instance)
// instead of h after DisableOrganizations, and the failure
// FailOrganizationsWith sets.
func (s *Server) orgsEnabled(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		disabled, failWith := s.orgsDisabled, s.orgsFailWith
		s.mu.Unlock()
		switch {
		case disabled:
			writeBody(w, http.StatusForbidden, organizationsNotEnabledBody)
		case failWith != 0:
			writeBody(w, failWith, internalErrorBody)
		default:
			h(w, r)
		}
	}
}

// listOrganizations answers GET /v1/organizations as Clerk does:
// {"data": [...], "total_count": N}, newest first unless order_by says
// otherwise, paginated by limit and offset.
func (s *Server) listOrganizations(w http.ResponseWriter, r *http.Request) {
	if s.injectedFailure(w) {
		return
	}
	s.mu.Lock()
	orgs := slices.Collect(maps.Values(s.orgs))
	s.mu.Unlock()
	slices.SortFunc(orgs, func(a, b Organization) int {
		return cmp.Or(cmp.Compare(a.CreatedAt.UnixMilli(), b.CreatedAt.UnixMilli()), cmp.Compare(a.ID, b.ID))
	})
	page, ok := paginate(w, r, orgs, func(o Organization) (string, int64) { return o.ID, o.UpdatedAt.UnixMilli() })
	if !ok {
		return
	}
	data := make([]any, len(page))
	for i, o := range page {
		data[i] = s.organizationObject(o)
	}
	writeList(w, data, len(orgs))
}

func (s *Server) organization(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	o, ok := s.orgs[r.PathValue("id")]
	s.mu.Unlock()
	if !ok {
		writeBody(w, http.StatusNotFound, notFoundBody)
		return
	}
	body, err := json.Marshal(s.organizationObject(o))
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	writeBody(w, http.StatusOK, body)
}

// listMemberships answers GET /v1/organizations/{id}/memberships:
// {"data": [...], "total_count": N}, in order_by's order. Clerk's document
// states no order without one; the fake then answers newest first, so a
// caller that pages by offset must ask for an order.
func (s *Server) listMemberships(w http.ResponseWriter, r *http.Request) {
	if s.injectedFailure(w) {
		return
	}
	id := r.PathValue("id")
	s.mu.Lock()
	o, ok := s.orgs[id]
	var ms []Membership
	for _, m := range s.members {
		if m.OrganizationID == id {
			ms = append(ms, m)
		}
	}
	s.mu.Unlock()
	if !ok {
		writeBody(w, http.StatusNotFound, notFoundBody)
		return
	}
	slices.SortFunc(ms, func(a, b Membership) int {
		return cmp.Or(cmp.Compare(a.CreatedAt.UnixMilli(), b.CreatedAt.UnixMilli()), cmp.Compare(a.ID, b.ID))
	})
	page, ok := paginate(w, r, ms, func(m Membership) (string, int64) { return m.ID, m.UpdatedAt.UnixMilli() })
	if !ok {
		return
	}
	data := make([]any, len(page))
	for i, m := range page {
		obj := cloneTemplate(membershipTemplate)
		obj["id"], obj["role"], obj["role_name"] = m.ID, m.Role, m.Role
		obj["created_at"], obj["updated_at"] = m.CreatedAt.UnixMilli(), m.UpdatedAt.UnixMilli()
		obj["organization"] = s.organizationObject(o)
		pud := obj["public_user_data"].(map[string]any)
		pud["user_id"], pud["identifier"] = m.UserID, m.UserID
		data[i] = obj
	}
	writeList(w, data, len(ms))
}

// organizationObject fills Clerk's organization object
// (testdata/organization.json) with o.
func (s *Server) organizationObject(o Organization) map[string]any {
	obj := cloneTemplate(organizationTemplate)
	obj["id"], obj["name"], obj["slug"] = o.ID, o.Name, o.Slug
	obj["created_at"], obj["updated_at"] = o.CreatedAt.UnixMilli(), o.UpdatedAt.UnixMilli()
	return obj
}

// cloneTemplate decodes a template afresh, so nested objects are not shared.
func cloneTemplate(b []byte) map[string]any {
	var obj map[string]any
	if err := json.Unmarshal(b, &obj); err != nil {
		panic(err) // embedded testdata
	}
	return obj
}

// paginate applies limit (1-500, default 10) and offset.
// paginate answers a listing of organizations or memberships (all, oldest
// first) as parseListing and pageOf read its request, or answers 422 and
// returns false.
func paginate[T any](w http.ResponseWriter, r *http.Request, all []T, key func(T) (string, int64)) ([]T, bool) {
	l, err := parseListing(r.URL.Query(), false)
	if err == nil {
		all, err = pageOf(l, all, key)
	}
	if err != nil {
		writeUnprocessable(w, err)
		return nil, false
	}
	return all, true
}

func writeList(w http.ResponseWriter, data []any, total int) {
	body, err := json.Marshal(map[string]any{"data": data, "total_count": total})
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	writeBody(w, http.StatusOK, body)
}
