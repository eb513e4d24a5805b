package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/clerksync/clerksync/internal/testsupport/testenv"
)

// TestReadiness_NoticesAMappingThatStoppedFitting: the worker's /readyz
// checks the mapping against the product's tables on every probe, not only
// at start: after a product migration drops a mapped column it answers 503
// naming the column, and ok again once the column is back.
func TestReadiness_NoticesAMappingThatStoppedFitting(t *testing.T) {
	t.Parallel()
	st, dbURL := testenv.SnakeCase.Store(t, "UTC")
	db, err := pgx.Connect(context.Background(), dbURL)
	require.NoError(t, err)
	t.Cleanup(func() { db.Close(context.Background()) })
	rd := &readiness{store: st}
	probe := func() (int, map[string]string) {
		rec := httptest.NewRecorder()
		rd.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
		var body struct{ Checks map[string]string }
		require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &body))
		return rec.Code, body.Checks
	}
	_, checks := probe()
	require.Equal(t, "ok", checks["mapping"])

	_, err = db.Exec(context.Background(), `alter table app_users drop column handle`)
	require.NoError(t, err)
	code, checks := probe()
	require.Equal(t, http.StatusServiceUnavailable, code)
	require.Contains(t, checks["mapping"], "users table public.app_users, column handle: no such column")

	_, err = db.Exec(context.Background(), `alter table app_users add column handle text`)
	require.NoError(t, err)
	_, checks = probe()
	require.Equal(t, "ok", checks["mapping"])
}
