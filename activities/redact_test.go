package activities

import (
	"errors"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"
)

func TestRedact_AnActivityErrorQuotingARowLosesTheDataKeepsItsClass(t *testing.T) {
	pgErr := &pgconn.PgError{Severity: "ERROR", Code: "22021", Message: `invalid byte sequence for encoding "UTF8": 0x00 in "Ada Lovelace"`}
	err := redact(invalid(fmt.Errorf("upsert user user_1: %w", pgErr)))
	var appErr *temporal.ApplicationError
	require.True(t, errors.As(err, &appErr))
	require.Equal(t, ErrTypeInvalidUserData, appErr.Type())
	require.True(t, appErr.NonRetryable())
	require.Equal(t, `upsert user user_1: ERROR: invalid byte sequence for encoding "…" (SQLSTATE 22021)`, appErr.Message())
	require.NotContains(t, err.Error(), "Ada")
	require.Nil(t, errors.Unwrap(appErr), "no cause carries the original text")

	retried := redact(fmt.Errorf("delete user user_1: %w", pgErr))
	require.NotContains(t, retried.Error(), "Ada")
	require.False(t, temporal.IsApplicationError(retried))

	plain := errors.New("connection refused")
	require.Same(t, plain, redact(plain))
}
