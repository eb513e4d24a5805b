package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/clerksync/clerksync/internal/clerkevent"
	"github.com/clerksync/clerksync/internal/testsupport/testenv"
)

// TestDeleteMembership_WithoutItsMember: a membership deletion that does
// not name the member (Clerk's document leaves public_user_data optional)
// removes the membership's row by its own ID and tombstones it, so a
// later copy of the membership is refused.
func TestDeleteMembership_WithoutItsMember(t *testing.T) {
	t.Parallel()
	st, db := openExample(t, testenv.SnakeCase, "UTC")
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Millisecond)
	name := "Acme"
	org := clerkevent.Organization{ClerkID: "org_nomember", Name: &name, ClerkCreatedAt: now, ClerkUpdatedAt: now}
	m := clerkevent.Membership{ClerkID: "orgmem_nomember", UserID: "user_nomember", Role: "org:member", Organization: org,
		ClerkCreatedAt: now, ClerkUpdatedAt: now}
	_, err := st.UpsertMembership(ctx, m)
	require.NoError(t, err)
	count := func() (n int) {
		require.NoError(t, db.QueryRow(ctx, `select count(*) from team_members where clerk_membership_id = 'orgmem_nomember'`).Scan(&n))
		return n
	}
	require.Equal(t, 1, count())

	deleted := m
	deleted.UserID = ""
	removed, err := st.DeleteMembership(ctx, deleted, now.Add(time.Second))
	require.NoError(t, err)
	require.True(t, removed)
	require.Zero(t, count())

	_, err = st.UpsertMembership(ctx, m)
	require.NoError(t, err)
	require.Zero(t, count(), "the tombstone refuses a later copy")
}
