package activities

import (
	"context"

	"go.temporal.io/sdk/activity"

	"github.com/clerksync/clerksync/internal/store"
)

// RetryRefusedInput names the users a backfill run's listing refused.
type RetryRefusedInput struct {
	ClerkIDs []string `json:"clerk_ids"`
}

// RetryRefusedResult is what writing them once more did.
type RetryRefusedResult struct {
	// Inserted and Updated count the users that landed this time.
	Inserted int `json:"inserted,omitempty"`
	Updated  int `json:"updated,omitempty"`
	// StillRefused are the users PostgreSQL refused again.
	StillRefused []RefusedUser `json:"still_refused,omitempty"`
}

// RetryRefused writes once more, from Clerk's data as it is now, each user
// a backfill's listing refused: at the end of a run a value one user held
// for another (an email handed from one to the other, written in listing
// order) is often free. A user Clerk no longer has is left to its
// deletion webhook; one refused again stays listed.
func (a *Activities) RetryRefused(ctx context.Context, in RetryRefusedInput) (RetryRefusedResult, error) {
	var res RetryRefusedResult
	for _, id := range in.ClerkIDs {
		fetched, err := a.fetchClerkUser(ctx, id)
		switch {
		case err != nil:
			return res, err
		case fetched.NotFound:
			continue
		}
		written, err := a.Store.UpsertUser(ctx, *fetched.User, a.TrialPeriod)
		switch {
		case err == nil && written.Outcome == store.Inserted:
			res.Inserted++
		case err == nil:
			res.Updated++
		case a.Store.Classify(err) != store.Transient:
			res.StillRefused = append(res.StillRefused, RefusedUser{ClerkID: id, Reason: store.Redact(err).Error()})
		default:
			return res, a.classify(ctx, err)
		}
		activity.RecordHeartbeat(ctx, res)
	}
	return res, nil
}
