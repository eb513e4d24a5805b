package store

import (
	"errors"
	"regexp"
	"slices"
	"strings"

	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5/pgconn"
)

// OwnedTables are the tables clerksync creates in the product's schema when
// no mapping names the product's own (migrations/tables).
var OwnedTables = []string{"organization_memberships", "organizations", "subscriptions", "users"}

// ownTables are the tables clerksync's migrations create: OwnedTables and
// the bookkeeping schema's. Their names are never user data, so Redact
// keeps them.
var ownTables = map[string]bool{
	"users": true, "subscriptions": true, "organizations": true, "organization_memberships": true,
	"user_tombstones": true, "organization_tombstones": true, "organization_membership_tombstones": true,
	"user_state": true, "backfill_seen": true, "clerk_instance": true, "organization_state": true, "membership_state": true,
}

// ErrorKind is what a failed write's error means for the event it wrote.
type ErrorKind int

// Kinds of write errors (Store.Classify).
const (
	// Transient: retry until the write lands (PostgreSQL down or busy, a
	// lock, a serialization failure, or clerksync's own bookkeeping refusing
	// a row, which is clerksync's bug and not the user's data).
	Transient ErrorKind = iota
	// Refused: the table the write fills refuses this data for good (a
	// data exception, SQLSTATE class 22: a NUL byte, a value too long, bad
	// JSON; or a NOT NULL or CHECK violation). The event fails; the user's
	// later events still apply.
	Refused
	// Conflict: a unique, exclusion or foreign key constraint of the table
	// the write fills, which another row's change may clear (an email
	// handed from one user to another lands once the first user's update
	// has): retried within a bound, then failed like Refused.
	Conflict
)

// Classify says what err, from a write of a user's, organization's or
// membership's row, means for its event. The rule is the SQLSTATE's class
// and which table the statement wrote: a constraint of clerksync's
// bookkeeping schema is never the data's fault; any other table's (the
// product's, or clerksync's own users table) judges the data.
func (s *Store) Classify(err error) ErrorKind {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return Transient
	}
	switch {
	case pgerrcode.IsDataException(pgErr.Code):
		return Refused
	case pgErr.SchemaName == s.schema:
		return Transient
	case pgErr.Code == pgerrcode.NotNullViolation, pgErr.Code == pgerrcode.CheckViolation:
		return Refused
	case pgErr.Code == pgerrcode.UniqueViolation, pgErr.Code == pgerrcode.ExclusionViolation, pgErr.Code == pgerrcode.ForeignKeyViolation:
		return Conflict
	}
	return Transient
}

// IsPermanent reports whether err is the data refused for good (Refused),
// as Classify says.
func (s *Store) IsPermanent(err error) bool { return s.Classify(err) == Refused }

// Refusal names what refused a write, for operators: PostgreSQL's SQLSTATE
// and the constraint, table and column it names (any may be empty). It
// carries no value of the row, so it may go to logs and Temporal.
type Refusal struct {
	SQLState   string `json:"sqlstate"`
	Constraint string `json:"constraint,omitempty"`
	Table      string `json:"table,omitempty"`
	Column     string `json:"column,omitempty"`
}

// RefusalOf returns the Refusal of a PostgreSQL error in err, if any.
func RefusalOf(err error) (Refusal, bool) {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return Refusal{}, false
	}
	table := pgErr.TableName
	if table != "" && pgErr.SchemaName != "" {
		table = pgErr.SchemaName + "." + table
	}
	return Refusal{SQLState: pgErr.Code, Constraint: pgErr.ConstraintName, Table: table, Column: pgErr.ColumnName}, true
}

// IsRefusal reports whether err is an integrity constraint the database
// enforces against a write (SQLSTATE class 23, such as a product's foreign key
// without ON DELETE CASCADE): retrying may land once the product changes its
// schema or data, and meanwhile operators need to see the database's message.
func IsRefusal(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgerrcode.IsIntegrityConstraintViolation(pgErr.Code)
}

// quoted matches a double-quoted token of a PostgreSQL message: an
// identifier or a value.
var quoted = regexp.MustCompile(`"[^"]*"`)

// Redact returns err with the message of any PostgreSQL error in its text
// reduced to what names no user data: the message up to its first ": "
// (after which PostgreSQL quotes the offending input), with every quoted
// token that is not the error's own constraint, table, column, schema or
// type name, or one of clerksync's tables, replaced by "…". The result does not wrap err, so nothing
// below it (an error's causes become a Temporal failure's causes) carries
// the original text. Errors without a PostgreSQL error are returned as they
// are.
func Redact(err error) error {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return err
	}
	return errors.New(RedactText(err.Error(), pgErr))
}

// RedactText applies Redact's rule to text, which quotes pgErr's message.
func RedactText(text string, pgErr *pgconn.PgError) string {
	msg, _, _ := strings.Cut(pgErr.Message, ": ")
	names := []string{pgErr.ConstraintName, pgErr.TableName, pgErr.ColumnName, pgErr.SchemaName, pgErr.DataTypeName}
	msg = quoted.ReplaceAllStringFunc(msg, func(q string) string {
		if name := strings.Trim(q, `"`); name != "" && (slices.Contains(names, name) || ownTables[name]) {
			return q
		}
		return `"…"`
	})
	return strings.ReplaceAll(text, pgErr.Message, msg)
}
