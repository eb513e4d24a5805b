package mapping

import (
	"bytes"
	"encoding/json"
	"slices"

	"github.com/clerksync/clerksync/internal/clerkevent"
)

// Trim returns u with only what of Clerk's user object m writes beyond
// clerksync's own fields (email, names, username, image, times), and the
// external_id and email verification a mapping links the app's rows from
// before Clerk by (Users.Link): what a
// product does not store does not travel through Temporal's histories. A
// JSON source every column of which takes a path (public_metadata.role)
// keeps only those paths. A nil m (clerksync's own tables) keeps none of
// them.
func (m *Mapping) Trim(u clerkevent.User) clerkevent.User {
	var (
		cols  []Column
		links = func(string) bool { return false }
	)
	if m != nil {
		cols, links = m.Users.Columns, m.Users.Links
	}
	trim(UserSources, &u, cols, links)
	return u
}

// TrimOrganization returns o with only the metadata m writes: none for
// clerksync's own tables (a nil m) or with organizations off.
func (m *Mapping) TrimOrganization(o clerkevent.Organization) clerkevent.Organization {
	if m == nil || m.Organizations == nil {
		trim(OrganizationSources, &o, nil, nil)
	} else {
		trim(OrganizationSources, &o, m.Organizations.Columns, nil)
	}
	return o
}

// TrimMembership returns ms with only the fields m writes, its
// organization trimmed too.
func (m *Mapping) TrimMembership(ms clerkevent.Membership) clerkevent.Membership {
	if m == nil || m.Memberships == nil {
		trim(MembershipSources, &ms, nil, nil)
	} else {
		trim(MembershipSources, &ms, m.Memberships.Columns, nil)
	}
	ms.Organization = m.TrimOrganization(ms.Organization)
	return ms
}

// usesSource reports whether a column of cols reads source.
func usesSource(cols []Column, source string) bool {
	return slices.ContainsFunc(cols, func(c Column) bool { return c.Source == source })
}

// TrimEvent trims an event's user, organization or membership as Trim
// does a user, for the starter to hand Temporal no field the tables do not
// store.
func (m *Mapping) TrimEvent(ev clerkevent.Event) clerkevent.Event {
	if ev.User != nil {
		u := m.Trim(*ev.User)
		ev.User = &u
	}
	if ev.Organization != nil {
		o := m.TrimOrganization(*ev.Organization)
		ev.Organization = &o
	}
	if ev.Membership != nil {
		ms := m.TrimMembership(*ev.Membership)
		ev.Membership = &ms
	}
	return ev
}

// NormalizeUser maps a user from Clerk's API to what m writes:
// clerkevent.NormalizeUser, trimmed as Trim does, the whole object
// encoded only when m stores it.
func (m *Mapping) NormalizeUser(cu *clerkevent.ClerkUser) (clerkevent.User, error) {
	normalize := clerkevent.NormalizeUserFields
	if m.Uses(SourceObject) {
		normalize = clerkevent.NormalizeUser
	}
	u, err := normalize(cu)
	if err != nil {
		return clerkevent.User{}, err
	}
	return m.Trim(u), nil
}

// OrganizationsOff reports whether organizations are not kept: a mapping
// that says organizations: off (clerksync's own tables, a nil m, keep
// them).
func (m *Mapping) OrganizationsOff() bool { return m != nil && m.Organizations == nil }

// kept is what of raw, a JSON source's value, the columns cols read: all
// of it when a column takes it whole, only the paths they take when each
// takes a path, nil when none takes it.
func kept(raw json.RawMessage, cols []Column, source string) json.RawMessage {
	var paths [][]string
	for _, c := range cols {
		if c.Source != source {
			continue
		}
		if len(c.Path) == 0 {
			return raw
		}
		paths = append(paths, c.Path)
	}
	if paths == nil || len(raw) == 0 {
		return nil
	}
	return project(raw, paths)
}

// project returns the object raw with only the values at paths (a key,
// and the keys below it), nil when none of them is there: a path that
// leads nowhere reads as no value in the SQL, as it did on the whole.
func project(raw json.RawMessage, paths [][]string) json.RawMessage {
	var whole map[string]any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber() // numbers as Clerk wrote them
	if dec.Decode(&whole) != nil {
		return nil // not an object: no path leads into it
	}
	out := map[string]any{}
	for _, p := range paths {
		copyPath(whole, out, p)
	}
	if len(out) == 0 {
		return nil
	}
	b, err := json.Marshal(out)
	if err != nil {
		return nil // unreachable: decoded JSON encodes
	}
	return b
}

// copyPath copies the value at path from one object to another, making
// the objects on the way.
func copyPath(from, to map[string]any, path []string) {
	v, ok := from[path[0]]
	if !ok {
		return
	}
	if len(path) == 1 {
		to[path[0]] = v
		return
	}
	below, ok := v.(map[string]any)
	if !ok {
		return
	}
	into, _ := to[path[0]].(map[string]any)
	if into == nil {
		into = map[string]any{}
		to[path[0]] = into
	}
	copyPath(below, into, path[1:])
}
