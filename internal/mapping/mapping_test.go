package mapping

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/clerksync/clerksync/internal/clerkevent"
)

// TestLoad_TheExamplesParse: both examples of docs/examples are valid
// mappings, read as their comments say.
func TestLoad_TheExamplesParse(t *testing.T) {
	t.Parallel()
	m, err := Load("../../docs/examples/prisma/clerksync.yaml")
	require.NoError(t, err)
	require.Equal(t, Table{Schema: "public", Name: "User"}, m.Users.Table)
	require.Equal(t, Key{Column: "id", Generate: GenerateUUID}, m.Users.Key)
	require.Equal(t, Column{Name: "createdAt", Source: SourceNow, InsertOnly: true, Exposed: true}, m.Users.Columns[0])
	require.Equal(t, "", *m.Users.Columns[1].Missing, "email: {source: email, missing: \"\"}")
	require.Equal(t, "trialEndsAt", m.Trials.EndsAt)
	require.Equal(t, []string{LinkExternalID}, m.Users.Link, "the default: by external_id alone")

	m, err = Load("../../docs/examples/invoicing/clerksync.yaml")
	require.NoError(t, err)
	require.Equal(t, []string{LinkExternalID, LinkEmail}, m.Users.Link)
	require.Equal(t, "email", m.Users.EmailColumn)

	m, err = Load("../../docs/examples/snake_case/clerksync.yaml")
	require.NoError(t, err)
	require.Equal(t, Soft, m.Users.Delete)
	require.Equal(t, "deleted_at", m.Users.DeletedAt)
	require.Len(t, m.Users.Clear, 10)
	require.Contains(t, m.Users.Columns, Column{Name: "role", Source: SourcePublicMetadata, Path: []string{"role"}, Exposed: true})
	require.Contains(t, m.Users.Columns, Column{Name: "profile", Source: SourceObject}, "the whole object is private by default")
}

// TestParse_MistakesAreNamed: each mistake a mapping can make on its own
// terms is refused, naming where it is and the fix.
func TestParse_MistakesAreNamed(t *testing.T) {
	t.Parallel()
	good, err := os.ReadFile("../../docs/examples/prisma/clerksync.yaml")
	require.NoError(t, err)
	for _, c := range []struct{ from, to, want string }{
		{"firstName: first_name", "firstName: given_name", `users.columns.firstName: source "given_name": want one of`},
		{"table: public.User", "table: User", `users.table: "User": want schema.table`},
		{"organizations: off", "", "organizations: missing: map the organization table (and memberships), or write organizations: off"},
		{"organizations: off", "organizations: off\nmemberships: {table: public.m}", "memberships: organizations are off"},
		{"organizations: off", "organizations: {table: public.Team, clerk_id: clerkId, key: {column: id}, delete: delete}",
			"memberships: missing: with organizations mapped, map the membership table too"},
		{"organizations: off", "organizations: {table: public.Team, clerk_id: clerkId, key: {column: id}, columns: {title: username}, delete: delete}",
			`organizations.columns.title: source "username": want one of created_at, image_url, name, now, private_metadata, public_metadata, slug, updated_at`},
		{"delete: delete", "delete: erase", `users.delete: "erase": want delete or soft`},
		{"key: {column: id, generate: uuid}\n  columns:\n    # NOT NULL", "key: {column: id, generate: cuid}\n  columns:\n    # NOT NULL",
			`users.key.generate: "cuid": want uuid`},
		{"updatedAt: now             #", "updatedAt: {source: now, on: update} #", `users.columns.updatedAt: on: "update": want insert`},
		{"clerk_id: clerkId ", "clerk_ids: clerkId ", "field clerk_ids not found"},
		// Misspelt keys inside what a mapping's own decoding reads.
		{"createdAt: {source: now, on: insert}", "createdAt: {source: now, onn: insert}", `unknown key "onn": want source, missing, on, expose, keep`},
		{"key: {column: id, generate: uuid}\n  columns:\n    # NOT NULL", "key: {column: id, generate: uuid, genrate: uuid}\n  columns:\n    # NOT NULL",
			`unknown key "genrate"`},
		{"plan: {column: plan, value: trial}", "plan: {column: plan, valu: trial}", `unknown key "valu": want column, value`},
		{"status: {column: status, trialing: trialing, expired: expired}", "status: {column: status, trialing: trialing, expird: expired}",
			`unknown key "expird"`},
		{"  columns:\n    createdAt: now\n    updatedAt: now", "  colums:\n    createdAt: now\n    updatedAt: now", `unknown key "colums"`},
		{"delete: delete", "delete: {soft: {deleted_at: x, clera: [email]}}", `unknown key "clera": want deleted_at, clear`},
		{"delete: delete", "delete: {sfot: {deleted_at: x}}", `unknown key "sfot": want soft`},
		{"lastName: last_name", "lastName: last_name\n    clerkId: id", "users.columns.clerkId: the column is already the clerk_id"},
		{"  delete: delete", "  link: [phone]\n  delete: delete", `users.link: "phone": want external_id`},
		{"  delete: delete", "  link: [email, email]\n  delete: delete", "users.link: email is listed twice"},
	} {
		require.Contains(t, string(good), c.from)
		_, err := Parse([]byte(strings.Replace(string(good), c.from, c.to, 1)))
		require.ErrorContains(t, err, c.want, "from %q to %q", c.from, c.to)
	}
	_, err = Parse([]byte(strings.NewReplacer("email: {source: email,", "email: {source: username,",
		"  delete: delete", "  link: [email]\n  delete: delete").Replace(string(good))))
	require.ErrorContains(t, err, "users.link: email compares the column mapped from the email source, and no column is")
	_, err = Parse([]byte("organizations: off\n"))
	require.ErrorContains(t, err, "users: missing")
}

// TestTrim_KeepsWhatTheMappingWrites: organization metadata and membership
// permissions reach Temporal only where a mapping writes them.
func TestTrim_KeepsWhatTheMappingWrites(t *testing.T) {
	t.Parallel()
	ms := clerkevent.Membership{ClerkID: "orgmem_1", Role: "org:admin", Permissions: []string{"org:sys_memberships:manage"},
		PublicMetadata: json.RawMessage(`{"a":1}`),
		Organization:   clerkevent.Organization{ClerkID: "org_1", PublicMetadata: json.RawMessage(`{"plan":"pro"}`), PrivateMetadata: json.RawMessage(`{"secret":1}`)}}
	var own *Mapping
	trimmed := own.TrimMembership(ms)
	require.Nil(t, trimmed.Permissions, "clerksync's own tables keep none")
	require.Nil(t, trimmed.PublicMetadata)
	require.Nil(t, trimmed.Organization.PublicMetadata)
	require.Nil(t, trimmed.Organization.PrivateMetadata)

	m, err := Load("../../docs/examples/snake_case/clerksync.yaml")
	require.NoError(t, err)
	trimmed = m.TrimMembership(ms)
	require.Equal(t, ms.Permissions, trimmed.Permissions, "mapped")
	require.Nil(t, trimmed.PublicMetadata, "not mapped")
	require.JSONEq(t, `{"plan":"pro"}`, string(trimmed.Organization.PublicMetadata), "mapped by path")
	require.Nil(t, trimmed.Organization.PrivateMetadata, "private metadata stays out of Temporal")
	require.Equal(t, "org:admin", trimmed.Role)
}

// TestTrim_OnlyTheMappedPathsTravel: with a metadata source mapped by path,
// the event that goes to Temporal holds only the mapped paths of it (no
// other key of the user's metadata, no private metadata through the whole
// object); a source mapped whole travels whole, and one not mapped not at
// all.
func TestTrim_OnlyTheMappedPathsTravel(t *testing.T) {
	t.Parallel()
	m, err := Parse([]byte(`
users:
  table: public.u
  clerk_id: clerk
  key: {column: id}
  columns:
    role: public_metadata.role
    seats: public_metadata.plan.seats
    active: object.last_active_at
    settings: unsafe_metadata
  delete: delete
trials: off
organizations: off
`))
	require.NoError(t, err)
	u := m.Trim(clerkevent.User{ClerkID: "user_1",
		PublicMetadata:  json.RawMessage(`{"role":"admin","plan":{"seats":3,"card":"4242"},"notes":"private-ish"}`),
		PrivateMetadata: json.RawMessage(`{"stripe":"cus_1"}`),
		UnsafeMetadata:  json.RawMessage(`{"theme":"dark"}`),
		Object:          json.RawMessage(`{"id":"user_1","last_active_at":1765000000000,"private_metadata":{"stripe":"cus_1"}}`),
	})
	require.JSONEq(t, `{"role":"admin","plan":{"seats":3}}`, string(u.PublicMetadata))
	require.JSONEq(t, `{"last_active_at":1765000000000}`, string(u.Object), "the number as Clerk wrote it")
	require.JSONEq(t, `{"theme":"dark"}`, string(u.UnsafeMetadata), "mapped whole, it travels whole")
	require.Nil(t, u.PrivateMetadata, "not mapped: not sent")
	require.Nil(t, m.Trim(clerkevent.User{PublicMetadata: json.RawMessage(`{"plan":"basic"}`)}).PublicMetadata,
		"no mapped path is there: nothing travels")
}
