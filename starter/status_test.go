package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/clerksync/clerksync/internal/clerkevent"
	"github.com/clerksync/clerksync/internal/clerkwebhook"
	"github.com/clerksync/clerksync/internal/config"
	"github.com/clerksync/clerksync/internal/store"
	"github.com/clerksync/clerksync/internal/syncworker"
	"github.com/clerksync/clerksync/internal/testsupport/testenv"
	"github.com/clerksync/clerksync/starter/service"
	"github.com/clerksync/clerksync/workflows"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

const testSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

func TestStatus_ShowsRowWorkflowStateAndTrial(t *testing.T) {
	t.Parallel()
	st, _ := testenv.Store(t)
	tc := testenv.Temporal(t)
	ctx := context.Background()
	const period = 14 * 24 * time.Hour
	taskQueue := "status-" + strings.ToLower(t.Name())
	w := syncworker.New(tc, syncworker.Options{TaskQueue: taskQueue, Store: st, TrialPeriod: period})
	require.NoError(t, w.Start())
	t.Cleanup(w.Stop)
	verifier, err := service.NewSignatureVerifier(testSecret)
	require.NoError(t, err)
	mux, err := service.NewMux(config.Config{TaskQueue: taskQueue, WebhookMaxBytes: 1 << 20, EnsureTimeout: time.Second},
		verifier, service.Connections{Store: st, Temporal: tc, Namespace: "default"}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	require.NoError(t, err)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	post := func(msgID string, body []byte) {
		h, err := clerkwebhook.Sign(testSecret, msgID, time.Now(), body)
		require.NoError(t, err)
		req, err := http.NewRequest(http.MethodPost, srv.URL+"/webhooks/clerk", bytes.NewReader(body))
		require.NoError(t, err)
		req.Header = h
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
	}
	const id = "user_status"

	got, err := lookupStatus(ctx, st, tc, taskQueue, id)
	require.NoError(t, err)
	require.Equal(t, userStatus{ClerkID: id}, got, "an unknown user has nothing")
	require.True(t, got.unknown(), "starter status says so and exits non-zero")

	now := time.Now().Truncate(time.Millisecond)
	body, err := clerkwebhook.UserEvent("user.created", clerkwebhook.UserFields{ClerkID: id, Email: "s@example.com", CreatedAt: now, UpdatedAt: now})
	require.NoError(t, err)
	post("msg_status", body)
	require.Eventually(t, func() bool {
		got, err = lookupStatus(ctx, st, tc, taskQueue, id)
		return err == nil && got.Row != nil && got.User != nil && got.User.Status == "Completed"
	}, 30*time.Second, 100*time.Millisecond)
	var row struct{ Email string }
	require.NoError(t, got.Row.Decode(&row))
	require.Equal(t, "s@example.com", row.Email)
	require.False(t, got.unknown())
	require.NotNil(t, got.User.State, got.User.StateError)
	state, ok := got.User.State.(*workflows.UserState)
	require.True(t, ok, "a user's state is a UserState")
	require.Equal(t, got.Row.ID, state.UserID)
	require.Equal(t, "synced", state.SyncState)
	require.NotNil(t, got.Trial)
	require.Equal(t, "trialing", got.Trial.Status)
	require.WithinDuration(t, now.Add(period), *got.Trial.TrialEndsAt, time.Millisecond)

	deleted, err := clerkwebhook.DeletedEvent(id, time.Now())
	require.NoError(t, err)
	post("msg_status_del", deleted)
	// The tombstone commits before the row's removal, in a transaction of
	// its own: status may show the user deleted with its row for a moment.
	require.Eventually(t, func() bool {
		got, err = lookupStatus(ctx, st, tc, taskQueue, id)
		return err == nil && got.Deleted && got.Row == nil
	}, 30*time.Second, 100*time.Millisecond)
	require.Nil(t, got.Trial, "the trial went with the user's row")

	// An organization: its row, its members and its workflow's state.
	const orgID = "org_status"
	org, err := lookupOrganization(ctx, st, tc, taskQueue, orgID)
	require.NoError(t, err)
	require.Equal(t, organizationStatus{ClerkID: orgID}, org, "an unknown organization has nothing")
	orgFields := clerkwebhook.OrganizationFields{ClerkID: orgID, Name: "Status Team", Slug: "status-team", CreatedAt: now, UpdatedAt: now}
	body, err = clerkwebhook.MembershipEvent("organizationMembership.created", clerkwebhook.MembershipFields{
		ClerkID: "orgmem_status", UserID: "user_status_member", Role: "org:admin", Organization: orgFields, CreatedAt: now, UpdatedAt: now})
	require.NoError(t, err)
	post("msg_status_member", body)
	require.Eventually(t, func() bool {
		org, err = lookupOrganization(ctx, st, tc, taskQueue, orgID)
		return err == nil && org.Row != nil && org.Workflow != nil && org.Workflow.Status == "Completed"
	}, 30*time.Second, 100*time.Millisecond)
	var orgRow struct {
		Name    string `json:"name"`
		ClerkID string `json:"clerk_id"`
	}
	require.NoError(t, json.Unmarshal(org.Row, &orgRow))
	require.Equal(t, "Status Team", orgRow.Name, "the membership's embedded organization is written")
	require.Equal(t, orgID, orgRow.ClerkID)
	require.Equal(t, []store.Member{{ClerkID: "orgmem_status", UserClerkID: "user_status_member", Role: "org:admin",
		ClerkUpdatedAt: now.UTC()}}, normalizeMembers(org.Members))
	orgState, ok := org.Workflow.State.(*workflows.OrganizationState)
	require.True(t, ok, "%v", org.Workflow.StateError)
	require.Equal(t, "synced", orgState.SyncState)
}

func normalizeMembers(ms []store.Member) []store.Member {
	for i := range ms {
		ms[i].ClerkUpdatedAt = ms[i].ClerkUpdatedAt.UTC()
	}
	return ms
}

func countRows(t *testing.T, pool interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}, table string) int {
	t.Helper()
	var n int
	require.NoError(t, pool.QueryRow(context.Background(), "select count(*) from "+table).Scan(&n))
	return n
}

// TestStatus_ShowsASoftDeletedRow: for a deleted user of an app whose
// mapping soft-deletes (the invoicing example), status shows the row the
// app keeps, marked soft-deleted, beside the tombstone: it printed
// "row": null for a row still in the table.
func TestStatus_ShowsASoftDeletedRow(t *testing.T) {
	t.Parallel()
	st, _ := testenv.Invoicing.Store(t, "UTC")
	tc := testenv.Temporal(t)
	ctx := context.Background()
	const id = "user_soft"
	now := time.Now().UTC().Truncate(time.Millisecond)
	email, first := "soft@example.com", "Soft"
	_, err := st.UpsertUser(ctx, clerkevent.User{ClerkID: id, Email: &email, FirstName: &first, ClerkCreatedAt: now, ClerkUpdatedAt: now}, 0)
	require.NoError(t, err)
	require.NoError(t, st.TombstoneUser(ctx, id, now))
	removed, err := st.RemoveUserRow(ctx, id)
	require.NoError(t, err)
	require.True(t, removed)

	got, err := lookupStatus(ctx, st, tc, "status-soft", id)
	require.NoError(t, err)
	require.True(t, got.Deleted)
	require.True(t, got.RowSoftDeleted)
	require.NotNil(t, got.Row, "the row the app keeps")
	var row struct {
		Email    string  `json:"email"`
		FullName *string `json:"full_name"`
	}
	require.NoError(t, got.Row.Decode(&row))
	require.Equal(t, email, row.Email, "the soft-deleted row, as ensure's columns show it")
	require.Nil(t, row.FullName, "its cleared column")
	require.False(t, got.unknown())
}
