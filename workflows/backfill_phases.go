package workflows

import (
	"fmt"

	"go.temporal.io/sdk/workflow"

	"github.com/clerksync/clerksync/activities"
)

// backfillRun is one run of BackfillWorkflow: its input, its progress (the
// progress query's answer, carried over by continue-as-new) and its seen
// set's key. Its methods are the run's phases, in order; each acts only in
// its own phase. The commands they make, and their order, are the
// workflow's: recorded histories (testdata/backfill_workflow_*.json and
// testdata/v0.1.0/backfill_*.json) replay on them.
type backfillRun struct {
	in  BackfillInput
	p   BackfillProgress
	run string
	a   *activities.Activities // nil: activities are named by method
	// listing is what the run's start learned of Clerk's listing, for
	// BackfillPages' planning; nil in a run continued as new, which
	// carries its windows.
	listing *activities.ListingStart
}

// countBesideStart is the change (workflow.GetVersion) that counts
// Clerk's users while the instance is checked, rather than after: the
// count only reads, and a Clerk request's latency each, one after the
// other, was a short run's start. Runs begun before it count after the
// check, and still do on replay.
const countBesideStart = "backfill-count-beside-start"

// noOrganizationsFromStart is the change (workflow.GetVersion) that takes
// the organization listing's answer from the run's start when Clerk had
// none to list then, rather than asking it again after the users: a
// request's latency on every run of an instance without organizations.
// An organization created meanwhile reaches the table by its webhook (and
// a reconciliation confirms each local one with Clerk either way). Runs
// begun before it list the organizations, and still do on replay.
const noOrganizationsFromStart = "backfill-no-organizations-from-start"

// start begins a run: the Clerk instance checked against the database's,
// and the users counted for the progress display. stopped: the instance
// is another than the database's, and the run ends, having touched nothing.
func (r *backfillRun) start(ctx workflow.Context) (stopped bool, err error) {
	r.p = BackfillProgress{Reconcile: r.in.Reconcile, Phase: PhaseListing, StartedAt: workflow.Now(ctx), UpdatedAt: workflow.Now(ctx)}
	var counted workflow.Future
	if workflow.GetVersion(ctx, countBesideStart, workflow.DefaultVersion, 1) != workflow.DefaultVersion {
		counted = workflow.ExecuteActivity(ctx, r.a.CountClerkUsers)
	}
	var start activities.StartBackfillResult
	if err := workflow.ExecuteActivity(ctx, r.a.StartBackfill, activities.StartBackfillInput{Run: r.run}).Get(ctx, &start); err != nil {
		return false, err
	}
	r.p.Instance, r.p.Stats = start.Instance, start.Stats
	if start.Recorded != start.Instance {
		// A key of another Clerk instance (a staging key in production)
		// lists none of this database's users: a reconciliation would take
		// every one of them for deleted, and a backfill would mix two
		// instances' users in one table.
		r.p.Phase = PhaseStopped
		countSafetyStop(ctx, "instance")
		schema := start.Schema
		if schema == "" { // a result recorded before it carried the schema
			schema = "clerksync"
		}
		r.p.SafetyStop = fmt.Sprintf("CLERK_SECRET_KEY belongs to Clerk instance %s, but this database is kept in step with instance %s: "+
			"nothing was written or removed. Set that instance's secret key on the worker; only if the database really moves to %s, "+
			"delete its record first (delete from %s.clerk_instance)", start.Instance, start.Recorded, start.Instance, schema)
		return true, nil
	}
	if counted == nil {
		counted = workflow.ExecuteActivity(ctx, r.a.CountClerkUsers)
	}
	var count activities.ClerkCount
	if err := counted.Get(ctx, &count); err != nil {
		return false, err
	}
	r.p.Total, r.p.Stats = count.Total, r.p.Stats.Add(count.Stats)
	r.listing, r.p.NoOrganizations = count.Listing, count.NoOrganizations
	return false, nil
}

// listUsers writes Clerk's user listing, a slice of pages at a time, then
// the users it refused once more.
func (r *backfillRun) listUsers(ctx workflow.Context) error {
	return r.slices(ctx, PhaseListing, func() error {
		var res activities.BackfillPagesResult
		in := activities.BackfillPagesInput{Run: r.run, Reconcile: r.p.Reconcile, Cursor: r.p.Cursor, Windows: r.p.Windows,
			Listing: r.listing, MaxDuration: backfillSlice}
		if err := workflow.ExecuteActivity(ctx, r.a.BackfillPages, in).Get(ctx, &res); err != nil {
			return err
		}
		r.p.Cursor, r.p.Windows, r.listing = res.Cursor, res.Windows, nil // planned
		r.fold(ctx, res.Stats)
		r.p.Refused = activities.KeepRefused(r.p.Refused, res.Refused)
		if !res.Cursor.Done {
			return nil
		}
		if err := retryRefused(ctx, &r.p); err != nil {
			return err
		}
		r.p.Phase = PhaseOrganizations
		return nil
	})
}

// listOrganizations writes Clerk's organizations and their memberships, a
// slice at a time; then the run is done, or reconciles.
func (r *backfillRun) listOrganizations(ctx workflow.Context) error {
	if r.p.Phase == PhaseOrganizations && r.p.NoOrganizations != nil &&
		workflow.GetVersion(ctx, noOrganizationsFromStart, workflow.DefaultVersion, 1) != workflow.DefaultVersion {
		// Its stats are the count's, folded in already.
		r.organizationsListed(*r.p.NoOrganizations)
		return nil
	}
	return r.slices(ctx, PhaseOrganizations, func() error {
		var res activities.BackfillOrganizationsResult
		in := activities.BackfillOrganizationsInput{Run: r.run, Reconcile: r.p.Reconcile, Offset: r.p.OrganizationOffset, MaxDuration: backfillSlice}
		if err := workflow.ExecuteActivity(ctx, r.a.BackfillOrganizations, in).Get(ctx, &res); err != nil {
			return err
		}
		r.fold(ctx, res.Stats)
		r.organizationsListed(res)
		return nil
	})
}

// organizationsListed moves the progress past what the organization
// listing answered.
func (r *backfillRun) organizationsListed(res activities.BackfillOrganizationsResult) {
	r.p.OrganizationOffset = res.Offset
	switch {
	case res.Disabled:
		// A normal instance: there are no organizations to read, and
		// none to reconcile.
		r.p.OrganizationsSkipped = "the Clerk instance has the Organizations feature turned off"
		r.p.OrganizationsDone = true
	case res.NotKept:
		r.p.OrganizationsSkipped = "organizations are not kept with CLERKSYNC_MAPPING"
		r.p.OrganizationsDone = true
	}
	if res.Done {
		r.p.Phase = PhaseDone
		if r.p.Reconcile {
			r.p.Phase = PhaseConfirming
		}
	}
}

// checkSafety counts, once, what reconciliation would remove, and stops
// the run when it is more than the safety stop allows.
func (r *backfillRun) checkSafety(ctx workflow.Context) error {
	if r.p.Phase != PhaseConfirming || r.p.MaxDelete != 0 {
		return nil
	}
	var count activities.UnseenCount
	if err := workflow.ExecuteActivity(ctx, r.a.CountUnseenUsers, activities.UnseenInput{Run: r.run, StartedAt: r.p.StartedAt}).Get(ctx, &count); err != nil {
		return err
	}
	var orgs activities.OrganizationsUnseen
	if !r.p.OrganizationsDone {
		if err := workflow.ExecuteActivity(ctx, r.a.CountUnseenOrganizations, activities.UnseenInput{Run: r.run, StartedAt: r.p.StartedAt}).Get(ctx, &orgs); err != nil {
			return err
		}
	}
	r.p.Unseen, r.p.UnseenOrganizations, r.p.UnseenMemberships = count.Unseen, orgs.Organizations, orgs.Memberships
	r.p.MaxDelete = r.in.MaxDelete
	if r.p.MaxDelete <= 0 {
		r.p.MaxDelete = DefaultMaxDelete(count.Local)
	}
	if unseen := r.p.Unseen + r.p.UnseenOrganizations + r.p.UnseenMemberships; unseen > r.p.MaxDelete {
		// A wrong CLERK_SECRET_KEY (another Clerk instance) lists other
		// users: removing every local user it did not list would wipe the
		// table.
		r.p.Phase = PhaseStopped
		countSafetyStop(ctx, "max_delete")
		r.p.SafetyStop = fmt.Sprintf("%s not in Clerk's listing, more than the %d this run may remove: nothing was removed. "+
			"Check CLERK_SECRET_KEY, then rerun with --max-delete %d if they really are gone",
			unseenPhrase(r.p), r.p.MaxDelete, unseen)
	}
	return nil
}

// reconcileOrganizations removes, in one activity, the organizations and
// memberships Clerk confirms are gone.
func (r *backfillRun) reconcileOrganizations(ctx workflow.Context) error {
	if r.p.Phase != PhaseConfirming || r.p.OrganizationsDone {
		return nil
	}
	var res activities.ReconcileOrganizationsResult
	if err := workflow.ExecuteActivity(ctx, r.a.ReconcileOrganizations, activities.UnseenInput{Run: r.run, StartedAt: r.p.StartedAt}).Get(ctx, &res); err != nil {
		return err
	}
	r.p.OrganizationsDone, r.p.OrganizationsOutcome = true, &res
	r.fold(ctx, res.Stats)
	return nil
}

// confirmUsers removes the users Clerk confirms are gone, a slice at a
// time.
func (r *backfillRun) confirmUsers(ctx workflow.Context) error {
	return r.slices(ctx, PhaseConfirming, func() error {
		var res activities.ConfirmResult
		in := activities.UnseenInput{Run: r.run, StartedAt: r.p.StartedAt, After: r.p.After}
		if err := workflow.ExecuteActivity(ctx, r.a.ConfirmRemovals, in).Get(ctx, &res); err != nil {
			return err
		}
		r.p.After, r.p.Removed, r.p.Restored, r.p.RowsKept = res.After, r.p.Removed+res.Removed, r.p.Restored+res.Updated, r.p.RowsKept+res.RowsKept
		r.fold(ctx, res.Stats)
		if res.Done {
			r.p.Phase = PhaseDone
		}
		return nil
	})
}

// finish drops a reconciliation's seen set (a stopped one's too).
func (r *backfillRun) finish(ctx workflow.Context) error {
	if !r.p.Reconcile {
		return nil
	}
	return workflow.ExecuteActivity(ctx, r.a.ForgetRun, r.run).Get(ctx, nil)
}

// fold adds an activity's requests and outcomes to the progress, as of
// now.
func (r *backfillRun) fold(ctx workflow.Context, s activities.BackfillStats) {
	r.p.Stats, r.p.UpdatedAt = r.p.Stats.Add(s), workflow.Now(ctx)
}

// slices runs step, an activity a slice, while the run is in phase, and
// carries the progress on in a new run whenever Temporal suggests one.
func (r *backfillRun) slices(ctx workflow.Context, phase string, step func() error) error {
	for r.p.Phase == phase {
		if err := step(); err != nil {
			return err
		}
		if err := r.continueIfSuggested(ctx); err != nil {
			return err
		}
	}
	return nil
}

// continueIfSuggested is the continue-as-new that carries the progress on,
// when Temporal suggests one (a history grown long); nil otherwise.
func (r *backfillRun) continueIfSuggested(ctx workflow.Context) error {
	if !workflow.GetInfo(ctx).GetContinueAsNewSuggested() {
		return nil
	}
	return workflow.NewContinueAsNewError(ctx, BackfillWorkflow, BackfillInput{Reconcile: r.in.Reconcile, MaxDelete: r.in.MaxDelete, Progress: r.p})
}
