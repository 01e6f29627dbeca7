package httpapi

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/stickycalls/stickycalls/context/callcontext"
	"github.com/stickycalls/stickycalls/context/ratelimit"
)

// Limiter admits requests under a sliding-log rate limit per scope
// (ratelimit.Memory in one process, the Redis store's across instances).
type Limiter interface {
	// Allow records a request at now if fewer than max were admitted in the
	// window before it, and reports what is left.
	Allow(ctx context.Context, sc callcontext.Scope, max int, window time.Duration, now time.Time) (ratelimit.Rate, error)
}

// errRateLimited means the scope's sliding window is full.
var errRateLimited = errors.New("rate limit exceeded")

// rateLimit returns the check of a scope's plan limit. A request over the
// limit gets 429 with Retry-After; every limited response carries the
// RateLimit-* headers. If the limiter itself fails the request is let
// through and counted: the limiter must never take the API down.
func rateLimit(calls *callcontext.Service, limiter Limiter, m *metrics) func(http.ResponseWriter, *http.Request, callcontext.Scope) error {
	return func(w http.ResponseWriter, r *http.Request, sc callcontext.Scope) error {
		limit := calls.Plan(sc).RateLimitPerMinute
		if limiter == nil || limit <= 0 {
			return nil
		}
		rate, err := limiter.Allow(r.Context(), sc, ratelimit.Enforced(limit), ratelimit.Window, calls.Now())
		if err != nil {
			m.limiterErrors.Inc()
			return nil
		}
		reset := ceilSeconds(rate.Reset)
		h := w.Header()
		h.Set("RateLimit-Limit", strconv.Itoa(limit))
		h.Set("RateLimit-Remaining", strconv.Itoa(max(rate.Remaining, 0)))
		h.Set("RateLimit-Reset", strconv.Itoa(reset))
		if !rate.Allowed {
			h.Set("Retry-After", strconv.Itoa(max(reset, 1)))
			m.rateLimited.WithLabelValues(sc.Tenant, string(sc.Mode)).Inc()
			return errRateLimited
		}
		return nil
	}
}

func ceilSeconds(d time.Duration) int { return int((d + time.Second - 1) / time.Second) }
