package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/clerksync/clerksync/ensure/contract"
	"github.com/clerksync/clerksync/internal/store"
)

// TestErasures_PendingUntilMarkedAndAgainOnALaterRequest: a deletion asks
// for its erasure by itself, which the sweep sees once it has settled; one
// marked erased is not pending, until a later run asks again. Pages follow
// one another in order, a user's apart from an organization's.
func TestErasures_PendingUntilMarkedAndAgainOnALaterRequest(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	for _, id := range []string{"user_e1", "user_e2", "user_e3"} {
		_, err := b.deleteUser(ctx, id, base)
		require.NoError(t, err)
	}
	require.NoError(t, b.st.TombstoneOrganization(ctx, "org_e1", base))
	pending := func(entity contract.Entity, after store.Erasure, limit int) store.ErasurePage {
		t.Helper()
		page, err := b.st.PendingErasures(ctx, entity, 0, after, limit)
		require.NoError(t, err)
		return page
	}
	ids := func(page store.ErasurePage) []string {
		var ids []string
		for _, e := range page.Erasures {
			ids = append(ids, e.ClerkID)
		}
		return ids
	}

	settling, err := b.st.PendingErasures(ctx, contract.User, time.Hour, store.Erasure{}, 10)
	require.NoError(t, err)
	require.Empty(t, settling.Erasures, "a request younger than the settling time waits")
	first := pending(contract.User, store.Erasure{}, 2)
	require.Equal(t, []string{"user_e1", "user_e2"}, ids(first))
	require.Equal(t, []string{"user_e3"}, ids(pending(contract.User, first.Erasures[1], 2)))
	require.Equal(t, []string{"org_e1"}, ids(pending(contract.Organization, store.Erasure{}, 10)))

	state := func(id string) *store.ErasureState {
		t.Helper()
		st, err := b.st.ErasureOf(ctx, contract.User, id)
		require.NoError(t, err)
		return st
	}
	require.True(t, state("user_e1").Pending)
	require.Nil(t, state("user_e1").ErasedAt)
	page := pending(contract.User, store.Erasure{}, 10)
	require.NoError(t, b.st.MarkErased(ctx, page.Erasures[0], page.AsOf))
	require.Equal(t, []string{"user_e2", "user_e3"}, ids(pending(contract.User, store.Erasure{}, 10)))
	require.False(t, state("user_e1").Pending)
	require.WithinDuration(t, page.AsOf, *state("user_e1").ErasedAt, 0)
	require.Nil(t, state("user_live"), "a user never deleted has no erasure")

	// A late event's run for user_e1 asks again.
	require.NoError(t, b.st.RequestErasure(ctx, contract.User, "user_e1"))
	require.Equal(t, []string{"user_e2", "user_e3", "user_e1"}, ids(pending(contract.User, store.Erasure{}, 10)))
	require.True(t, state("user_e1").Pending)
	// A mark as of a listing older than the request leaves it pending.
	require.NoError(t, b.st.MarkErased(ctx, page.Erasures[0], page.AsOf))
	require.Equal(t, []string{"user_e2", "user_e3", "user_e1"}, ids(pending(contract.User, store.Erasure{}, 10)))

	require.ErrorContains(t, b.st.RequestErasure(ctx, "membership", "orgmem_1"), "not a user or an organization")
}
