package systemtest

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/clerksync/clerksync/ensure/contract"
	"github.com/clerksync/clerksync/internal/clerkwebhook"
	"github.com/clerksync/clerksync/internal/testsupport/testenv"
	"github.com/clerksync/clerksync/workflows"
)

// TestRefusal_TheProductsSchemaFailsOneEventVisiblyNeverWedges: on the
// snake_case example's table with constraints of the app's own, each a
// user's sync used to retry for ever inside one workflow task (its history
// growing, its state unreadable, its later events never applied):
//
//   - a CHECK refuses a value: that event fails at once, its run shows the
//     SQLSTATE and the constraint, and the user's next event applies;
//   - a unique index holds another user's value: the event is retried
//     within a bound, then fails the same way, and the user's next event
//     applies once the other user let the value go;
//   - the table refuses every write for a while (a trigger raising a
//     lock-timeout, as a long migration would): the write waits as a
//     scheduled activity, the run's history stops growing and its state
//     answers, and the write lands once the table takes it again.
func TestRefusal_TheProductsSchemaFailsOneEventVisiblyNeverWedges(t *testing.T) {
	t.Parallel()
	s := startSystemOn(t, &testenv.SnakeCase)
	ctx := context.Background()
	_, err := s.db.Exec(ctx, `
alter table app_users add constraint app_users_given_name_check check (given_name is distinct from 'Forbidden');
create unique index app_users_email_key on app_users (email_address);
create table maintenance (under boolean not null);
insert into maintenance values (false);
create function refuse_during_maintenance() returns trigger language plpgsql as $$
begin
    if new.clerk_user_id = 'user_refused_outage' and (select under from maintenance) then
        raise exception 'app_users is being migrated' using errcode = '55P03';
    end if;
    return new;
end $$;
create trigger app_users_maintenance before insert or update on app_users
    for each row execute function refuse_during_maintenance();`)
	require.NoError(t, err)
	base := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	send := func(t *testing.T, typ, id, email, first string, version int) {
		t.Helper()
		body, err := clerkwebhook.UserEvent(typ, clerkwebhook.UserFields{ClerkID: id, Email: email, FirstName: first,
			CreatedAt: base, UpdatedAt: base.Add(time.Duration(version) * time.Second)})
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, s.post(t, fmt.Sprintf("msg_%s_%d", id, version), body))
	}
	row := func(id string) (email, first string) {
		_ = s.db.QueryRow(ctx, `select coalesce(email_address, ''), coalesce(given_name, '') from app_users where clerk_user_id = $1`,
			id).Scan(&email, &first)
		return email, first
	}
	// failedWith waits until the user's workflow shows an event failed by
	// the constraint, and returns it.
	failedWith := func(t *testing.T, id, sqlstate, constraint string, within time.Duration) workflows.FailedEvent {
		t.Helper()
		var failed []workflows.FailedEvent
		require.Eventually(t, func() bool {
			st, err := s.userState(id)
			failed = st.Failed
			return err == nil && slices.ContainsFunc(st.Failed, func(f workflows.FailedEvent) bool {
				return f.SQLState == sqlstate && f.Constraint == constraint
			})
		}, within, 200*time.Millisecond, "%s never failed with %s %s: %+v", id, sqlstate, constraint, &failed)
		return failed[len(failed)-1]
	}

	t.Run("a CHECK", func(t *testing.T) {
		t.Parallel()
		const id = "user_refused_check"
		send(t, "user.created", id, "check@example.com", "Forbidden", 1)
		f := failedWith(t, id, "23514", "app_users_given_name_check", 30*time.Second)
		require.Equal(t, "public.app_users", f.Table)
		s.findsBySyncState(t, id, contract.SyncStateFailed)
		send(t, "user.updated", id, "check@example.com", "Allowed", 2)
		require.Eventually(t, func() bool { _, first := row(id); return first == "Allowed" }, 30*time.Second, 100*time.Millisecond,
			"the user's next event never applied")
		s.findsBySyncState(t, id, contract.SyncStateSynced)
	})

	t.Run("a unique index", func(t *testing.T) {
		t.Parallel()
		const holder, taker = "user_refused_holder", "user_refused_taker"
		send(t, "user.created", holder, "shared@example.com", "Holder", 1)
		require.Eventually(t, func() bool { email, _ := row(holder); return email == "shared@example.com" }, 30*time.Second, 100*time.Millisecond)
		send(t, "user.created", taker, "shared@example.com", "Taker", 1)
		failedWith(t, taker, "23505", "app_users_email_key", 2*time.Minute)
		send(t, "user.updated", holder, "moved@example.com", "Holder", 2)
		require.Eventually(t, func() bool { email, _ := row(holder); return email == "moved@example.com" }, 30*time.Second, 100*time.Millisecond)
		send(t, "user.updated", taker, "shared@example.com", "Taker", 2)
		require.Eventually(t, func() bool { email, _ := row(taker); return email == "shared@example.com" }, time.Minute, 100*time.Millisecond,
			"the taker's next event never applied once the value was free")
	})

	t.Run("a table refusing every write for a while", func(t *testing.T) {
		t.Parallel()
		const id = "user_refused_outage"
		_, err := s.db.Exec(ctx, `update maintenance set under = true`)
		require.NoError(t, err)
		send(t, "user.created", id, "outage@example.com", "Patient", 1)
		// Past the local activity's budget the write waits as a scheduled
		// activity: the run answers its query meanwhile, and its history
		// stops growing.
		time.Sleep(25 * time.Second)
		_, err = s.userState(id)
		require.NoError(t, err, "the run does not answer while its write waits")
		during := s.historyEventsOf(t, id)
		time.Sleep(30 * time.Second)
		after := s.historyEventsOf(t, id)
		t.Logf("history events of a user whose write keeps failing: %d after 25 s, %d after 55 s", during, after)
		require.Equal(t, during, after, "the history grows while the write keeps failing")
		email, _ := row(id)
		require.Empty(t, email, "written during maintenance")

		_, err = s.db.Exec(ctx, `update maintenance set under = false`)
		require.NoError(t, err)
		require.Eventually(t, func() bool { _, first := row(id); return first == "Patient" }, 30*time.Second, 100*time.Millisecond,
			"the write never landed once the table took writes again")
		s.findsBySyncState(t, id, contract.SyncStateSynced)
	})
}

// TestRefusal_AMigrationUnderTheMappingIsWaitedOutAndItsSQLRebuilt: a
// product migration changes the tables under running workers. A column
// retyped (Clerk's created_at, kept as a timestamp, becomes Unix
// milliseconds): the SQL built from the old type fails, is dropped and
// rebuilt from the table as it is, and the write lands, with no restart. A
// mapped column dropped: the write is not failed (the schema is being
// changed, not the data refused) and lands once the column is back.
func TestRefusal_AMigrationUnderTheMappingIsWaitedOutAndItsSQLRebuilt(t *testing.T) {
	t.Parallel()
	s := startSystemOn(t, &testenv.SnakeCase)
	ctx := context.Background()
	created := time.Now().Add(-time.Minute).Truncate(time.Millisecond)
	send := func(id string) {
		body, err := clerkwebhook.UserEvent("user.created", clerkwebhook.UserFields{ClerkID: id, Email: id + "@example.com",
			FirstName: "Migrated", CreatedAt: created, UpdatedAt: created})
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, s.post(t, "msg_"+id, body))
	}
	// The store has built its SQL from the tables as they were.
	_, err := s.store.UserColumns(ctx)
	require.NoError(t, err)

	_, err = s.db.Exec(ctx, `alter table app_users alter column signed_up_at type bigint using (extract(epoch from signed_up_at) * 1000)::bigint`)
	require.NoError(t, err)
	send("user_retyped_under")
	require.Eventually(t, func() bool {
		return s.count(t, fmt.Sprintf("select count(*) from app_users where signed_up_at = %d", created.UnixMilli())) == 1
	}, 30*time.Second, 100*time.Millisecond, "the write never landed with SQL built for the retyped column")

	_, err = s.db.Exec(ctx, `alter table app_users drop column given_name`)
	require.NoError(t, err)
	send("user_dropped_under")
	time.Sleep(3 * time.Second)
	require.Zero(t, s.count(t, "select count(*) from app_users where clerk_user_id = 'user_dropped_under'"), "written without the column")
	st, err := s.userState("user_dropped_under")
	require.NoError(t, err)
	require.Empty(t, st.Failed, "a changing schema failed the event")
	_, err = s.db.Exec(ctx, `alter table app_users add column given_name text`)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		return s.count(t, "select count(*) from app_users where given_name = 'Migrated' and clerk_user_id = 'user_dropped_under'") == 1
	}, 30*time.Second, 100*time.Millisecond, "the write never landed once the column was back")
}

// TestRefusal_AnAppsOwnMembershipRowStallsNoOrganization: the app already
// had a team_members row for the same team and user (its own, under an ID
// that is no Clerk membership's). Clerk's membership for that pair meets
// the app's unique (team_id, user_id); it used to retry for ever inside the
// organization's workflow, and the organization's later events (a rename)
// never applied. Now the membership fails visibly, with the constraint,
// and the rename applies.
func TestRefusal_AnAppsOwnMembershipRowStallsNoOrganization(t *testing.T) {
	t.Parallel()
	s := startSystemOn(t, &testenv.SnakeCase)
	ctx := context.Background()
	const orgID, userID = "org_app_member", "user_app_member"
	created := time.Now().Add(-time.Minute).Truncate(time.Millisecond)
	org := clerkwebhook.OrganizationFields{ClerkID: orgID, Name: "Accounts", Slug: "accounts", CreatedAt: created, UpdatedAt: created}
	post := func(msgID string, body []byte, err error) {
		t.Helper()
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, s.post(t, msgID, body))
	}
	body, err := clerkwebhook.OrganizationEvent("organization.created", org)
	post("msg_app_member_org", body, err)
	body, err = clerkwebhook.UserEvent("user.created", clerkwebhook.UserFields{ClerkID: userID, Email: "member@example.com",
		CreatedAt: created, UpdatedAt: created})
	post("msg_app_member_user", body, err)
	require.Eventually(t, func() bool {
		return s.count(t, "select count(*) from teams where clerk_org_id = '"+orgID+"'")+
			s.count(t, "select count(*) from app_users where clerk_user_id = '"+userID+"'") == 2
	}, 30*time.Second, 100*time.Millisecond)
	_, err = s.db.Exec(ctx, `insert into team_members (clerk_membership_id, team_id, user_id, role)
select 'app-invite-7', t.id, u.id, 'owner' from teams t, app_users u where t.clerk_org_id = $1 and u.clerk_user_id = $2`, orgID, userID)
	require.NoError(t, err)

	body, err = clerkwebhook.MembershipEvent("organizationMembership.created", clerkwebhook.MembershipFields{
		ClerkID: "orgmem_app_member", UserID: userID, Role: "org:member", Organization: org, CreatedAt: created, UpdatedAt: created})
	post("msg_app_member_mem", body, err)
	renamed := org
	renamed.Name, renamed.UpdatedAt = "Accounts Payable", created.Add(time.Second)
	body, err = clerkwebhook.OrganizationEvent("organization.updated", renamed)
	post("msg_app_member_rename", body, err)
	require.Eventually(t, func() bool {
		return s.count(t, "select count(*) from teams where title = 'Accounts Payable'") == 1
	}, 2*time.Minute, 200*time.Millisecond, "the organization's rename never applied")
	var failed []workflows.FailedEvent
	require.Eventually(t, func() bool {
		v, err := s.temporal.QueryWorkflow(ctx, contract.Organization.WorkflowID(s.taskQueue, orgID), "", contract.StateQuery)
		if err != nil {
			return false
		}
		var st workflows.OrganizationState
		if v.Get(&st) != nil {
			return false
		}
		failed = st.Failed
		return slices.ContainsFunc(failed, func(f workflows.FailedEvent) bool {
			return f.SQLState == "23505" && f.Constraint == "team_members_team_id_user_id_key"
		})
	}, time.Minute, 200*time.Millisecond, "the membership never showed failed with the app's constraint: %+v", &failed)
	require.Equal(t, 1, s.count(t, "select count(*) from team_members where clerk_membership_id = 'app-invite-7' and role = 'owner'"),
		"the app's own row is untouched")
}
