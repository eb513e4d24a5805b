package clerkfake

import (
	"net/http"
	"strconv"
	"testing"
	"time"
)

// Paced, the fake answers each request after the latency and refuses the
// requests beyond the limit within a second with 429 and a Retry-After, as
// Clerk does for an instance over its budget.
func TestPace_DelaysAndLimitsTheInstance(t *testing.T) {
	s := Start(t)
	s.Pace(50*time.Millisecond, 2)
	get := func() (*http.Response, time.Duration) {
		req, err := http.NewRequest(http.MethodGet, s.URL()+"/users/count", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+SecretKey)
		start := time.Now()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp, time.Since(start)
	}
	var statuses []int
	for range 3 {
		resp, took := get()
		if took < 50*time.Millisecond {
			t.Errorf("answered in %s, before the latency", took)
		}
		statuses = append(statuses, resp.StatusCode)
		if resp.StatusCode == http.StatusTooManyRequests {
			if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || s < 1 {
				t.Errorf("429 with Retry-After %q; want whole seconds, at least 1", resp.Header.Get("Retry-After"))
			}
		}
	}
	if statuses[0] != http.StatusOK || statuses[1] != http.StatusOK || statuses[2] != http.StatusTooManyRequests {
		t.Errorf("statuses %v; want two answers, then 429 past the limit of 2 a second", statuses)
	}
	if s.RateLimited() != 1 {
		t.Errorf("RateLimited() = %d, want 1", s.RateLimited())
	}
	s.Pace(0, 0)
	if resp, _ := get(); resp.StatusCode != http.StatusOK {
		t.Errorf("unpaced: %d", resp.StatusCode)
	}
}
