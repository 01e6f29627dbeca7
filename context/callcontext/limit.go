package callcontext

import (
	"context"
	"sync"
	"time"
)

// RateWindow is the sliding window of the rate limit.
const RateWindow = time.Minute

// Enforced is the number of requests a window admits for a plan limit:
// the limit plus a 10% buffer, as the plans promise.
func Enforced(limit int) int { return limit * 11 / 10 }

// Limiter admits requests under a sliding-log rate limit per scope.
type Limiter interface {
	// Allow records a request at now if fewer than max were admitted in the
	// window before it, and reports what is left.
	Allow(ctx context.Context, sc Scope, max int, window time.Duration, now time.Time) (Rate, error)
}

// Rate is a limiter's answer for one request.
type Rate struct {
	Allowed   bool
	Limit     int           // the plan's limit per window
	Remaining int           // requests still admitted in the window
	Reset     time.Duration // until the oldest admitted request leaves the window
}

// MemoryLimiter is an exact Limiter for a single process.
type MemoryLimiter struct {
	mu   sync.Mutex
	logs map[Scope][]time.Time // admitted requests, oldest first
}

// NewMemoryLimiter returns an empty limiter.
func NewMemoryLimiter() *MemoryLimiter { return &MemoryLimiter{logs: map[Scope][]time.Time{}} }

// Allow implements Limiter.
func (l *MemoryLimiter) Allow(_ context.Context, sc Scope, max int, window time.Duration, now time.Time) (Rate, error) {
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
