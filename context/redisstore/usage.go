package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/stickycalls/stickycalls/context/callcontext"
	"github.com/stickycalls/stickycalls/context/storage"
)

// A start counts itself in its hour's tally hash, in one HINCRBY: the
// field is the tally's, then '|' and a usage code ("b" or "n": billable
// or not; "rb", "rn": and a request, when its claim did not count one).
// Tallies reads the fields without their codes; Usage adds the codes of
// the period's hours to the period's own counters (which the claims of
// ends and of starts under a quota, and the ends, count). The hours are
// kept 35 days, so the current period's usage is exact.

// hours lists the UTC hours from the one of from to the one of to.
func hours(from, to time.Time) []time.Time {
	var out []time.Time
	for h := from.UTC().Truncate(time.Hour); !h.After(to); h = h.Add(time.Hour) {
		out = append(out, h)
	}
	return out
}

// readHours reads the tally hashes of hours, and what more adds, in one
// pipeline.
func (s *Store) readHours(ctx context.Context, n names, hs []time.Time, more func(redis.Pipeliner)) ([]map[string]string, error) {
	cmds := make([]*redis.MapStringStringCmd, len(hs))
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, h := range hs {
			cmds[i] = p.HGetAll(ctx, n.tallies(h))
		}
		if more != nil {
			more(p)
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, err
	}
	out := make([]map[string]string, len(hs))
	for i, c := range cmds {
		out[i] = c.Val()
	}
	return out, nil
}

// Tallies implements callcontext.Store: the hours' hashes, read in one
// pipeline (one wave).
func (s *Store) Tallies(ctx context.Context, sc callcontext.Scope, from, to time.Time) ([]storage.HourTally, error) {
	hs := hours(from, to)
	got, err := s.readHours(ctx, s.names(sc), hs, nil)
	if err != nil {
		return nil, storeErr("read tallies", err)
	}
	var out []storage.HourTally
	for i, m := range got {
		counts := map[string]int64{}
		for f, v := range m {
			field, _, _ := strings.Cut(f, "|")
			if field == "" {
				continue
			}
			n, _ := strconv.ParseInt(v, 10, 64)
			counts[field] += n
		}
		if len(counts) > 0 {
			out = append(out, storage.HourTally{Hour: hs[i], Counts: counts})
		}
	}
	return out, nil
}

// Usage implements callcontext.Store in one wave: the period's counters
// and its hours' usage codes.
func (s *Store) Usage(ctx context.Context, sc callcontext.Scope, period string) (storage.UsageCount, error) {
	n := s.names(sc)
	var hs []time.Time
	if from, err := time.Parse("2006-01", period); err == nil {
		hs = hours(from, from.AddDate(0, 1, 0).Add(-time.Hour))
	}
	var counters *redis.SliceCmd
	got, err := s.readHours(ctx, n, hs, func(p redis.Pipeliner) {
		counters = p.HMGet(ctx, n.usage(period), "requests", "billable", "non_billable")
	})
	if err != nil {
		return storage.UsageCount{}, storeErr("read usage", err)
	}
	var u [3]int64
	for i, x := range counters.Val() {
		if str, ok := x.(string); ok {
			if u[i], err = strconv.ParseInt(str, 10, 64); err != nil {
				return storage.UsageCount{}, fmt.Errorf("decode usage: %w", err)
			}
		}
	}
	for _, m := range got {
		for f, v := range m {
			_, code, ok := strings.Cut(f, "|")
			if !ok {
				continue
			}
			k, _ := strconv.ParseInt(v, 10, 64)
			if strings.HasPrefix(code, "r") {
				u[0] += k
			}
			switch strings.TrimPrefix(code, "r") {
			case "b":
				u[1] += k
			case "n":
				u[2] += k
			}
		}
	}
	return storage.UsageCount{Requests: u[0], Billable: u[1], NonBillable: u[2]}, nil
}
