package activities

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
	"go.temporal.io/sdk/temporal"

	"github.com/clerksync/clerksync/internal/telemetry"
)

// Metrics are the worker's own Prometheus series: what its writes did. They
// count attempts as they end, so a write retried after a failure counts once
// for its failure-free end. No label carries a Clerk ID, an email or a name.
type Metrics struct {
	userWrites    *prometheus.CounterVec
	deletions     *prometheus.CounterVec
	eventsFailed  *prometheus.CounterVec
	trialsCreated prometheus.Counter
	trialsExpired prometheus.Counter
	backfillPages prometheus.Counter
	backfillUsers *prometheus.CounterVec
	erasedRuns    *prometheus.CounterVec
	erasureFails  *prometheus.CounterVec
}

// NewMetrics registers the worker's series on reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		userWrites: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "clerksync_user_writes_total",
			Help: "Webhook and ensure writes of a user's row, by outcome (inserted, updated, stale: an older version than the row's, tombstoned: the user was deleted).",
		}, []string{"outcome"}),
		deletions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "clerksync_user_deletions_total",
			Help: "User deletions applied, by outcome (removed, absent: no row to remove, kept: a product foreign key refused the removal, retried until fixed).",
		}, []string{"outcome"}),
		eventsFailed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "clerksync_events_failed_total",
			Help: "Events that failed for good (no retry can apply them; the workflow shows ClerkSyncState=failed), by operation (upsert_user, delete_user, fetch_profile, upsert_organization, delete_organization, upsert_membership, delete_membership).",
		}, []string{"operation"}),
		trialsCreated: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "clerksync_trials_created_total",
			Help: "Trial subscriptions granted to new users.",
		}),
		trialsExpired: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "clerksync_trials_expired_total",
			Help: "Trial subscriptions marked expired once their end passed.",
		}),
		backfillPages: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "clerksync_backfill_pages_total",
			Help: "Pages of Clerk's user listing written by backfill and reconcile runs.",
		}),
		backfillUsers: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "clerksync_backfill_users_total",
			Help: "Users read by backfill and reconcile runs, by outcome (inserted, updated, unchanged, tombstoned, refused: PostgreSQL refused the user's data, the rest of its page written).",
		}, []string{"outcome"}),
		erasedRuns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "clerksync_erased_runs_total",
			Help: "Closed workflow runs of deleted users and organizations deleted from Temporal by the erasure sweep (ERASE_DELETED_HISTORIES), by entity (user, organization).",
		}, []string{"entity"}),
		erasureFails: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "clerksync_erasure_failures_total",
			Help: "Erasures of a deleted user's or organization's runs that failed (Temporal refused a listing or a deletion); each is tried again by the sweep's retry and the next sweep, by entity (user, organization).",
		}, []string{"entity"}),
	}
	if err := telemetry.Register(reg, m.userWrites, m.deletions, m.eventsFailed, m.trialsCreated, m.trialsExpired, m.backfillPages,
		m.backfillUsers, m.erasedRuns, m.erasureFails); err != nil {
		return nil, err
	}
	return m, nil
}

// The methods below record nothing on a nil *Metrics, so activities built
// without metrics (tests) need no registry.

func (m *Metrics) userWritten(res UpsertUserResult) {
	if m == nil {
		return
	}
	m.userWrites.WithLabelValues(string(res.Outcome)).Inc()
	if !res.TrialEndsAt.IsZero() {
		m.trialsCreated.Inc()
	}
}

func (m *Metrics) deleted(res RemovalResult) {
	if m == nil {
		return
	}
	switch {
	case res.RowKept != "":
		m.deletions.WithLabelValues("kept").Inc()
	case res.Removed:
		m.deletions.WithLabelValues("removed").Inc()
	default:
		m.deletions.WithLabelValues("absent").Inc()
	}
}

// failed counts err when no retry will follow it, and returns it.
func (m *Metrics) failed(operation string, err error) error {
	var appErr *temporal.ApplicationError
	if m != nil && errors.As(err, &appErr) && appErr.NonRetryable() {
		m.eventsFailed.WithLabelValues(operation).Inc()
	}
	return err
}

func (m *Metrics) trialsExpiredBy(n int) {
	if m != nil {
		m.trialsExpired.Add(float64(n))
	}
}

func (m *Metrics) backfilled(s BackfillStats) {
	if m == nil {
		return
	}
	m.backfillPages.Add(float64(s.Pages))
	m.trialsCreated.Add(float64(s.Trials))
	for outcome, n := range map[WriteOutcome]int{
		Inserted: s.Inserted, Updated: s.Updated, "unchanged": s.Unchanged, Tombstoned: s.Tombstoned,
		"refused": s.Refused,
	} {
		m.backfillUsers.WithLabelValues(string(outcome)).Add(float64(n))
	}
}

func (m *Metrics) erased(entity string, runs int) {
	if m != nil {
		m.erasedRuns.WithLabelValues(entity).Add(float64(runs))
	}
}

func (m *Metrics) erasureFailed(entity string) {
	if m != nil {
		m.erasureFails.WithLabelValues(entity).Inc()
	}
}
