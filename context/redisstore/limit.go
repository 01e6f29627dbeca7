package redisstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/stickycalls/stickycalls/context/callcontext"
	"github.com/stickycalls/stickycalls/context/ratelimit"
)

// slidingLog admits a request if the scope's log holds fewer than max
// entries newer than now-window. Time comes in as an argument, never from
// the server, so every instance and every test agrees on it.
//
// KEYS[1] the log; ARGV now_ms, window_ms, max, member.
var slidingLog = redis.NewScript(`
local now, window, max = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local n = redis.call('ZCARD', KEYS[1])
local allowed = 0
if n < max then
  redis.call('ZADD', KEYS[1], now, ARGV[4])
  n = n + 1
  allowed = 1
end
redis.call('PEXPIRE', KEYS[1], window)
local reset = 0
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if oldest[2] then reset = tonumber(oldest[2]) + window - now end
return {allowed, n, reset}`)

// Limiter is the rate limiter shared by every instance on one Redis: a
// sliding log per scope in a sorted set, updated by one script. When Redis
// does not answer within Timeout it falls back to an in-process log that
// admits this instance's share (max ÷ live instances) and counts that.
type Limiter struct {
	rdb       redis.UniversalClient
	prefix    string
	id        string
	timeout   time.Duration
	local     *ratelimit.Memory
	instances atomic.Int64
	fallbacks atomic.Uint64
}

// Limiter returns a rate limiter on the store's Redis. timeout bounds each
// Redis call (default 50ms).
func (s *Store) Limiter(timeout time.Duration) *Limiter { return newLimiter(s.rdb, s.prefix, timeout) }

func newLimiter(rdb redis.UniversalClient, prefix string, timeout time.Duration) *Limiter {
	if timeout <= 0 {
		timeout = 50 * time.Millisecond
	}
	var b [8]byte
	rand.Read(b[:])
	l := &Limiter{rdb: rdb, prefix: prefix, id: hex.EncodeToString(b[:]), timeout: timeout, local: ratelimit.NewMemory()}
	l.instances.Store(1)
	return l
}

func (l *Limiter) logKey(sc callcontext.Scope) string {
	return l.prefix + "rl:{" + esc(sc.Tenant) + ":" + esc(string(sc.Mode)) + "}"
}

// Allow admits a request under the scope's sliding log (see ratelimit.Memory.Allow).
func (l *Limiter) Allow(ctx context.Context, sc callcontext.Scope, limit int, window time.Duration, now time.Time) (ratelimit.Rate, error) {
	rctx, cancel := context.WithTimeout(ctx, l.timeout)
	defer cancel()
	var b [6]byte
	rand.Read(b[:])
	member := fmt.Sprintf("%d-%s", now.UnixMilli(), hex.EncodeToString(b[:]))
	res, err := slidingLog.Run(rctx, l.rdb, []string{l.logKey(sc)}, now.UnixMilli(), window.Milliseconds(), limit, member).Int64Slice()
	if err != nil || len(res) != 3 {
		return l.fallback(ctx, sc, limit, window, now)
	}
	return ratelimit.Rate{
		Allowed: res[0] == 1, Remaining: limit - int(res[1]), Reset: time.Duration(res[2]) * time.Millisecond,
	}, nil
}

// fallback admits this instance's share of limit while Redis is away.
func (l *Limiter) fallback(ctx context.Context, sc callcontext.Scope, limit int, window time.Duration, now time.Time) (ratelimit.Rate, error) {
	l.fallbacks.Add(1)
	n := max(int(l.instances.Load()), 1)
	return l.local.Allow(ctx, sc, (limit+n-1)/n, window, now)
}

// Fallbacks counts the requests decided without Redis.
func (l *Limiter) Fallbacks() uint64 { return l.fallbacks.Load() }

// Instances is the number of live instances last seen.
func (l *Limiter) Instances() int { return int(l.instances.Load()) }

// Heartbeat announces this instance every interval and counts the live ones
// (seen within three intervals), until ctx is done.
func (l *Limiter) Heartbeat(ctx context.Context, interval time.Duration, now func() time.Time) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		l.beat(ctx, interval, now())
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

var beatScript = redis.NewScript(`
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1] - ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return redis.call('ZCARD', KEYS[1])`)

func (l *Limiter) beat(ctx context.Context, interval time.Duration, now time.Time) {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	n, err := beatScript.Run(ctx, l.rdb, []string{"{" + l.prefix + "instances}"}, now.UnixMilli(), (3 * interval).Milliseconds(), l.id).Int64()
	if err == nil && n > 0 {
		l.instances.Store(n)
	}
}
