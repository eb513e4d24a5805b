package sqlgen

import (
	"strings"
	"testing"

	"github.com/clerksync/clerksync/internal/mapping"
)

// clerksync's own tables compile for any bookkeeping schema.
func TestCompile_OwnTables(t *testing.T) {
	st, err := Compile(nil, "app_sync", nil)
	if err != nil {
		t.Fatal(err)
	}
	if st.Users == nil || st.Trials == nil || st.Organizations == nil || st.Memberships == nil {
		t.Fatalf("own tables: every table's SQL, got %+v", st)
	}
	if !strings.Contains(st.Users.Upsert, "app_sync.user_tombstones") || strings.Contains(st.Users.Upsert, "clerksync.") {
		t.Errorf("the user upsert is not written for the schema app_sync:\n%s", st.Users.Upsert)
	}
}

// A mapping the columns cannot take is refused with a line per mistake,
// each naming the table and the column.
func TestCompile_SaysEveryMistake(t *testing.T) {
	m := &mapping.Mapping{Users: &mapping.Users{Entity: mapping.Entity{
		Table: mapping.Table{Schema: "public", Name: "accounts"}, ClerkID: "clerk_id", Key: mapping.Key{Column: "id"},
		Deletion: mapping.Deletion{Delete: mapping.Delete},
		Columns: []mapping.Column{
			{Name: "email", Source: mapping.SourceEmail},
			{Name: "signed_up", Source: mapping.SourceCreatedAt},
		},
	}}}
	cols := Tables{m.Users.Table: {
		"id":        {DataType: "uuid", hasDefault: true},
		"clerk_id":  {DataType: "text", Nullable: true},
		"signed_up": {DataType: "boolean", Nullable: true},
	}}
	_, err := Compile(m, "clerksync", cols)
	if err == nil {
		t.Fatal("compiled a mapping onto a missing column and a boolean time")
	}
	lines := strings.Split(strings.TrimSpace(err.Error()), "\n")
	if len(lines) != 2 || !strings.Contains(err.Error(), "email") || !strings.Contains(err.Error(), "signed_up") {
		t.Errorf("want one line for email (no such column) and one for signed_up (a boolean cannot hold a time), got:\n%s", err)
	}
	for _, l := range lines {
		if !strings.Contains(l, "public.accounts") && !strings.Contains(l, `"public"."accounts"`) {
			t.Errorf("a line that does not name the table: %s", l)
		}
	}
}
