// Package sqlgen compiles a mapping (internal/mapping) into the SQL that
// writes, reads and removes the rows of the tables it maps, checked
// against those tables' columns: one entry point, Compile. Nothing here
// runs a statement but the reading of the columns (TableColumns); the
// store executes what Compile builds.
//
// Every value a statement is built from reaches it through the quoting
// and literal helpers of expr.go; every statement is in the golden SQL
// (internal/store/testdata/sql) a reviewer reads.
package sqlgen

import (
	"fmt"
	"maps"
	"slices"

	"github.com/clerksync/clerksync/internal/mapping"
)

// Statements is the SQL of every table, built together: from the mapping and
// the mapped tables' columns, or for clerksync's own tables. trials is nil
// with trials off, orgs and memberships with organizations off.
type Statements struct {
	Users         *Users
	Trials        *Trials
	Organizations *Organizations
	Memberships   *Memberships
}

// Tables are the columns of each table a mapping names (TableColumns).
type Tables map[mapping.Table]map[string]ColumnInfo

// Compile builds the SQL of the tables m maps, from their columns, for the
// bookkeeping schema; a nil m builds clerksync's own tables'. Its error
// says, one line per mistake, what the tables cannot take.
func Compile(m *mapping.Mapping, schema string, cols Tables) (*Statements, error) {
	if m == nil {
		return compileOwn(schema)
	}
	users, err := compileUsers(m.Users, cols[m.Users.Table], schema)
	if err != nil {
		return nil, err
	}
	st := &Statements{Users: users}
	if m.Trials != nil {
		if st.Trials, err = compileTrials(m.Trials, cols[m.Trials.Table], users, cols[m.Users.Table][m.Users.Key.Column].DataType); err != nil {
			return nil, err
		}
	}
	if m.Organizations == nil {
		return st, nil
	}
	if st.Organizations, err = compileOrganizations(m.Organizations, cols[m.Organizations.Table], schema); err != nil {
		return nil, err
	}
	if st.Memberships, err = compileMemberships(m.Memberships, cols[m.Memberships.Table], st.Organizations, users); err != nil {
		return nil, err
	}
	return st, nil
}

// compileOwn builds the SQL of clerksync's own tables, whose columns its
// migrations fix (migrations/tables).
func compileOwn(schema string) (*Statements, error) {
	users, err := compileUsers(ownUsers, ownUsersTypes, schema)
	if err != nil {
		return nil, fmt.Errorf("clerksync's users table: %w", err)
	}
	trials, err := compileTrials(ownTrials, ownTrialsTypes, users, ownUsersTypes["id"].DataType)
	if err != nil {
		return nil, fmt.Errorf("clerksync's subscriptions table: %w", err)
	}
	orgs, err := compileOrganizations(ownOrganizations, ownOrganizationsTypes, schema)
	if err != nil {
		return nil, fmt.Errorf("clerksync's organizations table: %w", err)
	}
	memberships, err := compileMemberships(ownMemberships, ownMembershipsTypes, orgs, users)
	if err != nil {
		return nil, fmt.Errorf("clerksync's organization_memberships table: %w", err)
	}
	return &Statements{Users: users, Trials: trials, Organizations: orgs, Memberships: memberships}, nil
}

// own is the mapping of one of clerksync's own tables (migrations/tables):
// keyed by its id, its Clerk ID in clerk_id, deleted with its row, each
// column of columns written from its source.
func own(table string, columns map[string]string) mapping.Entity {
	e := mapping.Entity{Table: mapping.Table{Name: table}, ClerkID: "clerk_id", Key: mapping.Key{Column: "id"},
		Deletion: mapping.Deletion{Delete: mapping.Delete}}
	for _, name := range slices.Sorted(maps.Keys(columns)) {
		e.Columns = append(e.Columns, mapping.Column{Name: name, Source: columns[name]})
	}
	return e
}

// OwnColumns are the columns of clerksync's own tables, by table, as the
// compiler takes them without reading the database (compileOwn): their
// migrations create exactly these (TestOwnTables_MatchTheirMigrations).
func OwnColumns() map[string]map[string]ColumnInfo {
	return map[string]map[string]ColumnInfo{
		ownUsers.Table.Name: ownUsersTypes, ownTrials.Table.Name: ownTrialsTypes,
		ownOrganizations.Table.Name: ownOrganizationsTypes, ownMemberships.Table.Name: ownMembershipsTypes,
	}
}
