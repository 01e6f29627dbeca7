package lookup

import (
	"context"
	"errors"

	"github.com/sony/gobreaker/v2"

	"github.com/stickycalls/stickycalls/context/identity"
)

// flightKey names a number as one tenant looks it up. Tenants do not share
// flights, so each request is paid by, and counted against, its own tenant.
type flightKey struct{ tenant, e164 string }

// flight is one cache read and, on a miss, one Lookup request, shared by
// every caller asking about the same number meanwhile. lt and err are set
// before done is closed.
type flight struct {
	done    chan struct{}
	lt      identity.LineType
	err     error
	waiters int // callers still waiting, guarded by Client.mu
	cancel  context.CancelCauseFunc
}

// join returns the flight for e164, starting one if there is none. The new
// flight keeps ctx's values but not its cancellation: it ends when its own
// timeout passes or when every waiter has left.
func (c *Client) join(ctx context.Context, t *tenantClient, e164 string) *flight {
	key := flightKey{t.name, e164}
	c.mu.Lock()
	defer c.mu.Unlock()
	if f, ok := c.flights[key]; ok {
		f.waiters++
		return f
	}
	fctx, cancel := context.WithCancelCause(context.WithoutCancel(ctx))
	f := &flight{done: make(chan struct{}), waiters: 1, cancel: cancel}
	c.flights[key] = f
	go c.fly(fctx, key, f, t)
	return f
}

// leave takes a caller whose ctx is done off f. When the last one leaves, f
// is cancelled with that caller's reason, so a hang-up (Canceled) is not
// held against Twilio but a missed deadline (DeadlineExceeded) is.
func (c *Client) leave(ctx context.Context, f *flight) {
	c.mu.Lock()
	defer c.mu.Unlock()
	f.waiters--
	if f.waiters == 0 {
		f.cancel(ctx.Err())
	}
}

// fly resolves the number, then removes f from the flights before waking its
// waiters. The answer is cached before f is removed, so a caller who finds
// no flight finds the answer in the cache.
func (c *Client) fly(ctx context.Context, key flightKey, f *flight, t *tenantClient) {
	defer f.cancel(nil)
	lt, err := c.resolve(ctx, t, key.e164)
	c.mu.Lock()
	delete(c.flights, key)
	f.lt, f.err = lt, err
	c.mu.Unlock()
	close(f.done)
}

// resolve answers from the cache, or else from Twilio through the tenant's
// breaker, caching what Twilio said.
func (c *Client) resolve(ctx context.Context, t *tenantClient, e164 string) (identity.LineType, error) {
	if lt, ok := c.cached(ctx, e164); ok {
		c.cacheHits.Add(1)
		c.opts.Metrics.outcome(t.name, "hit")
		return lt, nil
	}
	a, err := t.breaker.Execute(func() (answer, error) { return c.fetch(ctx, t, e164) })
	if errors.Is(err, gobreaker.ErrOpenState) || errors.Is(err, gobreaker.ErrTooManyRequests) {
		err = ErrBreakerOpen
		c.rejections.Add(1)
	} else if err != nil {
		c.failures.Add(1)
	}
	c.opts.Metrics.outcome(t.name, outcomeOf(err))
	if errors.Is(err, errUnauthorized) {
		c.refusals.Error().Str("tenant", t.name).AnErr("err", err).
			Msg("Twilio Lookup refused the tenant's credentials; line types are unknown until they are fixed")
	}
	if err != nil {
		return identity.Unknown, err
	}
	// The answer was paid for: keep it even if every caller has gone.
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.opts.Timeout)
	defer cancel()
	if err := c.cache.CacheLineType(wctx, e164, a.lt, c.opts.Now().Add(a.ttl)); err != nil {
		c.cacheErrors.Add(1)
	}
	return a.lt, nil
}

// cached reads the cache. A cache that cannot answer is a miss: Lookup may
// still answer.
func (c *Client) cached(ctx context.Context, e164 string) (identity.LineType, bool) {
	rctx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
	defer cancel()
	lt, ok, err := c.cache.CachedLineType(rctx, e164, c.opts.Now())
	if err != nil {
		c.cacheErrors.Add(1)
		return identity.Unknown, false
	}
	return lt, ok
}
