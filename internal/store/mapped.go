package store

// The SQL built from the mapping's tables, cached: built on first use,
// checked again (RecheckMapping) and dropped when a table changed under it
// (ForgetIfStale).

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/clerksync/clerksync/internal/mapping"
	"github.com/clerksync/clerksync/internal/store/sqlgen"
)

// MappingError is a mapping the live database cannot take: a missing table
// or column, a type that cannot hold its source, an unwritten NOT NULL
// column, a Clerk ID column that is not unique. Its text is one line per
// mistake, each naming the table, the column and the fix.
type MappingError struct{ Problems string }

func (e *MappingError) Error() string {
	return "CLERKSYNC_MAPPING does not fit the database:\n" + e.Problems
}

// CheckMapping checks the mapping against the live database and builds its
// SQL: nil for clerksync's own tables, a *MappingError for a mapping the
// database cannot take, another error when the database cannot be read.
func (s *Store) CheckMapping(ctx context.Context) error {
	_, _, err := s.tables(ctx)
	return err
}

// RecheckMapping checks the mapping against the tables as they are now
// and builds its SQL anew, so SQL built before a product migration changed
// a mapped column's type is replaced; a mapping that no longer fits drops
// the SQL built from it (writes then fail with the MappingError, and are
// retried, until the mapping or the table is fixed) and is returned.
// Readiness calls it on every probe. Without a mapping it does nothing.
func (s *Store) RecheckMapping(ctx context.Context) error {
	if s.mapping == nil {
		return nil
	}
	c, err := s.compileMapped(ctx)
	s.mu.Lock()
	defer s.mu.Unlock()
	var bad *MappingError
	switch {
	case errors.As(err, &bad):
		s.compiled = nil
		return err
	case err != nil:
		return err // the database could not be read: nothing is known to be wrong
	}
	s.compiled = c
	return nil
}

// ForgetIfStale drops the SQL built from the mapped tables when err says a
// statement met a table that changed under it (a column dropped or
// retyped, a table renamed), so the next write builds it from the tables
// as they are, and says so.
func (s *Store) ForgetIfStale(err error) bool {
	var pgErr *pgconn.PgError
	if s.mapping == nil || !errors.As(err, &pgErr) {
		return false
	}
	switch pgErr.Code {
	case pgerrcode.UndefinedColumn, pgerrcode.UndefinedTable, pgerrcode.DatatypeMismatch, pgerrcode.UndefinedFunction:
	default:
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.compiled = nil
	return true
}

// statements returns the SQL of every table, building it from the mapped
// tables' columns on first use (a failed build is tried again on the next
// use: the database may be starting, or being fixed).
func (s *Store) statements(ctx context.Context) (*sqlgen.Statements, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.compiled != nil {
		return s.compiled, nil
	}
	c, err := s.compileMapped(ctx)
	if err != nil {
		return nil, err
	}
	s.compiled = c
	return c, nil
}

// tables returns the SQL of the user and trial tables (statements).
func (s *Store) tables(ctx context.Context) (*sqlgen.Users, *sqlgen.Trials, error) {
	c, err := s.statements(ctx)
	if err != nil {
		return nil, nil, err
	}
	return c.Users, c.Trials, nil
}

// compileMapped reads the mapped tables' columns and builds their SQL.
func (s *Store) compileMapped(ctx context.Context) (*sqlgen.Statements, error) {
	m := s.mapping
	var st *sqlgen.Statements
	err := pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		cols := sqlgen.Tables{}
		for _, t := range m.Tables() {
			c, err := sqlgen.TableColumns(ctx, tx, t.Entity, t.Table)
			if err != nil {
				return err
			}
			cols[t.Table] = c
		}
		var err error
		if st, err = sqlgen.Compile(m, s.schema, cols); err != nil {
			return &MappingError{Problems: err.Error()}
		}
		if err := uniqueClerkID(ctx, tx, "users", m.Users.Table, m.Users.ClerkID, st.Users.Name, st.Users.ClerkID); err != nil {
			return err
		}
		if m.Organizations == nil {
			return nil
		}
		if err := uniqueClerkID(ctx, tx, "organizations", m.Organizations.Table, m.Organizations.ClerkID, st.Organizations.Name, st.Organizations.ClerkID); err != nil {
			return err
		}
		return uniqueClerkID(ctx, tx, "memberships", m.Memberships.Table, m.Memberships.ClerkID, st.Memberships.Name, st.Memberships.ClerkID)
	})
	var noTable *sqlgen.NoTableError
	if errors.As(err, &noTable) {
		err = &MappingError{Problems: noTable.Error()}
	}
	if err != nil {
		return nil, err
	}
	return st, nil
}

// orgTables returns the SQL of the organization and membership tables, or
// ErrOrganizationsOff.
func (s *Store) orgTables(ctx context.Context) (*sqlgen.Organizations, *sqlgen.Memberships, error) {
	c, err := s.statements(ctx)
	if err != nil {
		return nil, nil, err
	}
	if c.Organizations == nil {
		return nil, nil, ErrOrganizationsOff
	}
	return c.Organizations, c.Memberships, nil
}

// ErrOrganizationsOff: the mapping keeps no organizations.
var ErrOrganizationsOff = errors.New("organizations are not kept with this CLERKSYNC_MAPPING (organizations: off)")

// uniqueClerkID refuses a Clerk ID column without a unique index of its
// own, which ON CONFLICT needs.
func uniqueClerkID(ctx context.Context, tx pgx.Tx, entity string, t mapping.Table, col, quotedTable, quotedCol string) error {
	unique, err := sqlgen.IsUnique(ctx, tx, t, col)
	if err != nil {
		return err
	}
	if !unique {
		return &MappingError{Problems: fmt.Sprintf("%s table %s, column %s: the Clerk ID column is not unique; add a unique index on it alone: create unique index on %s (%s)",
			entity, t, col, quotedTable, quotedCol)}
	}
	return nil
}
