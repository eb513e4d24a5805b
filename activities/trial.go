package activities

import "context"

// expiryBatch bounds one expiry statement: a backlog is worked off in short
// transactions rather than one long lock on many rows.
const expiryBatch = 1000

// ExpireDueTrials marks every trial that has ended as expired, in bounded
// batches, and reports how many it expired. Subscriptions the product has
// moved on (active, canceled) are left alone. The trial-expiry Schedule runs
// it every TRIAL_EXPIRY_INTERVAL; a run that finds nothing due costs one
// indexed query.
func (a *Activities) ExpireDueTrials(ctx context.Context) (int, error) {
	total := 0
	for {
		n, err := a.Store.ExpireDueTrials(ctx, expiryBatch)
		if err != nil {
			return total, a.classify(ctx, err)
		}
		total += n
		a.Metrics.trialsExpiredBy(n)
		if n < expiryBatch {
			return total, nil
		}
	}
}
