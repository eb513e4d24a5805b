package workflows

import (
	"fmt"
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/clerksync/clerksync/activities"
	"github.com/clerksync/clerksync/ensure/contract"
)

// ProgressQuery returns a BackfillWorkflow's BackfillProgress.
const ProgressQuery = "progress"

// BackfillWorkflowID is the workflow ID of a backfill or reconciliation
// run of the deployment on taskQueue (contract.IDPrefix).
func BackfillWorkflowID(taskQueue, name string) string {
	return contract.IDPrefix(taskQueue) + "backfill/" + name
}

// Phases of a run.
const (
	PhaseListing = "listing"
	// PhaseOrganizations: the users are listed; organizations and their
	// memberships are being read.
	PhaseOrganizations = "organizations"
	PhaseConfirming    = "confirming"
	PhaseDone          = "done"
	// PhaseStopped: reconciliation's safety stop refused to remove anything.
	PhaseStopped = "stopped"
)

// DefaultMaxDeleteFloor and DefaultMaxDeleteShare make reconciliation's
// default safety stop: it removes at most 100 users or 1% of the local
// users, whichever is larger, and never more than DefaultMaxDeleteSmallShare
// of them (at least one), unless told otherwise: on a table of 80 users,
// removing 80 is never routine, while on one of a million, 10,000 may be.
const (
	DefaultMaxDeleteFloor      = 100
	DefaultMaxDeleteShare      = 0.01
	DefaultMaxDeleteSmallShare = 0.1
)

// DefaultMaxDelete is the safety stop for a table of local users.
func DefaultMaxDelete(local int) int {
	return min(max(DefaultMaxDeleteFloor, int(float64(local)*DefaultMaxDeleteShare)),
		max(1, int(float64(local)*DefaultMaxDeleteSmallShare)))
}

// backfillSlice bounds one BackfillPages call, so progress is recorded (and
// the run can continue as new) between calls.
const backfillSlice = 20 * time.Second

// backfillOptions: a call heartbeats its cursor after every page and every
// 10 s while it waits on Clerk; a worker that dies mid-call is noticed
// within the heartbeat timeout, and the call resumes from its last heartbeat
// on another attempt. Retries are unlimited: Clerk or PostgreSQL being away
// delays a run, never ends it.
var backfillOptions = workflow.ActivityOptions{
	StartToCloseTimeout: backfillSlice + 2*time.Minute,
	HeartbeatTimeout:    30 * time.Second,
	RetryPolicy:         retryForever,
}

// BackfillInput starts (or continues) a BackfillWorkflow.
type BackfillInput struct {
	// Reconcile also removes local users Clerk no longer has, each confirmed
	// by a 404, behind the safety stop.
	Reconcile bool `json:"reconcile,omitempty"`
	// MaxDelete is the safety stop; 0 is the default (DefaultMaxDelete).
	MaxDelete int `json:"max_delete,omitempty"`
	// Progress is carried over by continue-as-new.
	Progress BackfillProgress `json:"progress"`
}

// BackfillProgress is what a run has done, for the progress query and the
// run's result.
type BackfillProgress struct {
	Reconcile bool   `json:"reconcile,omitempty"`
	Phase     string `json:"phase"`
	// Total is how many users Clerk said it had when the run began.
	Total  int                       `json:"total"`
	Cursor activities.BackfillCursor `json:"cursor"`
	// Windows are the listing's windows read side by side, each with its
	// cursor; none while it is read in one (Cursor).
	Windows   []activities.BackfillWindow `json:"windows,omitempty"`
	Stats     activities.BackfillStats    `json:"stats"`
	StartedAt time.Time                   `json:"started_at"`
	// UpdatedAt is when this progress was recorded; with StartedAt it gives
	// the elapsed time and the rate.
	UpdatedAt time.Time `json:"updated_at"`
	// Reconciliation: the candidates (live local users Clerk did not list),
	// the safety stop, and what confirming them did.
	Unseen     int    `json:"unseen,omitempty"`
	MaxDelete  int    `json:"max_delete,omitempty"`
	SafetyStop string `json:"safety_stop,omitempty"`
	After      string `json:"after,omitempty"`
	Removed    int    `json:"removed,omitempty"`
	Restored   int    `json:"restored,omitempty"`
	RowsKept   int    `json:"rows_kept,omitempty"`
	// Instance is the Clerk instance the run reads (and the database's).
	Instance string `json:"instance,omitempty"`
	// Refused lists the first users PostgreSQL refused; Stats.Refused
	// counts them all.
	Refused []activities.RefusedUser `json:"refused,omitempty"`
	// OrganizationOffset is how far the organization listing is.
	OrganizationOffset int `json:"organization_offset,omitempty"`
	// OrganizationsSkipped says why the organization phase was skipped:
	// the instance has no Organizations feature.
	OrganizationsSkipped string `json:"organizations_skipped,omitempty"`
	// NoOrganizations is the organization listing's answer, known at the
	// run's start: Clerk had none to list.
	NoOrganizations *activities.BackfillOrganizationsResult `json:"no_organizations,omitempty"`
	// Reconciliation of organizations: the candidates and what confirming
	// them did.
	UnseenOrganizations  int                                      `json:"unseen_organizations,omitempty"`
	UnseenMemberships    int                                      `json:"unseen_memberships,omitempty"`
	OrganizationsDone    bool                                     `json:"organizations_done,omitempty"`
	OrganizationsOutcome *activities.ReconcileOrganizationsResult `json:"organizations_outcome,omitempty"`
}

// BackfillWorkflow reads every user from the Clerk Backend API into the
// users table, ID backfill/<name>: a page of 500 at a time in a stable
// order, each page written in one transaction under the same rules as
// webhooks (so a backfill racing webhooks and deletions converges), and a
// user it sees first gets the trial a signup would. It starts no workflow
// per user. Then it reads every organization and its memberships the same
// way. With Reconcile it then removes the local organizations, memberships
// and users Clerk no longer has (organizations and users each confirmed
// with a 404, memberships by a second listing), unless there are more than
// the safety stop allows. It continues as new carrying its progress, so a crash or a
// deploy resumes where it was.
func BackfillWorkflow(ctx workflow.Context, in BackfillInput) (BackfillProgress, error) {
	r := &backfillRun{in: in, p: in.Progress}
	if err := workflow.SetQueryHandler(ctx, ProgressQuery, func() (BackfillProgress, error) { return r.p, nil }); err != nil {
		return r.p, fmt.Errorf("register %s query: %w", ProgressQuery, err)
	}
	ctx = workflow.WithActivityOptions(ctx, backfillOptions)
	info := workflow.GetInfo(ctx)
	// The seen set is this run's alone: one that failed or was terminated
	// leaves its own, which the next run ignores and drops.
	r.run = activities.SeenSetKey(info.WorkflowExecution.ID, info.FirstRunID)
	if r.p.Phase == "" {
		if stopped, err := r.start(ctx); err != nil || stopped {
			return r.p, err
		}
	}
	// Each phase does its work only in its phase, and moves p to the next;
	// a continue-as-new ends the run here and resumes in the phase it left.
	for _, phase := range []func(workflow.Context) error{r.listUsers, r.listOrganizations, r.checkSafety, r.reconcileOrganizations, r.confirmUsers} {
		if err := phase(ctx); err != nil {
			return r.p, err
		}
	}
	return r.p, r.finish(ctx)
}

// unseenPhrase says what a reconciliation did not see: "1000 local users
// are", "3 local users and 2 organizations are".
func unseenPhrase(p BackfillProgress) string {
	var parts []string
	for _, c := range []struct {
		n    int
		what string
	}{{p.Unseen, "local users"}, {p.UnseenOrganizations, "organizations"}, {p.UnseenMemberships, "memberships"}} {
		if c.n > 0 || (c.what == "local users" && p.UnseenOrganizations+p.UnseenMemberships == 0) {
			parts = append(parts, fmt.Sprintf("%d %s", c.n, c.what))
		}
	}
	phrase := parts[0]
	switch len(parts) {
	case 2:
		phrase = parts[0] + " and " + parts[1]
	case 3:
		phrase = parts[0] + ", " + parts[1] + " and " + parts[2]
	}
	return phrase + " are"
}

// retryRefusedAtEnd is the change (workflow.GetVersion) that writes the
// users a run's listing refused once more when the listing ends. A run
// of v0.1.0 that ends its listing with refused users moved on at once, and
// still does on replay.
const retryRefusedAtEnd = "backfill-retry-refused-at-end"

// retryRefused writes the users p's listing refused once more, from
// Clerk's data as it is now: a value one user held for another in listing
// order is often free by the end. Those written leave p's lists and
// counts.
func retryRefused(ctx workflow.Context, p *BackfillProgress) error {
	if len(p.Refused) == 0 || workflow.GetVersion(ctx, retryRefusedAtEnd, workflow.DefaultVersion, 1) == workflow.DefaultVersion {
		return nil
	}
	in := activities.RetryRefusedInput{}
	for _, r := range p.Refused {
		in.ClerkIDs = append(in.ClerkIDs, r.ClerkID)
	}
	var a *activities.Activities
	var res activities.RetryRefusedResult
	if err := workflow.ExecuteActivity(ctx, a.RetryRefused, in).Get(ctx, &res); err != nil {
		return err
	}
	p.Refused = res.StillRefused
	p.Stats.Refused -= res.Inserted + res.Updated
	p.Stats.Inserted += res.Inserted
	p.Stats.Updated += res.Updated
	return nil
}

// ReconcileScheduleID names the Schedule that runs reconciliation on a task
// queue (`starter schedule reconcile`).
func ReconcileScheduleID(taskQueue string) string { return "reconcile/" + taskQueue }

// countSafetyStop counts a run's safety stop, by reason (instance,
// max_delete), as clerksync_backfill_safety_stops_total on the worker's
// /metrics, for the alert that says someone must look. The SDK's metrics
// handler records nothing while a run replays, so a stop counts once.
func countSafetyStop(ctx workflow.Context, reason string) {
	workflow.GetMetricsHandler(ctx).WithTags(map[string]string{"reason": reason}).Counter("clerksync_backfill_safety_stops").Inc(1)
}
