package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/clerksync/clerksync/internal/clerkevent"
	"github.com/clerksync/clerksync/internal/store/sqlgen"
)

// PageResult counts what WriteUserPage did with a page of users.
type PageResult struct {
	Inserted, Updated, Unchanged, Tombstoned int
	// Trials is how many users this page gave their trial.
	Trials int
}

// Add sums two results.
func (r PageResult) Add(o PageResult) PageResult {
	return PageResult{Inserted: r.Inserted + o.Inserted, Updated: r.Updated + o.Updated, Unchanged: r.Unchanged + o.Unchanged,
		Tombstoned: r.Tombstoned + o.Tombstoned, Trials: r.Trials + o.Trials}
}

// WriteUserPage writes a page of users from Clerk's listing in one
// transaction: one set-based upsert of the page's arrays under the
// same rules as UpsertUser (last-writer-wins on updated_at, ties by content
// hash, tombstoned IDs refused, a new user's trial granted once, in the same
// statement, so no user's state is looked up twice), holding the
// per-user advisory locks of the whole page so it serializes with webhook
// writes and deletions of the same users. With run set, the page's IDs are
// recorded as seen by that run (for reconciliation). Writing a page twice
// changes nothing.
func (s *Store) WriteUserPage(ctx context.Context, run string, users []clerkevent.User, trialPeriod time.Duration) (PageResult, error) {
	var res PageResult
	if len(users) == 0 {
		return res, nil
	}
	table, trials, err := s.tables(ctx)
	if err != nil {
		return res, fmt.Errorf("write page of %d users: %w", len(users), err)
	}
	trimmed := make([]clerkevent.User, len(users))
	ids := make([]string, len(users))
	for i, u := range users {
		trimmed[i], ids[i] = s.mapping.Trim(u), u.ClerkID
	}
	page := sqlgen.PageArgs(trimmed, table.PageCols)
	err = pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		b := &pgx.Batch{}
		// Each page is planned for the tables as they are now: a plan cached
		// while a table was empty (a first backfill) would go on scanning it
		// as it fills, one scan per page.
		b.Queue(`set local plan_cache_mode = force_custom_plan`)
		// The same locks as inUserTx, taken in one order by every page
		// writer so that two pages never wait on each other in a cycle; a
		// webhook write holds one lock at a time.
		b.Queue(`
select count(pg_advisory_xact_lock(h)) from (
    select distinct hashtextextended(id, 0) as h from unnest($1::text[]) id order by 1
) locks`, ids)
		// The app's rows from before Clerk that the page's users link to
		// are linked first (linkLegacyRows).
		before := b.Len()
		s.queueLinks(b, table, users)
		links := b.Len() - before
		if run != "" {
			b.Queue(s.bk.markSeen, run, ids)
		}
		if trials != nil && trialPeriod > 0 {
			page["trial_period"] = sqlgen.TrialPeriodArg(trialPeriod)
			b.Queue(trials.Page, page)
		} else {
			b.Queue(table.UpsertPage, page)
		}
		br := tx.SendBatch(ctx, b)
		if _, err := br.Exec(); err != nil {
			br.Close()
			return fmt.Errorf("plan page: %w", err)
		}
		if _, err := br.Exec(); err != nil {
			br.Close()
			return fmt.Errorf("lock page: %w", err)
		}
		for range links {
			if _, err := br.Exec(); err != nil {
				br.Close()
				return fmt.Errorf("link rows from before Clerk: %w", err)
			}
		}
		if run != "" {
			if _, err := br.Exec(); err != nil {
				br.Close()
				return fmt.Errorf("record seen: %w", err)
			}
		}
		if err := br.QueryRow().Scan(&res.Inserted, &res.Updated, &res.Tombstoned, &res.Trials); err != nil {
			br.Close()
			return fmt.Errorf("upsert page: %w", err)
		}
		return br.Close()
	})
	if err != nil {
		return PageResult{}, fmt.Errorf("write page of %d users: %w", len(users), err)
	}
	res.Unchanged = len(users) - res.Inserted - res.Updated - res.Tombstoned
	return res, nil
}

// CountUsers counts the live users with a Clerk ID: an app's rows from
// before Clerk (no Clerk ID) are not Clerk's users, and reconciliation's
// safety stop is about Clerk's.
func (s *Store) CountUsers(ctx context.Context) (int, error) {
	users, _, err := s.tables(ctx)
	if err != nil {
		return 0, err
	}
	var n int
	if err := s.db.QueryRow(ctx, users.Count).Scan(&n); err != nil {
		return 0, fmt.Errorf("count users: %w", err)
	}
	return n, nil
}

// UnseenUsers returns, in Clerk ID order after the given ID, up to limit
// live users that the run did not see in Clerk's listing and that existed
// before the run started (startedAt): the candidates reconciliation confirms
// with Clerk one by one. With limit 0 it only counts them (ids is nil).
func (s *Store) UnseenUsers(ctx context.Context, run string, startedAt time.Time, after string, limit int) (count int, ids []string, err error) {
	users, _, err := s.tables(ctx)
	if err != nil {
		return 0, nil, err
	}
	if limit == 0 {
		if err := s.db.QueryRow(ctx, users.UnseenCount, run, startedAt).Scan(&count); err != nil {
			return 0, nil, fmt.Errorf("count unseen users of %s: %w", run, err)
		}
		return count, nil, nil
	}
	rows, err := s.db.Query(ctx, users.Unseen, run, startedAt, after, limit)
	if err != nil {
		return 0, nil, fmt.Errorf("list unseen users of %s: %w", run, err)
	}
	ids, err = pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return 0, nil, fmt.Errorf("list unseen users of %s: %w", run, err)
	}
	return len(ids), ids, nil
}

// ForgetRun drops what a run recorded as seen.
func (s *Store) ForgetRun(ctx context.Context, run string) error {
	if _, err := s.db.Exec(ctx, s.bk.forgetRun, run); err != nil {
		return fmt.Errorf("forget run %s: %w", run, err)
	}
	return nil
}

// MarkSeen records ids (organizations, memberships) as seen in Clerk's
// listing by the run, for reconciliation.
func (s *Store) MarkSeen(ctx context.Context, run string, ids []string) error {
	if _, err := s.db.Exec(ctx, s.bk.markSeen, run, ids); err != nil {
		return fmt.Errorf("mark seen by %s: %w", run, err)
	}
	return nil
}

// UnseenOrganizations returns the organizations that existed before the
// run started and that the run did not see in Clerk's listing: the
// candidates reconciliation confirms with Clerk one by one.
func (s *Store) UnseenOrganizations(ctx context.Context, run string, startedAt time.Time) ([]string, error) {
	orgs, _, err := s.orgTables(ctx)
	if err != nil {
		return nil, fmt.Errorf("list unseen organizations of %s: %w", run, err)
	}
	rows, err := s.db.Query(ctx, orgs.Unseen, run, startedAt)
	if err != nil {
		return nil, fmt.Errorf("list unseen organizations of %s: %w", run, err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("list unseen organizations of %s: %w", run, err)
	}
	return ids, nil
}

// UnseenMembership is a membership a run did not see in its organization's
// listing.
type UnseenMembership struct {
	ClerkID, OrganizationID, UserID string
}

// UnseenMemberships returns the memberships that existed before the run
// started, of organizations the run did see, that were not in their
// organization's listing, by organization.
func (s *Store) UnseenMemberships(ctx context.Context, run string, startedAt time.Time) ([]UnseenMembership, error) {
	_, memberships, err := s.orgTables(ctx)
	if err != nil {
		return nil, fmt.Errorf("list unseen memberships of %s: %w", run, err)
	}
	rows, err := s.db.Query(ctx, memberships.Unseen, run, startedAt)
	if err != nil {
		return nil, fmt.Errorf("list unseen memberships of %s: %w", run, err)
	}
	ms, err := pgx.CollectRows(rows, pgx.RowToStructByPos[UnseenMembership])
	if err != nil {
		return nil, fmt.Errorf("list unseen memberships of %s: %w", run, err)
	}
	return ms, nil
}

// RecordClerkInstance records id as the Clerk instance this database is
// kept in step with, unless one is recorded already, and returns the
// recorded one: id itself, or the instance an earlier run recorded.
func (s *Store) RecordClerkInstance(ctx context.Context, id string) (string, error) {
	var recorded string
	err := s.db.QueryRow(ctx, s.bk.recordInstance, id).Scan(&recorded)
	if err != nil {
		return "", fmt.Errorf("record clerk instance %s: %w", id, err)
	}
	return recorded, nil
}

// RecordedClerkInstance returns the Clerk instance recorded by
// RecordClerkInstance, "" while none is.
func (s *Store) RecordedClerkInstance(ctx context.Context) (string, error) {
	var id string
	if err := s.db.QueryRow(ctx, s.bk.recordedInstance).Scan(&id); err != nil {
		return "", fmt.Errorf("read the recorded clerk instance: %w", err)
	}
	return id, nil
}

// SeenRuns lists the runs that have IDs recorded as seen.
func (s *Store) SeenRuns(ctx context.Context) ([]string, error) {
	rows, err := s.db.Query(ctx, s.bk.seenRuns)
	if err != nil {
		return nil, fmt.Errorf("list runs with seen IDs: %w", err)
	}
	runs, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("list runs with seen IDs: %w", err)
	}
	return runs, nil
}
