package redisstore

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
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
// run. With WaitReplicas set, each node's scripts are followed by WAIT on
// the same connection, and a wave whose writes too few replicas took is an
// error: its effect may be lost in a failover, so it is not acknowledged.
// The error is the first of any command, other than redis.Nil.
func (s *Store) wave(ctx context.Context, what string, runs []run, reads func(redis.Pipeliner)) ([]*redis.Cmd, error) {
	cmds := make([]*redis.Cmd, len(runs))
	others, err := s.send(ctx, runs, cmds, all(len(runs)), false, reads)
	var again []int
	for i, c := range cmds {
		if redis.HasErrorPrefix(c.Err(), "NOSCRIPT") {
			again = append(again, i)
		}
	}
	if len(again) > 0 {
		_, againErr := s.send(ctx, runs, cmds, again, true, nil)
		err = errors.Join(err, againErr) // the first pass's writes need their WAIT too
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
	if err != nil {
		return cmds, storeErr(what, err)
	}
	return cmds, nil
}

// all is the indexes 0 to n-1.
func all(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return out
}

// send runs the scripts runs[which] (by EVALSHA, or with eval their whole
// source), setting cmds[i] for each, and the commands reads adds, in one
// pipeline, and returns the reads' commands. With WaitReplicas it also
// waits for the replicas; see wave.
func (s *Store) send(ctx context.Context, runs []run, cmds []*redis.Cmd, which []int, eval bool, reads func(redis.Pipeliner)) ([]redis.Cmder, error) {
	queue := func(p redis.Pipeliner, i int) {
		if eval {
			cmds[i] = runs[i].script.Eval(ctx, p, runs[i].keys, runs[i].args...)
		} else {
			cmds[i] = runs[i].script.EvalSha(ctx, p, runs[i].keys, runs[i].args...)
		}
	}
	if cc, ok := s.rdb.(*redis.ClusterClient); ok && s.waitReplicas > 0 && len(which) > 0 {
		others, err := s.sendWaitCluster(ctx, cc, runs, which, queue, reads)
		for _, i := range which {
			if cmds[i] == nil { // not sent: it answers the error
				cmds[i] = redis.NewCmd(ctx)
				cmds[i].SetErr(cmp.Or(err, errNotReplicated))
			}
		}
		return others, err
	}
	var wait *redis.IntCmd
	done, _ := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, i := range which {
			queue(p, i)
		}
		if reads != nil {
			reads(p)
		}
		if s.waitReplicas > 0 && len(which) > 0 {
			wait = s.queueWait(ctx, p)
		}
		return nil
	})
	others := done[min(len(which), len(done)):]
	if wait != nil {
		others = others[:len(others)-1]
		return others, s.replicated(wait)
	}
	return others, nil
}

// sendWaitCluster sends each master its scripts and a WAIT in a pipeline
// of its own, on one of its connections, all at once (one wave); the reads
// go through the cluster client beside them, unWAITed: they are reads, or
// the removal of stale index entries, which every read checks against the
// customer's record anyway, so one lost in a failover is harmless.
func (s *Store) sendWaitCluster(ctx context.Context, cc *redis.ClusterClient, runs []run, which []int, queue func(redis.Pipeliner, int), reads func(redis.Pipeliner)) ([]redis.Cmder, error) {
	byNode := map[*redis.Client][]int{}
	for _, i := range which {
		key := ""
		if len(runs[i].keys) > 0 {
			key = runs[i].keys[0] // a script's keys share a slot
		}
		node, err := cc.MasterForKey(ctx, key)
		if err != nil {
			cc.ReloadState(ctx)
			return nil, err
		}
		byNode[node] = append(byNode[node], i)
	}
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		errs   []error
		others []redis.Cmder
	)
	for node, idx := range byNode {
		wg.Go(func() {
			var wait *redis.IntCmd
			node.Pipelined(ctx, func(p redis.Pipeliner) error {
				for _, i := range idx {
					queue(p, i)
				}
				wait = s.queueWait(ctx, p)
				return nil
			})
			if err := s.replicated(wait); err != nil {
				cc.ReloadState(ctx) // the master may have moved: learn where to
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		})
	}
	if reads != nil {
		wg.Go(func() {
			done, _ := cc.Pipelined(ctx, func(p redis.Pipeliner) error { reads(p); return nil })
			mu.Lock()
			others = done
			mu.Unlock()
		})
	}
	wg.Wait()
	return others, errors.Join(errs...)
}

// queueWait adds WAIT to a pipeline. go-redis's pipelines have Wait,
// which gives the command the read time it blocks for, though their
// interface does not list it.
func (s *Store) queueWait(ctx context.Context, p redis.Pipeliner) *redis.IntCmd {
	if w, ok := p.(interface {
		Wait(context.Context, int, time.Duration) *redis.IntCmd
	}); ok {
		return w.Wait(ctx, s.waitReplicas, s.waitTimeout)
	}
	cmd := redis.NewIntCmd(ctx, "wait", s.waitReplicas, s.waitTimeout.Milliseconds())
	p.Process(ctx, cmd)
	return cmd
}

// replicated checks a WAIT's answer: how many replicas took the writes.
func (s *Store) replicated(wait *redis.IntCmd) error {
	n, err := wait.Result()
	switch {
	case err != nil:
		return err
	case n < int64(s.waitReplicas):
		return fmt.Errorf("%w: %d of %d replicas took the write within %v", errNotReplicated, n, s.waitReplicas, s.waitTimeout)
	}
	return nil
}

// errNotReplicated is a write too few replicas took in time.
var errNotReplicated = errors.New("write not replicated")

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
