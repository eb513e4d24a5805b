package workflows

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"

	"github.com/clerksync/clerksync/activities"
	"github.com/clerksync/clerksync/ensure/contract"
	"github.com/clerksync/clerksync/internal/clerkevent"
)

const testOrgID = "org_2abc"

// orgBundle records what an OrganizationWorkflow wrote, in order.
type orgBundle struct {
	*bundle
	writes []string // "org", "org-delete", "member <id>", "member-delete <id>"
}

func setupOrg(t *testing.T, upsertMembershipErr error) *orgBundle {
	t.Helper()
	b := &orgBundle{bundle: &bundle{env: newEnv()}}
	b.env.RegisterActivity(a)
	b.env.OnActivity(a.RequestErasure, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.RequestErasureInput) error {
			b.erased = append(b.erased, in)
			return nil
		}).Maybe()
	b.env.OnActivity(a.UpsertOrganization, mock.Anything, mock.Anything).Return(
		func(context.Context, clerkevent.Organization) (activities.OrganizationWriteResult, error) {
			b.writes = append(b.writes, "org")
			return activities.OrganizationWriteResult{Outcome: activities.Updated}, nil
		}).After(writeTime).Maybe()
	b.env.OnActivity(a.DeleteOrganization, mock.Anything, mock.Anything).Return(
		func(context.Context, activities.DeleteOrganizationInput) (activities.RemovalResult, error) {
			b.writes = append(b.writes, "org-delete")
			return activities.RemovalResult{Removed: true}, nil
		}).After(writeTime).Maybe()
	b.env.OnActivity(a.UpsertMembership, mock.Anything, mock.Anything).Return(
		func(_ context.Context, m clerkevent.Membership) (activities.OrganizationWriteResult, error) {
			b.writes = append(b.writes, "member "+m.ClerkID)
			return activities.OrganizationWriteResult{Outcome: activities.Inserted}, upsertMembershipErr
		}).After(writeTime).Maybe()
	b.env.OnActivity(a.DeleteMembership, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.DeleteMembershipInput) (activities.RemovalResult, error) {
			b.writes = append(b.writes, "member-delete "+in.Membership.ClerkID)
			return activities.RemovalResult{Removed: true}, nil
		}).After(writeTime).Maybe()
	return b
}

func (b *orgBundle) runOrg(t *testing.T) OrganizationState {
	t.Helper()
	b.env.ExecuteWorkflow(OrganizationWorkflow, OrganizationWorkflowInput{ClerkID: testOrgID})
	require.True(t, b.env.IsWorkflowCompleted())
	require.NoError(t, b.env.GetWorkflowError())
	v, err := b.env.QueryWorkflow(contract.StateQuery)
	require.NoError(t, err)
	var s OrganizationState
	require.NoError(t, v.Get(&s))
	return s
}

func orgEvent(svixID string, typ clerkevent.Type) clerkevent.Event {
	return clerkevent.Event{ID: svixID, Type: typ, OrganizationID: testOrgID,
		Organization: &clerkevent.Organization{ClerkID: testOrgID, ClerkUpdatedAt: epoch}}
}

func memberEvent(svixID string, typ clerkevent.Type, memberID string) clerkevent.Event {
	return clerkevent.Event{ID: svixID, Type: typ, OrganizationID: testOrgID, ClerkID: "user_1",
		Membership: &clerkevent.Membership{ClerkID: memberID, UserID: "user_1", Role: "org:member",
			Organization: clerkevent.Organization{ClerkID: testOrgID, ClerkUpdatedAt: epoch}, ClerkUpdatedAt: epoch}}
}

// TestOrganizationWorkflow_AppliesEachEventOnceAndOnlyMembershipDeletionsAfterTheOrganizations:
// a redelivery is dropped, every other event is written in arrival order,
// and once the organization is deleted only a membership's deletion is
// still written (its tombstone records it).
func TestOrganizationWorkflow_AppliesEachEventOnceAndOnlyMembershipDeletionsAfterTheOrganizations(t *testing.T) {
	t.Parallel()
	b := setupOrg(t, nil)
	b.at(0, memberEvent("msg_m1", clerkevent.MembershipCreated, "orgmem_1"))
	b.at(time.Second, orgEvent("msg_o1", clerkevent.OrganizationCreated))
	b.at(2*time.Second, memberEvent("msg_m1", clerkevent.MembershipCreated, "orgmem_1")) // redelivered
	b.at(3*time.Second, clerkevent.Event{ID: "msg_od", Type: clerkevent.OrganizationDeleted, OrganizationID: testOrgID})
	b.at(4*time.Second, memberEvent("msg_m2", clerkevent.MembershipCreated, "orgmem_2"))
	b.at(5*time.Second, memberEvent("msg_m1d", clerkevent.MembershipDeleted, "orgmem_1"))
	s := b.runOrg(t)
	require.Equal(t, []string{"member orgmem_1", "org", "org-delete", "member-delete orgmem_1"}, b.writes)
	require.True(t, s.Deleted)
	require.Equal(t, contract.SyncStateDeleted, s.SyncState)
	require.Equal(t, []string{"msg_m1", "msg_o1", "msg_od", "msg_m2", "msg_m1d"}, s.RecentEventIDs)
	require.Equal(t, []activities.RequestErasureInput{{Entity: contract.Organization, ClerkID: testOrgID}},
		b.erased, "the deleted organization's runs are to be erased")
}

// TestOrganizationWorkflow_RecordsARefusedEventAndForgetsItsID: data
// PostgreSQL refuses for good shows the run failed, with the error, and
// its Svix ID is forgotten so a Resend applies.
func TestOrganizationWorkflow_RecordsARefusedEventAndForgetsItsID(t *testing.T) {
	t.Parallel()
	b := setupOrg(t, temporal.NewNonRetryableApplicationError("refused", activities.ErrTypeInvalidUserData, nil))
	b.at(0, memberEvent("msg_bad", clerkevent.MembershipCreated, "orgmem_bad"))
	s := b.runOrg(t)
	require.Equal(t, contract.SyncStateFailed, s.SyncState)
	require.Len(t, s.Failed, 1)
	require.Equal(t, "msg_bad", s.Failed[0].EventID)
	require.Contains(t, s.Failed[0].Error, "refused")
	require.Empty(t, s.RecentEventIDs, "a Resend of the refused event is not a duplicate")
}
