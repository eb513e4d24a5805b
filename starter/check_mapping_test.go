package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/clerksync/clerksync/internal/testsupport/testenv"
)

// TestCheckMapping_SaysWhetherTheMappingFits: an operator's check before
// deploying answers 0 and what maps where for the Prisma example, and an
// error naming the table, the column and the fix for a mapping the
// database cannot take; it creates nothing.
func TestCheckMapping_SaysWhetherTheMappingFits(t *testing.T) {
	dbURL := testenv.Prisma.ProductDatabase(t, "UTC")
	t.Setenv("DATABASE_URL", dbURL)
	t.Setenv("CLERKSYNC_MAPPING", testenv.Prisma.MappingFile())
	var out bytes.Buffer
	require.NoError(t, run(context.Background(), []string{"check-mapping"}, &out, nil))
	require.Contains(t, out.String(), "fits the database, by its catalog (clerksync's bookkeeping schema is not there yet: the worker creates it at its first start and proves the mapping by writing then): users -> public.User (clerkId <- id, createdAt <- now (insert), email <- email")

	doc, err := os.ReadFile(testenv.Prisma.MappingFile())
	require.NoError(t, err)
	bad := filepath.Join(t.TempDir(), "clerksync.yaml")
	require.NoError(t, os.WriteFile(bad, []byte(strings.Replace(string(doc), "ends_at: trialEndsAt", "ends_at: endsAt", 1)), 0o600))
	t.Setenv("CLERKSYNC_MAPPING", bad)
	err = run(context.Background(), []string{"check-mapping"}, &out, nil)
	require.ErrorContains(t, err, "trials table public.Subscription, column endsAt: no such column; add it to the table, or take it out of the mapping")

	t.Setenv("DATABASE_URL", testenv.SnakeCase.ProductDatabase(t, "UTC"))
	t.Setenv("CLERKSYNC_MAPPING", testenv.SnakeCase.MappingFile())
	out.Reset()
	require.NoError(t, run(context.Background(), []string{"check-mapping"}, &out, nil))
	require.Contains(t, out.String(), "role <- public_metadata.role")
	require.Contains(t, out.String(), "; organizations -> public.teams (clerk_org_id <- id, created_ms <- created_at, logo_url <- image_url")
	require.Contains(t, out.String(), "memberships -> public.team_members (clerk_membership_id <- id, team_id -> organizations, user_id -> users, joined_at <- created_at (insert), permissions <- permissions, role <- role)")

	t.Setenv("CLERKSYNC_MAPPING", "")
	require.ErrorContains(t, run(context.Background(), []string{"check-mapping"}, &out, nil), "CLERKSYNC_MAPPING is not set")
}

// TestCheckMapping_ProvesTheMappingByWriting: once the worker has made
// clerksync's schema, check-mapping writes the mapping's statements in a
// transaction it rolls back: a trial status the table's CHECK refuses
// fails it, naming the step, the table, the constraint and the fix, where
// the catalog check alone passed it.
func TestCheckMapping_ProvesTheMappingByWriting(t *testing.T) {
	st, dbURL := testenv.Invoicing.Store(t, "UTC") // migrated: the bookkeeping is there
	st.Close()
	doc, err := os.ReadFile(testenv.Invoicing.MappingFile())
	require.NoError(t, err)
	t.Setenv("DATABASE_URL", dbURL)
	t.Setenv("CLERKSYNC_MAPPING", testenv.Invoicing.MappingFile())
	var out bytes.Buffer
	require.NoError(t, run(context.Background(), []string{"check-mapping"}, &out, nil))
	require.Contains(t, out.String(), "fits the database, and its statements write it: users -> app.users")
	out.Reset()
	require.NoError(t, run(context.Background(), []string{"check-mapping", "--sql"}, &out, nil))
	require.Contains(t, out.String(), "-- users: upsert\nwith tombstone as (")
	require.Contains(t, out.String(), `insert into "app"."users" as u`)

	bad := filepath.Join(t.TempDir(), "clerksync.yaml")
	require.NoError(t, os.WriteFile(bad, []byte(strings.Replace(string(doc), "expired: expired", "expired: lapsed", 1)), 0o600))
	t.Setenv("CLERKSYNC_MAPPING", bad)
	err = run(context.Background(), []string{"check-mapping"}, &out, nil)
	require.ErrorContains(t, err, "the trial's expiry: table app.subscriptions refuses it by CHECK subscriptions_status_check")
}
