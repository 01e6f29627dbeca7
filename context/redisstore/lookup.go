package redisstore

import (
	"context"
	"time"

	"github.com/stickycalls/stickycalls/context/identity"
)

// lookupKey is a number's cached Lookup answer: a hash of "lt" and "exp".
// The cache is shared by every tenant, like Lookup itself.
func (s *Store) lookupKey(e164 string) string { return "{" + s.prefix + "lookup:" + esc(e164) + "}" }

// CachedLineType implements callcontext.Store in one wave.
func (s *Store) CachedLineType(ctx context.Context, e164 string, now time.Time) (identity.LineType, bool, error) {
	v, err := s.rdb.HMGet(ctx, s.lookupKey(e164), "lt", "exp").Result()
	if err != nil {
		return "", false, storeErr("read lookup cache", err)
	}
	lt, _ := v[0].(string)
	exp, _ := v[1].(string)
	if !after(exp, now) {
		return "", false, nil
	}
	return identity.LineType(lt), true, nil
}

// CacheLineType implements callcontext.Store in one wave. It is given no
// current time, so the key's TTL cannot follow expires: it is the longest
// TTL the store sets, renewed by every write, and reads filter by expires.
func (s *Store) CacheLineType(ctx context.Context, e164 string, lt identity.LineType, expires time.Time) error {
	_, err := s.one(ctx, "write lookup cache", run{setFieldScript, []string{s.lookupKey(e164)},
		[]any{ttlMax.Milliseconds(), "lt", string(lt), "exp", ts(expires)}})
	return err
}
