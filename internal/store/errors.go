package store

import (
	"errors"

	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5/pgconn"
)

// ownTables are the tables clerksync's migrations create. A NOT NULL or CHECK
// violation there is clerksync's data being refused; the same violation in a
// product's table (through a trigger) is the product's to fix, and a retry
// lands once it has.
var ownTables = map[string]bool{"users": true, "user_tombstones": true, "subscriptions": true}

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
