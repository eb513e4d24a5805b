package clerkapi

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/clerksync/clerksync/internal/testsupport/clerkfake"
)

// calls counts requests as a Counter.
type calls struct {
	mu                             sync.Mutex
	requests, rateLimited, retried int
}

func (c *calls) CountRequest()     { c.mu.Lock(); c.requests++; c.mu.Unlock() }
func (c *calls) CountRateLimited() { c.mu.Lock(); c.rateLimited++; c.mu.Unlock() }
func (c *calls) CountRetry()       { c.mu.Lock(); c.retried++; c.mu.Unlock() }

// Clerk limits the instance, not the caller: after one request's 429,
// every other request of the client waits out its Retry-After instead of
// meeting a 429 of its own.
func TestClient_OneRateLimitPausesEveryCaller(t *testing.T) {
	fake := clerkfake.Start(t)
	fake.Pace(0, 2) // two requests a second
	c := clerkAPI(fake.URL(), clerkfake.SecretKey)
	ctx := context.Background()
	var counted calls
	for range 2 { // the second's whole budget
		if _, err := c.CountUsers(ctx, &counted, func() {}, nil); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			time.Sleep(time.Duration(i) * 200 * time.Millisecond) // the second starts once the first met its 429
			if _, err := c.CountUsers(ctx, &counted, func() {}, nil); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if fake.RateLimited() != 1 || counted.rateLimited != 1 {
		t.Errorf("429s: %d answered, %d counted; want 1: the request after it waited for its Retry-After", fake.RateLimited(), counted.rateLimited)
	}
}
