package store

import (
	"errors"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"
)

func TestRedact_KeepsNamesDropsData(t *testing.T) {
	for _, tc := range []struct {
		pgErr *pgconn.PgError
		want  string
	}{
		{&pgconn.PgError{Severity: "ERROR", Code: "22P02", Message: `invalid input syntax for type uuid: "ada@example.com"`},
			`upsert user user_1: ERROR: invalid input syntax for type uuid (SQLSTATE 22P02)`},
		{&pgconn.PgError{Severity: "ERROR", Code: "22003", Message: `value "Ada Lovelace" is out of range for type integer`},
			`upsert user user_1: ERROR: value "…" is out of range for type integer (SQLSTATE 22003)`},
		{&pgconn.PgError{Severity: "ERROR", Code: "23503", TableName: "orders", ConstraintName: "orders_user_id_fkey",
			Message: `update or delete on table "users" violates foreign key constraint "orders_user_id_fkey" on table "orders"`},
			`upsert user user_1: ERROR: update or delete on table "users" violates foreign key constraint "orders_user_id_fkey" on table "orders" (SQLSTATE 23503)`},
	} {
		err := Redact(fmt.Errorf("upsert user user_1: %w", tc.pgErr))
		require.Equal(t, tc.want, err.Error())
		var pgErr *pgconn.PgError
		require.False(t, errors.As(err, &pgErr), "the original error is not reachable")
	}
	plain := errors.New("connection refused")
	require.Same(t, plain, Redact(plain))
}
