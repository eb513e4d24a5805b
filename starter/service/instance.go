package service

import (
	"context"
	"sync"
	"time"
)

// recordedInstance is the Clerk instance the database is kept in step
// with, as the first backfill or reconciliation recorded it
// (store.Store.RecordClerkInstance), read at most once a minute: a webhook
// from another instance (an endpoint wired to the wrong Dashboard) is
// refused rather than written into this one's tables.
type recordedInstance struct {
	read func(context.Context) (string, error)

	mu     sync.Mutex
	id     string
	readAt time.Time
}

// instanceReadEvery is how long a read instance is trusted: recording one
// happens once in a deployment's life.
const instanceReadEvery = time.Minute

// get returns the recorded instance, "" while none is recorded. While
// PostgreSQL does not answer it returns the last it read: webhooks need
// only Temporal, and a check must not make them wait on the database.
func (r *recordedInstance) get(ctx context.Context) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.readAt.IsZero() && time.Since(r.readAt) < instanceReadEvery {
		return r.id
	}
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	if id, err := r.read(ctx); err == nil {
		r.id = id
	}
	r.readAt = time.Now()
	return r.id
}
