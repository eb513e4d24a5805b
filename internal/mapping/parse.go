package mapping

// Parse's checks of a mapping on its own terms, one line per mistake,
// each naming the entity, the column and the fix.

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// parseEntity checks what every entity's section says (its table, Clerk
// ID column, key, columns, deletion), the columns against sources, and
// refuses a column that is also one of roles (clerk_id, key, and the
// entity's own: a membership's organization and user).
func parseEntity(section string, f entityFile, sources map[string]Kind, what string, roles map[string]string, p *problems) Entity {
	e := Entity{Table: parseTable(section, f.Table, p), ClerkID: f.ClerkID, Key: parseKey(section, f.Key, p),
		Deletion: Deletion{f.Delete.Mode, f.Delete.DeletedAt, f.Delete.Clear}}
	if e.ClerkID == "" && what != "" {
		p.add("%s.clerk_id: missing: name the column holding the %s (it must be unique)", section, what)
	}
	e.Columns = parseColumns(section, sources, f.Columns, p)
	if roles == nil {
		roles = map[string]string{}
	}
	roles[e.ClerkID], roles[e.Key.Column] = "clerk_id", "key"
	checkRoles(section, e.Columns, roles, p)
	checkDeletion(section, e.Deletion, e.Columns, p)
	return e
}

func parseUsers(f *usersFile, p *problems) *Users {
	u := &Users{Entity: parseEntity("users", f.entityFile, userSources, "Clerk user ID", nil, p)}
	for _, c := range u.Columns {
		if c.Source == SourceEmail && len(c.Path) == 0 {
			u.EmailColumn = c.Name
		}
	}
	u.Link = parseLink(f.Link, u.EmailColumn, p)
	return u
}

// parseLink checks users.link: a list of external_id and email, each once,
// email only where a column is mapped from the email source.
func parseLink(link *[]string, emailColumn string, p *problems) []string {
	if link == nil {
		return []string{LinkExternalID}
	}
	out := []string{}
	for _, how := range *link {
		switch {
		case how != LinkExternalID && how != LinkEmail:
			p.add("users.link: %q: want external_id (the row whose key is the user's external_id) or email (the row whose email column holds the user's verified primary email)", how)
		case slices.Contains(out, how):
			p.add("users.link: %s is listed twice", how)
		case how == LinkEmail && emailColumn == "":
			p.add("users.link: email compares the column mapped from the email source, and no column is (map one: email_column: email)")
		default:
			out = append(out, how)
		}
	}
	return out
}

func parseOrganizations(f *orgsFile, p *problems) *Organizations {
	return &Organizations{Entity: parseEntity("organizations", *f, organizationSources, "Clerk organization ID", nil, p)}
}

func parseMemberships(f *membershipsFile, p *problems) *Memberships {
	for name, v := range map[string]string{
		"clerk_id": f.ClerkID, "organization": f.Organization, "user": f.User,
	} {
		if v == "" {
			p.add("memberships.%s: missing: name the column (clerk_id holds the membership ID, orgmem_...; "+
				"organization and user reference the organizations' and the users' keys)", name)
		}
	}
	return &Memberships{Organization: f.Organization, User: f.User,
		Entity: parseEntity("memberships", f.entityFile, membershipSources, "", map[string]string{f.Organization: "organization", f.User: "user"}, p)}
}

// checkRoles refuses a column mapped twice: as a source and in one of the
// entity's own roles (clerk_id, key, ...).
func checkRoles(entity string, cols []Column, roles map[string]string, p *problems) {
	for _, c := range cols {
		if role, ok := roles[c.Name]; ok && c.Name != "" {
			p.add("%s.columns.%s: the column is already the %s; map it once", entity, c.Name, role)
		}
		if c.Source == SourceClerkID {
			p.add("%s.columns.%s: source id is the clerk_id column's; map the Clerk ID once, as clerk_id", entity, c.Name)
		}
	}
}

func checkDeletion(entity string, d Deletion, cols []Column, p *problems) {
	switch d.Delete {
	case "":
		p.add("%s.delete: missing: delete (the row goes, the product's foreign keys cascade) or soft: {deleted_at: <column>, clear: [<columns>]}", entity)
	case Delete:
	case Soft:
		if d.DeletedAt == "" {
			p.add("%s.delete.soft.deleted_at: missing: name the column set to the deletion's time", entity)
		}
		for _, c := range d.Clear {
			if !slices.ContainsFunc(cols, func(m Column) bool { return m.Name == c }) {
				p.add("%s.delete.soft.clear: %s is not a mapped column; clear only columns the mapping writes", entity, c)
			}
		}
	default:
		p.add("%s.delete: %q: want delete or soft", entity, d.Delete)
	}
}

func parseTrials(f *trialsFile, p *problems) *Trials {
	t := &Trials{Table: parseTable("trials", f.Table, p), User: f.User, Key: parseKey("trials", f.Key, p),
		PlanColumn: f.Plan.Column, PlanValue: f.Plan.Value,
		StatusColumn: f.Status.Column, Trialing: f.Status.Trialing, Expired: f.Status.Expired, EndsAt: f.EndsAt}
	for name, v := range map[string]string{"user": t.User, "plan.column": t.PlanColumn, "plan.value": t.PlanValue,
		"status.column": t.StatusColumn, "status.trialing": t.Trialing, "status.expired": t.Expired, "ends_at": t.EndsAt} {
		if v == "" {
			p.add("trials.%s: missing", name)
		}
	}
	t.Columns = parseColumns("trials", userSources, f.Columns, p)
	for _, c := range t.Columns {
		if c.Source != SourceNow {
			p.add("trials.columns.%s: source %s: a trial's further columns take now (the time of the write)", c.Name, c.Source)
		}
	}
	return t
}

func parseTable(entity, name string, p *problems) Table {
	schema, table, ok := strings.Cut(name, ".")
	if !ok || schema == "" || table == "" || strings.Contains(table, ".") {
		p.add("%s.table: %q: want schema.table, such as public.User (names as the database spells them)", entity, name)
	}
	return Table{Schema: schema, Name: table}
}

func parseKey(entity string, k keyFile, p *problems) Key {
	if k.Column == "" {
		p.add("%s.key.column: missing: name the primary key column", entity)
	}
	switch k.Generate {
	case GenerateDefault, GenerateUUID:
	default:
		p.add("%s.key.generate: %q: want uuid, or leave it out for the column's own default", entity, k.Generate)
	}
	return Key(k)
}

func parseColumns(entity string, sources map[string]Kind, cols map[string]columnFile, p *problems) []Column {
	var out []Column
	for name, c := range cols {
		source, rest, hasPath := strings.Cut(c.Source, ".")
		var path []string
		if hasPath {
			path = strings.Split(rest, ".")
			if !slices.Contains(metadataSources, source) || slices.Contains(path, "") {
				p.add("%s.columns.%s: source %q: only a metadata object takes a path, such as public_metadata.role", entity, name, c.Source)
			}
		}
		if _, ok := sources[source]; !ok {
			p.add("%s.columns.%s: source %q: want one of %s", entity, name, c.Source, strings.Join(slices.Sorted(maps.Keys(sources)), ", "))
		}
		if c.Missing != nil {
			switch kind := SourceKind(source); {
			case kind == Time && *c.Missing != MissingNow:
				p.add("%s.columns.%s: missing: %q: a time's missing value is now (the time of the write)", entity, name, *c.Missing)
			case kind == Bool && *c.Missing != "true" && *c.Missing != "false":
				p.add("%s.columns.%s: missing: %q: a boolean's missing value is true or false", entity, name, *c.Missing)
			}
		}
		switch c.On {
		case "", "write", "insert":
		default:
			p.add("%s.columns.%s: on: %q: want insert (written when the row is created, never after), or leave it out", entity, name, c.On)
		}
		if c.Keep && c.On == "insert" {
			p.add("%s.columns.%s: keep and on: insert both say when the row's value stays; write one", entity, name)
		}
		if c.Keep && (source == SourceNow || source == SourceUpdatedAt) {
			p.add("%s.columns.%s: keep: source %s always has a value, so there is never a row's value to keep", entity, name, source)
		}
		exposed := !private(source, path)
		if c.Expose != nil {
			exposed = *c.Expose
		}
		out = append(out, Column{Name: name, Source: source, Path: path, Missing: c.Missing, InsertOnly: c.On == "insert", Exposed: exposed, Keep: c.Keep})
	}
	slices.SortFunc(out, func(a, b Column) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// problems collects a document's mistakes, sorted so the message is stable.
type problems []string

func (p *problems) add(format string, args ...any) { *p = append(*p, fmt.Sprintf(format, args...)) }

func (p problems) err() error {
	if len(p) == 0 {
		return nil
	}
	slices.Sort(p)
	return errors.New(strings.Join(p, "\n"))
}
