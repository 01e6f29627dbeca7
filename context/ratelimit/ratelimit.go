// Package ratelimit is the plans' rate limit (API.md §5): a sliding log of
// admitted requests per scope and window. Memory is the exact limiter of a
// single process; the Redis store has the one shared by every instance.
package ratelimit

import (
	"context"
	"sync"
	"time"

	"github.com/stickycalls/stickycalls/context/callcontext"
)

// Window is the sliding window of the rate limit.
const Window = time.Minute

// Enforced is the number of requests a window admits for a plan limit:
// the limit plus a 10% buffer, as the plans promise.
func Enforced(limit int) int { return limit * 11 / 10 }

// Rate is a limiter's answer for one request.
type Rate struct {
	Allowed   bool
	Limit     int           // the plan's limit per window
	Remaining int           // requests still admitted in the window
	Reset     time.Duration // until the oldest admitted request leaves the window
}

// Memory is an exact limiter for a single process.
type Memory struct {
	mu   sync.Mutex
	logs map[callcontext.Scope][]time.Time // admitted requests, oldest first
}

// NewMemory returns an empty limiter.
func NewMemory() *Memory { return &Memory{logs: map[callcontext.Scope][]time.Time{}} }

// Allow records a request at now if fewer than max were admitted in the
// window before it, and reports what is left.
func (l *Memory) Allow(_ context.Context, sc callcontext.Scope, max int, window time.Duration, now time.Time) (Rate, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	log := l.logs[sc]
	i := 0
	for i < len(log) && !log[i].After(now.Add(-window)) {
		i++
	}
	log = log[i:]
	r := Rate{Allowed: len(log) < max}
	if r.Allowed {
		log = append(log, now)
	}
	l.logs[sc] = log
	r.Remaining = max - len(log)
	if len(log) > 0 {
		r.Reset = log[0].Add(window).Sub(now)
	}
	return r, nil
}
