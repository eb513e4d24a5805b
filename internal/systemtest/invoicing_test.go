package systemtest

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/clerksync/clerksync/ensure/contract"
	"github.com/clerksync/clerksync/internal/clerkwebhook"
	"github.com/clerksync/clerksync/internal/testsupport/testenv"
	"github.com/clerksync/clerksync/workflows"
)

// TestInvoicing_RefusedUsersBesideHealthyOnesNeverWedge: the invoicing
// example (docs/examples/invoicing: a role CHECK, a citext email that is
// required and unique, 50 legacy rows from before Clerk) takes 200 healthy
// users' signups and later updates, shuffled and partly duplicated, beside
// users its constraints refuse: one whose role in Clerk's public metadata
// the CHECK does not allow, and one signing up with the email a legacy
// invite row holds. Two users without an email get addresses of their own
// (the mapping's {clerk_id} missing value). Every healthy user ends exact;
// each refused user shows failed with its constraint, is recovered by a
// later valid event (the invite row removed), and its runs' history stays
// bounded.
func TestInvoicing_RefusedUsersBesideHealthyOnesNeverWedge(t *testing.T) {
	t.Parallel()
	s := startSystemOn(t, &testenv.Invoicing)
	ctx := context.Background()
	_, err := s.db.Exec(ctx, `insert into app.users (email, full_name, role)
select 'legacy' || i || '@example.com', 'Legacy ' || i, case when i % 10 = 0 then 'owner' else 'member' end
from generate_series(1, 50) i`)
	require.NoError(t, err)

	base := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	event := func(typ, id, email, name string, version int, metadata string) testenv.Delivery {
		body, err := clerkwebhook.UserEvent(typ, clerkwebhook.UserFields{ClerkID: id, Email: email, FirstName: name,
			CreatedAt: base, UpdatedAt: base.Add(time.Duration(version) * time.Second), PublicMetadata: json.RawMessage(metadata)})
		require.NoError(t, err)
		return testenv.Delivery{MsgID: fmt.Sprintf("msg_%s_%d", id, version), Body: body}
	}
	const healthy = 200
	var first []testenv.Delivery
	for i := range healthy {
		id := fmt.Sprintf("user_inv%03d", i)
		role := `{}`
		if i%7 == 0 {
			role = `{"role":"admin"}`
		}
		first = append(first, event("user.created", id, id+"@example.com", "Signup", 1, role),
			event("user.updated", id, id+"@example.com", "Updated", 2, role))
	}
	// The refused: a role the CHECK does not allow; the email of a legacy
	// invite (its case aside: citext). Two users without an email.
	first = append(first, event("user.created", "user_inv_superuser", "super@example.com", "Super", 1, `{"role":"superuser"}`),
		event("user.created", "user_inv_invited", "Legacy7@Example.com", "Invited", 1, `{}`),
		event("user.created", "user_inv_noemail_a", "", "No Email", 1, `{}`),
		event("user.created", "user_inv_noemail_b", "", "No Email", 1, `{}`))
	for _, d := range first[:len(first):len(first)] {
		if rand.IntN(4) == 0 {
			first = append(first, d) // Svix's redeliveries
		}
	}
	rand.Shuffle(len(first), func(i, j int) { first[i], first[j] = first[j], first[i] })
	deliver := func(ds []testenv.Delivery) {
		dctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
		defer cancel()
		stats, err := testenv.Deliver(dctx, s.url+"/webhooks/clerk", s.secret, ds, 8, 0)
		require.NoError(t, err)
		require.Zero(t, stats.Refused)
	}
	deliver(first)

	require.Eventually(t, func() bool {
		return s.count(t, `select count(*) from app.users where clerk_user_id like 'user_inv___' and full_name = 'Updated'`) == healthy
	}, 2*time.Minute, 250*time.Millisecond, "the healthy users never all converged")
	require.Equal(t, healthy/7+1, s.count(t, `select count(*) from app.users where clerk_user_id like 'user_inv___' and role = 'admin'`))
	require.Equal(t, 50, s.count(t, `select count(*) from app.users where clerk_user_id is null and full_name like 'Legacy %'`),
		"the legacy rows are untouched")

	require.Equal(t, 2, s.count(t, `select count(*) from app.users where clerk_user_id like 'user_inv_noemail__'
and email = clerk_user_id || '@no-email.invalid'`), "the users without an email have addresses of their own")
	for _, want := range []struct{ id, sqlstate, constraint string }{
		{"user_inv_superuser", "23514", "users_role_check"},
		{"user_inv_invited", "23505", "users_email_key"},
	} {
		var failed []workflows.FailedEvent
		require.Eventually(t, func() bool {
			st, err := s.userState(want.id)
			failed = st.Failed
			return err == nil && slices.ContainsFunc(st.Failed, func(f workflows.FailedEvent) bool {
				return f.SQLState == want.sqlstate && f.Constraint == want.constraint
			})
		}, time.Minute, 250*time.Millisecond, "%s never showed failed with %s: %+v", want.id, want.constraint, &failed)
		s.findsBySyncState(t, want.id, contract.SyncStateFailed)
	}

	// The operator fixes what refused them (the invite row goes), and
	// later valid events recover them.
	_, err = s.db.Exec(ctx, `delete from app.users where email = 'legacy7@example.com' and clerk_user_id is null`)
	require.NoError(t, err)
	deliver([]testenv.Delivery{
		event("user.updated", "user_inv_superuser", "super@example.com", "Super", 2, `{"role":"owner"}`),
		event("user.updated", "user_inv_invited", "Legacy7@Example.com", "Invited", 2, `{}`),
	})
	require.Eventually(t, func() bool {
		return s.count(t, `select count(*) from app.users where clerk_user_id = 'user_inv_superuser' and role = 'owner'`)+
			s.count(t, `select count(*) from app.users where clerk_user_id = 'user_inv_invited' and email = 'legacy7@example.com'`) == 2
	}, time.Minute, 250*time.Millisecond, "a later valid event never recovered a refused user")
	for _, id := range []string{"user_inv_superuser", "user_inv_invited"} {
		events := s.historyEventsOf(t, id)
		t.Logf("%s: %d history events over its runs", id, events)
		require.LessOrEqual(t, events, 40, "%s's history grew while refused", id)
	}
}
