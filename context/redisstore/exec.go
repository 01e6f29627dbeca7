package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// run is one script run in a wave.
type run struct {
	script *redis.Script
	keys   []string
	args   []any
}

// loadScripts loads every script on every master, so that the first
// request does not pay for a NOSCRIPT round trip.
func (s *Store) loadScripts(ctx context.Context) error {
	for _, sc := range allScripts {
		if err := sc.Load(ctx, s.rdb).Err(); err != nil {
			return storeErr("load scripts", err)
		}
	}
	return nil
}

// wave sends runs and the commands reads adds in one pipeline and returns
// the runs' replies in order. A script the server has lost (after a restart
// or a failover) is sent again in full in a second pipeline; it had not
// run. The error is the first of any command, other than redis.Nil.
func (s *Store) wave(ctx context.Context, what string, runs []run, reads func(redis.Pipeliner)) ([]*redis.Cmd, error) {
	cmds := make([]*redis.Cmd, len(runs))
	all, _ := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, r := range runs {
			cmds[i] = r.script.EvalSha(ctx, p, r.keys, r.args...)
		}
		if reads != nil {
			reads(p)
		}
		return nil
	})
	others := all[min(len(runs), len(all)):]
	var again []int
	for i, c := range cmds {
		if redis.HasErrorPrefix(c.Err(), "NOSCRIPT") {
			again = append(again, i)
		}
	}
	if len(again) > 0 {
		s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for _, i := range again {
				cmds[i] = runs[i].script.Eval(ctx, p, runs[i].keys, runs[i].args...)
			}
			return nil
		})
	}
	for _, c := range cmds {
		if err := c.Err(); err != nil && !errors.Is(err, redis.Nil) {
			return cmds, storeErr(what, err)
		}
	}
	for _, c := range others {
		if err := c.Err(); err != nil && !errors.Is(err, redis.Nil) {
			return cmds, storeErr(what, err)
		}
	}
	return cmds, nil
}

// one runs one script in its own wave.
func (s *Store) one(ctx context.Context, what string, r run) (*redis.Cmd, error) {
	cmds, err := s.wave(ctx, what, []run{r}, nil)
	return cmds[0], err
}

// reply splits a script's {code, payload} reply.
func reply(cmd *redis.Cmd) (int64, any, error) {
	v, ok := cmd.Val().([]any)
	if !ok || len(v) == 0 {
		return 0, nil, fmt.Errorf("redis: unexpected script reply %#v", cmd.Val())
	}
	code, ok := v[0].(int64)
	if !ok {
		return 0, nil, fmt.Errorf("redis: unexpected script reply %#v", cmd.Val())
	}
	if len(v) < 2 {
		return code, nil, nil
	}
	return code, v[1], nil
}

// fields turns a flat HGETALL reply into a map.
func fields(v any) map[string]string {
	list, _ := v.([]any)
	m := make(map[string]string, len(list)/2)
	for i := 0; i+1 < len(list); i += 2 {
		k, _ := list[i].(string)
		val, _ := list[i+1].(string)
		m[k] = val
	}
	return m
}

// Time encodings for scripts: zero-padded Unix nanoseconds, "" for zero.
func ts(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return fmt.Sprintf("%020d", max(t.UnixNano(), 1))
}

func parseTS(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("bad stored time %q", s)
	}
	return time.Unix(0, n).UTC(), nil
}

// TTL bounds: a key lives until its expiry plus ttlGrace (so that it is
// still there, as in the bbolt store, while reads filter it by the time
// passed in), and never longer than ttlMax.
const (
	ttlGrace = time.Minute
	ttlMax   = 400 * 24 * time.Hour
)

// ttl is the TTL in milliseconds of a key that holds data expiring at exp,
// as seen at now (the time the caller passed in).
func ttl(exp, now time.Time) int64 {
	d := exp.Sub(now)
	if exp.IsZero() || d < 0 {
		d = 0
	}
	return (min(d, ttlMax-ttlGrace) + ttlGrace).Milliseconds()
}
