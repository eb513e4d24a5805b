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
// the bookkeeping schema's. A NOT NULL or CHECK violation there is
// clerksync's data being refused; the same violation in a product's table
// (through a trigger) is the product's to fix, and a retry lands once it
// has.
var ownTables = map[string]bool{
	"users": true, "subscriptions": true, "organizations": true, "organization_memberships": true,
	"user_tombstones": true, "organization_tombstones": true, "organization_membership_tombstones": true,
	"user_state": true, "backfill_seen": true, "clerk_instance": true, "organization_state": true, "membership_state": true,
}

// IsPermanent reports whether err is PostgreSQL refusing the data itself,
// which no retry can change: a data exception (SQLSTATE class 22, such as a
// NUL byte in text), or a NOT NULL or CHECK violation on one of clerksync's
// own tables. A foreign key or unique violation is not permanent: a
// product's constraint may be fixed, or the conflicting row may change.
func IsPermanent(err error) bool {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return false
	}
	switch {
	case pgerrcode.IsDataException(pgErr.Code):
		return true
	case pgErr.Code == pgerrcode.NotNullViolation, pgErr.Code == pgerrcode.CheckViolation:
		return ownTables[pgErr.TableName]
	}
	return false
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
