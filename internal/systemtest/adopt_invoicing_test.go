package systemtest

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/clerksync/clerksync/internal/clerkwebhook"
	"github.com/clerksync/clerksync/internal/testsupport/clerkfake"
	"github.com/clerksync/clerksync/internal/testsupport/testenv"
	"github.com/clerksync/clerksync/workflows"
)

// TestAdopt_InvoicingAppEndToEnd adopts the invoicing app of
// docs/examples/invoicing as docs/adopting.md walks through it: an app with
// users, invoices, paid plans and workspaces from before Clerk, and Clerk
// users that the migration created with external_id (or that signed up
// with the address of an invite). A first backfill under a mapping without
// the display name links every legacy row in place (invoices attached),
// keeps the roles the app set, gives trials to new customers only and
// writes memberships into the app's enum. The mapping then gains the
// display name and the members' join time: the next backfill re-projects
// every user and membership. A deletion soft-deletes, touching the row's
// updated_at, and the operator's lookup shows the kept row.
func TestAdopt_InvoicingAppEndToEnd(t *testing.T) {
	t.Parallel()
	s := startSystemOn(t, &testenv.Invoicing)
	ctx := context.Background()
	full, err := os.ReadFile(testenv.Invoicing.MappingFile())
	require.NoError(t, err)
	const fullName = "    full_name: full_name        # first and last name, joined as Clerk joins them\n"
	const joinedAt = "    joined_at: created_at      # Clerk's created_at never changes\n"
	const clear = "      clear: [full_name]\n"
	for _, line := range []string{fullName, joinedAt, clear} {
		require.Contains(t, string(full), line)
	}
	s.remap(t, strings.NewReplacer(fullName, "", joinedAt, "", clear, "").Replace(string(full)))

	// The app before clerksync: an owner and an admin (roles the app set),
	// a paying customer, an invite; each with an invoice.
	legacy := map[string]int{}
	for _, r := range []struct{ name, email, role string }{
		{"owner", "owner@acme.test", "owner"}, {"admin", "admin@acme.test", "admin"},
		{"payer", "payer@acme.test", "member"}, {"invitee", "Invitee@Acme.test", "member"},
	} {
		var id int
		require.NoError(t, s.db.QueryRow(ctx, `insert into app.users (email, role, full_name) values ($1, $2, 'Before') returning id`,
			r.email, r.role).Scan(&id))
		_, err := s.db.Exec(ctx, `insert into app.invoices (user_id, total) values ($1, 100)`, id)
		require.NoError(t, err)
		legacy[r.name] = id
	}
	_, err = s.db.Exec(ctx, `insert into app.subscriptions (user_id, plan, status) values ($1, 'pro', 'active')`, legacy["payer"])
	require.NoError(t, err)

	// Clerk: the migrated users carry external_id, the invitee signed up
	// with the invite's address (verified), and twenty customers are new,
	// some with an admin role in Clerk's metadata. All created recently
	// enough for a trial.
	created := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	clerkUser := func(id, email, first, last string) clerkfake.User {
		return clerkfake.User{ID: id, Email: email, FirstName: first, LastName: last, CreatedAt: created, UpdatedAt: created}
	}
	var users []clerkfake.User
	for _, name := range []string{"owner", "admin", "payer"} {
		u := clerkUser("user_inv_"+name, name+"@acme.test", strings.ToUpper(name[:1])+name[1:], "Legacy")
		u.ExternalID = fmt.Sprint(legacy[name])
		users = append(users, u)
	}
	users = append(users, clerkUser("user_inv_invitee", "invitee@acme.test", "Ivy", "Invited"))
	for i := range 20 {
		u := clerkUser(fmt.Sprintf("user_inv_new%02d", i), fmt.Sprintf("new%02d@acme.test", i), "New", fmt.Sprint(i))
		if i%5 == 0 {
			u.PublicMetadata = `{"role":"admin"}`
		}
		users = append(users, u)
	}
	s.clerk.PutUsers(users...)
	var (
		orgs    []clerkfake.Organization
		members []clerkfake.Membership
	)
	for w := range 2 {
		org := clerkfake.Organization{ID: fmt.Sprintf("org_inv%d", w), Name: fmt.Sprintf("Workspace %d", w), CreatedAt: created, UpdatedAt: created}
		orgs = append(orgs, org)
		for i, u := range users[w*10 : w*10+10] {
			role := "org:member"
			if i == 0 {
				role = "org:admin"
			}
			members = append(members, clerkfake.Membership{ID: fmt.Sprintf("orgmem_inv%d_%d", w, i), OrganizationID: org.ID, UserID: u.ID,
				Role: role, CreatedAt: created.Add(time.Duration(i) * time.Minute), UpdatedAt: created})
		}
	}
	s.clerk.PutOrganizations(orgs...)
	s.clerk.PutMemberships(members...)

	p := s.runBackfill(t, "invoicing-first", workflows.BackfillInput{})
	require.Equal(t, workflows.PhaseDone, p.Phase)
	require.Empty(t, p.Refused, "no user refused")
	for name, id := range legacy {
		require.Equal(t, 1, s.count(t, fmt.Sprintf(`select count(*) from app.users u join app.invoices i on i.user_id = u.id
where u.id = %d and u.clerk_user_id = 'user_inv_%s' and u.deleted_at is null`, id, name)), "%s: linked in place, its invoice attached", name)
	}
	require.Equal(t, len(users), s.count(t, `select count(*) from app.users`), "no second row for a legacy user")
	require.Equal(t, map[string]int{"owner": 1, "admin": 5, "member": 18}, s.roles(t), "the app's roles kept; Clerk's admins written")
	require.Equal(t, 1, s.count(t, fmt.Sprintf(`select count(*) from app.subscriptions where user_id = %d`, legacy["payer"])), "no trial for a paying customer")
	require.Equal(t, len(users)-1, s.count(t, `select count(*) from app.subscriptions where plan = 'trial' and status = 'trialing'`), "a trial for every other customer")
	require.Equal(t, 20, s.count(t, `select count(*) from app.workspace_members m join app.workspaces w on w.id = m.workspace_id
where m.joined_at is null and m.role = (case when m.clerk_membership_id like '%\_0' then 'org:admin' else 'org:member' end)::app.workspace_role`),
		"every membership, its role in the app's enum, no join time mapped yet")
	require.Equal(t, 4, s.count(t, `select count(*) from app.users where full_name = 'Before'`), "no display name mapped yet")

	// The mapping gains the display name and the join time; the next
	// backfill, of Clerk data unchanged since, re-projects every row.
	s.remap(t, string(full))
	p = s.runBackfill(t, "invoicing-remapped", workflows.BackfillInput{})
	require.Equal(t, workflows.PhaseDone, p.Phase)
	require.Equal(t, 0, s.count(t, `select count(*) from app.users where full_name is null or full_name = 'Before'`), "every user re-projected")
	require.Equal(t, 1, s.count(t, `select count(*) from app.users where clerk_user_id = 'user_inv_invitee' and full_name = 'Ivy Invited'`))
	require.Equal(t, 20, s.count(t, `select count(*) from app.workspace_members m where m.joined_at is not null`), "every membership re-projected")
	require.Equal(t, map[string]int{"owner": 1, "admin": 5, "member": 18}, s.roles(t), "the roles still the app's")
	require.Equal(t, len(users), s.count(t, `select count(*) from app.subscriptions`), "a second backfill gives no second trial")

	// A deletion soft-deletes: the row and its invoice stay, the display
	// name cleared, deleted_at and updated_at set.
	var before time.Time
	require.NoError(t, s.db.QueryRow(ctx, `select updated_at from app.users where id = $1`, legacy["admin"]).Scan(&before))
	body, err := clerkwebhook.DeletedEvent("user_inv_admin", time.Now())
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, s.post(t, "msg_inv_admin_gone", body))
	require.Eventually(t, func() bool {
		return s.count(t, fmt.Sprintf(`select count(*) from app.users u join app.invoices i on i.user_id = u.id
where u.id = %d and u.deleted_at is not null and u.full_name is null and u.updated_at > '%s'`, legacy["admin"], before.Format(time.RFC3339Nano))) == 1
	}, 30*time.Second, 100*time.Millisecond, "soft-deleted, its updated_at touched, its invoice attached")
	rec, err := s.store.UserRecord(ctx, "user_inv_admin")
	require.NoError(t, err)
	require.True(t, rec.Tombstoned)
	require.True(t, rec.SoftDeleted)
	require.NotNil(t, rec.Row, "starter status shows the kept row")
}

// roles counts the invoicing app's users by role.
func (s *system) roles(t *testing.T) map[string]int {
	t.Helper()
	rows, err := s.db.Query(context.Background(), `select role, count(*) from app.users group by role`)
	require.NoError(t, err)
	n := map[string]int{}
	for rows.Next() {
		var (
			role  string
			count int
		)
		require.NoError(t, rows.Scan(&role, &count))
		n[role] = count
	}
	require.NoError(t, rows.Err())
	return n
}
