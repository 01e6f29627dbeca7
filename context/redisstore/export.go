package redisstore

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/stickycalls/stickycalls/context/callcontext"
	"github.com/stickycalls/stickycalls/context/identity"
	"github.com/stickycalls/stickycalls/context/storage"
)

// exportBatch is how many keys one read of an export fetches.
const exportBatch = 1000

// Export calls customer with every customer of the scope alive at now,
// then lineType with every remembered line type live at now. It lists the
// scope's keys with SCAN on every master (so writes made meanwhile may or
// may not be in it) and reads them in pipelines of exportBatch.
func (s *Store) Export(ctx context.Context, sc callcontext.Scope, now time.Time, customer func(storage.Record) error, lineType func(storage.RememberedLineType) error) error {
	n := s.names(sc)
	custKeys, err := s.scanKeys(ctx, globEscape("{"+n.space+":c:")+"*")
	if err != nil {
		return storeErr("export customers", err)
	}
	for len(custKeys) > 0 {
		batch := custKeys[:min(len(custKeys), exportBatch)]
		custKeys = custKeys[len(batch):]
		cmds := make([]*redis.StringCmd, len(batch))
		if _, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, k := range batch {
				cmds[i] = p.HGet(ctx, k, "rec")
			}
			return nil
		}); err != nil && err != redis.Nil {
			return storeErr("export customers", err)
		}
		for _, c := range cmds {
			raw, err := c.Result()
			if err == redis.Nil {
				continue // gone since the scan
			}
			if err != nil {
				return storeErr("export customers", err)
			}
			r, err := decodeRecord([]byte(raw))
			if err != nil {
				return fmt.Errorf("decode customer: %w", err)
			}
			if r.Expires.After(now) {
				if err := customer(r); err != nil {
					return err
				}
			}
		}
	}
	aniPrefix := "{" + n.space + ":a:"
	aniKeys, err := s.scanKeys(ctx, globEscape(aniPrefix)+"*")
	if err != nil {
		return storeErr("export line types", err)
	}
	for len(aniKeys) > 0 {
		batch := aniKeys[:min(len(aniKeys), exportBatch)]
		aniKeys = aniKeys[len(batch):]
		cmds := make([]*redis.SliceCmd, len(batch))
		if _, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, k := range batch {
				cmds[i] = p.HMGet(ctx, k, "lt", "ltx")
			}
			return nil
		}); err != nil {
			return storeErr("export line types", err)
		}
		for i, c := range cmds {
			v := c.Val()
			lt, _ := v[0].(string)
			x, _ := v[1].(string)
			exp, err := parseTS(x)
			if err != nil || lt == "" || identity.LineType(lt) == identity.Unknown || !exp.After(now) {
				continue
			}
			ani, err := url.PathUnescape(strings.TrimSuffix(strings.TrimPrefix(batch[i], aniPrefix), "}"))
			if err != nil {
				return fmt.Errorf("export line types: key %q: %w", batch[i], err)
			}
			if err := lineType(storage.RememberedLineType{ANI: ani, LineType: identity.LineType(lt), Expires: exp}); err != nil {
				return err
			}
		}
	}
	return nil
}

// RememberLineTypes stores remembered line types, as a start would, in
// waves of exportBatch.
func (s *Store) RememberLineTypes(ctx context.Context, sc callcontext.Scope, lts []storage.RememberedLineType) error {
	n := s.names(sc)
	now := time.Now()
	for len(lts) > 0 {
		batch := lts[:min(len(lts), exportBatch)]
		lts = lts[len(batch):]
		runs := make([]run, len(batch))
		for i, lt := range batch {
			runs[i] = run{setFieldScript, []string{n.ani(lt.ANI)}, []any{ttl(lt.Expires, now), "lt", string(lt.LineType), "ltx", ts(lt.Expires)}}
		}
		if _, err := s.wave(ctx, "remember line types", runs, nil); err != nil {
			return err
		}
	}
	return nil
}

// scanKeys lists the keys that match pattern on every master and end with
// their hash tag's "}" (a customer's, not its lock's).
func (s *Store) scanKeys(ctx context.Context, pattern string) ([]string, error) {
	var mu sync.Mutex
	var keys []string
	scan := func(ctx context.Context, c *redis.Client) error {
		iter := c.Scan(ctx, 0, pattern, exportBatch).Iterator()
		for iter.Next(ctx) {
			if k := iter.Val(); strings.HasSuffix(k, "}") {
				mu.Lock()
				keys = append(keys, k)
				mu.Unlock()
			}
		}
		return iter.Err()
	}
	switch c := s.rdb.(type) {
	case *redis.ClusterClient:
		return keys, c.ForEachMaster(ctx, scan)
	case *redis.Client:
		return keys, scan(ctx, c)
	}
	return nil, fmt.Errorf("redis: cannot scan with a %T", s.rdb)
}

// globEscape escapes the characters SCAN's MATCH treats as a pattern.
func globEscape(s string) string {
	return strings.NewReplacer(`\`, `\\`, `*`, `\*`, `?`, `\?`, `[`, `\[`, `]`, `\]`).Replace(s)
}
