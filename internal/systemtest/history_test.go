package systemtest

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/temporalproto"
	"go.temporal.io/sdk/worker"

	"github.com/clerksync/clerksync/ensure/contract"
	"github.com/clerksync/clerksync/internal/clerkwebhook"
	"github.com/clerksync/clerksync/internal/testsupport/clerkfake"
	"github.com/clerksync/clerksync/workflows"
)

var updateHistories = flag.Bool("update-histories", false,
	"write the recorded UserWorkflow histories to workflows/testdata, where the replay test keeps them valid")

// historyPrefix and orgHistoryPrefix name the files -update-histories
// writes. Name new files when a workflow changes shape once clerksync runs
// in production (keeping the old ones: they are what running workflows look
// like).
const (
	historyPrefix    = "user_workflow_v3_"
	orgHistoryPrefix = "organization_workflow_v1_"
)

// TestUserWorkflowHistory_Replays records real UserWorkflow histories
// through the whole stack (a signup with a redelivery, a later update, an
// ensure whose profile comes from Clerk, a deletion), OrganizationWorkflow
// histories (a membership with a redelivery, a deletion) and a
// reconciliation, and replays each
// against the current code. With -update-histories it also saves them for
// workflows' replay test, which then guards every later change of
// UserWorkflow against breaking running workflows.
func TestUserWorkflowHistory_Replays(t *testing.T) {
	t.Parallel()
	s := startSystem(t)
	const id = "user_history"
	base := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	event := func(typ string, version int) []byte {
		b, err := clerkwebhook.UserEvent(typ, clerkwebhook.UserFields{
			ClerkID: id, Email: "h@example.com", FirstName: fmt.Sprintf("v%d", version),
			CreatedAt: base, UpdatedAt: base.Add(time.Duration(version) * time.Second),
		})
		require.NoError(t, err)
		return b
	}
	deleted, err := clerkwebhook.DeletedEvent(id, base.Add(time.Minute))
	require.NoError(t, err)

	// Each step's run completes before the next, so each is one history.
	s.recordRun(t, contract.User.WorkflowID(s.taskQueue, id), "signup", func() {
		require.Equal(t, 200, s.post(t, "msg_h1", event("user.created", 1)))
		require.Equal(t, 200, s.post(t, "msg_h1", event("user.created", 1)))
	})
	s.recordRun(t, contract.User.WorkflowID(s.taskQueue, id), "update", func() { require.Equal(t, 200, s.post(t, "msg_h2", event("user.updated", 2))) })
	s.recordRun(t, contract.User.WorkflowID(s.taskQueue, id), "delete", func() { require.Equal(t, 200, s.post(t, "msg_hdel", deleted)) })

	const ensured = "user_history_ensured"
	s.clerk.PutUser(clerkfake.User{ID: ensured, Email: "e@example.com", FirstName: "Ensured", CreatedAt: base, UpdatedAt: base})
	s.recordRun(t, contract.User.WorkflowID(s.taskQueue, ensured), "ensure", func() {
		code, _ := s.ensureCall(t, s.token(t, ensured))
		require.Equal(t, 200, code)
	})

	// An organization: a membership before its organization's creation
	// (with a redelivery), then the organization's deletion.
	const orgID = "org_history"
	org := clerkwebhook.OrganizationFields{ClerkID: orgID, Name: "History", Slug: "history", CreatedAt: base, UpdatedAt: base}
	member, err := clerkwebhook.MembershipEvent("organizationMembership.created", clerkwebhook.MembershipFields{
		ClerkID: "orgmem_history", UserID: "user_history_member", Role: "org:member", Organization: org, CreatedAt: base, UpdatedAt: base})
	require.NoError(t, err)
	orgDeleted, err := clerkwebhook.OrganizationDeletedEvent(orgID, "history", base.Add(time.Minute))
	require.NoError(t, err)
	s.recordRun(t, contract.Organization.WorkflowID(s.taskQueue, orgID), "membership", func() {
		require.Equal(t, 200, s.post(t, "msg_hm", member))
		require.Equal(t, 200, s.post(t, "msg_hm", member))
	})
	s.recordRun(t, contract.Organization.WorkflowID(s.taskQueue, orgID), "delete", func() { require.Equal(t, 200, s.post(t, "msg_hodel", orgDeleted)) })

	// A reconciliation: a page from Clerk, a user Clerk no longer has and the
	// member it never had (both local users: past the safety stop of a table
	// this small, so the run is told they really are gone).
	s.clerk.DeleteUser(ensured)
	require.Equal(t, workflows.PhaseDone, s.runBackfill(t, "history", workflows.BackfillInput{Reconcile: true, MaxDelete: 2}).Phase)
	history := s.history(t, workflows.BackfillWorkflowID(s.taskQueue, "history"), "")
	replayer := worker.NewWorkflowReplayer()
	replayer.RegisterWorkflow(workflows.BackfillWorkflow)
	require.NoError(t, replayer.ReplayWorkflowHistory(nil, history))
	if *updateHistories {
		b, err := temporalproto.CustomJSONMarshalOptions{Indent: "  "}.Marshal(history)
		require.NoError(t, err)
		path := filepath.Join("..", "..", "workflows", "testdata", "backfill_workflow_v3_reconcile.json")
		require.NoError(t, os.WriteFile(path, b, 0o644))
		t.Logf("wrote %s (%d events)", path, len(history.Events))
	}
}

// recordRun does what act sends, waits for the entity workflow's newest run
// to complete, replays its history and, with -update-histories, saves it as
// historyPrefix+name (orgHistoryPrefix+name for an organization).
func (s *system) recordRun(t *testing.T, workflowID, name string, act func()) {
	t.Helper()
	before := map[string]bool{}
	for _, e := range s.runs(t, workflowID, " AND ExecutionStatus = 'Completed'") {
		before[e.GetExecution().GetRunId()] = true
	}
	act()
	// A new completed run, by ID: a deletion's run erases the earlier ones,
	// so a count could go down.
	var runID string
	require.Eventually(t, func() bool {
		for _, e := range s.runs(t, workflowID, " AND ExecutionStatus = 'Completed'") {
			if !before[e.GetExecution().GetRunId()] {
				runID = e.GetExecution().GetRunId()
				return true
			}
		}
		return false
	}, time.Minute, 50*time.Millisecond, "%s: the run did not complete", name)
	history := s.history(t, workflowID, runID)
	replayer := worker.NewWorkflowReplayer()
	replayer.RegisterWorkflow(workflows.UserWorkflow)
	replayer.RegisterWorkflow(workflows.OrganizationWorkflow)
	require.NoError(t, replayer.ReplayWorkflowHistory(nil, history), name)
	if *updateHistories {
		b, err := temporalproto.CustomJSONMarshalOptions{Indent: "  "}.Marshal(history)
		require.NoError(t, err)
		prefix := historyPrefix
		if strings.Contains(workflowID, "org/") {
			prefix = orgHistoryPrefix
		}
		path := filepath.Join("..", "..", "workflows", "testdata", prefix+name+".json")
		require.NoError(t, os.WriteFile(path, b, 0o644))
		t.Logf("wrote %s (%d events)", path, len(history.Events))
	}
}

// history fetches one run's whole history (runID "" is the newest run).
func (s *system) history(t *testing.T, workflowID, runID string) *historypb.History {
	t.Helper()
	history := &historypb.History{}
	it := s.temporal.GetWorkflowHistory(context.Background(), workflowID, runID, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		ev, err := it.Next()
		require.NoError(t, err)
		history.Events = append(history.Events, ev)
	}
	return history
}

// TestWorkflowHistory_NewBranchesReplay records the runs that take the
// branches added under workflow.GetVersion since v0.1.0, and replays them:
// a user's write still failing after its local budget, which goes on as a
// scheduled activity (write-scheduled-after-budget), and a backfill that
// writes its refused users once more at the end of its listing
// (backfill-retry-refused-at-end). With -update-histories they are saved
// beside the others, so the replay test guards these branches too.
func TestWorkflowHistory_NewBranchesReplay(t *testing.T) {
	t.Parallel()
	s := startSystem(t)
	ctx := context.Background()
	const id = "user_history_fallback"
	_, err := s.db.Exec(ctx, `
create function refuse_for_a_while() returns trigger language plpgsql as $$
begin
    if new.clerk_id = 'user_history_fallback' then
        raise exception 'users is being migrated' using errcode = '55P03';
    end if;
    return new;
end $$;
create trigger users_refuse before insert or update on users for each row execute function refuse_for_a_while()`)
	require.NoError(t, err)
	created := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	body, err := clerkwebhook.UserEvent("user.created", clerkwebhook.UserFields{ClerkID: id, Email: "fallback@example.com",
		CreatedAt: created, UpdatedAt: created})
	require.NoError(t, err)
	s.recordRun(t, contract.User.WorkflowID(s.taskQueue, id), "write_fallback", func() {
		require.Equal(t, 200, s.post(t, "msg_hfallback", body))
		require.Eventually(t, func() bool {
			for _, e := range s.history(t, contract.User.WorkflowID(s.taskQueue, id), "").GetEvents() {
				if e.GetEventType() == enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED {
					return true
				}
			}
			return false
		}, time.Minute, 250*time.Millisecond, "the write never went on as a scheduled activity")
		_, err := s.db.Exec(ctx, `drop trigger users_refuse on users`)
		require.NoError(t, err)
	})

	_, err = s.db.Exec(ctx, `create unique index users_email_key on users (email)`)
	require.NoError(t, err)
	users := clerkUsers("user_hretry", 3)
	s.clerk.PutUsers(users...)
	require.Equal(t, workflows.PhaseDone, s.runBackfill(t, "history-before", workflows.BackfillInput{}).Phase)
	users[0].Email, users[2].Email = users[2].Email, "moved@example.com"
	users[0].UpdatedAt, users[2].UpdatedAt = users[0].UpdatedAt.Add(time.Hour), users[2].UpdatedAt.Add(time.Hour)
	s.clerk.PutUsers(users...)
	p := s.runBackfill(t, "history-retry", workflows.BackfillInput{})
	require.Equal(t, workflows.PhaseDone, p.Phase)
	require.Zero(t, p.Stats.Refused)
	history := s.history(t, workflows.BackfillWorkflowID(s.taskQueue, "history-retry"), "")
	replayer := worker.NewWorkflowReplayer()
	replayer.RegisterWorkflow(workflows.BackfillWorkflow)
	require.NoError(t, replayer.ReplayWorkflowHistory(nil, history))
	if *updateHistories {
		b, err := temporalproto.CustomJSONMarshalOptions{Indent: "  "}.Marshal(history)
		require.NoError(t, err)
		path := filepath.Join("..", "..", "workflows", "testdata", "backfill_workflow_v3_retry_refused.json")
		require.NoError(t, os.WriteFile(path, b, 0o644))
		t.Logf("wrote %s (%d events)", path, len(history.Events))
	}
}
