package clerkfake

import (
	"net/http"
	"strconv"
	"sync"
	"time"
)

// pace is how the fake answers like a Clerk instance under load: every
// answer after latency, and at most rps requests a second (Clerk limits
// the instance, whoever calls), the rest answered 429 with Retry-After.
type pace struct {
	mu          sync.Mutex
	latency     time.Duration
	rps         int
	window      time.Time // the start of the current one-second window
	inWindow    int       // the requests let through in it
	rateLimited int       // the requests answered 429, all told
}

// Pace makes every Backend API answer take latency, and answers 429, with
// Retry-After the seconds left of the current second (at least 1), to the
// requests beyond rps in any one second. 0 turns either off.
func (s *Server) Pace(latency time.Duration, rps int) {
	s.pace.mu.Lock()
	defer s.pace.mu.Unlock()
	s.pace.latency, s.pace.rps = latency, rps
	s.pace.window, s.pace.inWindow = time.Time{}, 0
}

// RateLimited counts the requests Pace's limit answered 429.
func (s *Server) RateLimited() int {
	s.pace.mu.Lock()
	defer s.pace.mu.Unlock()
	return s.pace.rateLimited
}

// paced waits out the latency and answers 429 for a request over the
// limit, reporting whether it did.
func (p *pace) paced(w http.ResponseWriter) bool {
	p.mu.Lock()
	latency, limited, retryAfter := p.latency, false, 0
	if p.rps > 0 {
		now := time.Now()
		if now.Sub(p.window) >= time.Second {
			p.window, p.inWindow = now, 0
		}
		if p.inWindow >= p.rps {
			limited, p.rateLimited = true, p.rateLimited+1
			retryAfter = max(1, int((time.Second-now.Sub(p.window)+time.Second-1)/time.Second))
		} else {
			p.inWindow++
		}
	}
	p.mu.Unlock()
	time.Sleep(latency)
	if !limited {
		return false
	}
	w.Header().Set("Retry-After", strconv.Itoa(retryAfter))
	writeBody(w, http.StatusTooManyRequests, []byte(`{"errors":[{"message":"Too many requests","long_message":"Too many requests, please try again later.","code":"too_many_requests"}]}`))
	return true
}
