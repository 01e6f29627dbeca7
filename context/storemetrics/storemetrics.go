// Package storemetrics measures a callcontext.Store: how long each
// operation takes and how often it fails, by operation, in Prometheus.
// ErrNotFound is an answer, not an error, and is not counted as one.
package storemetrics

import (
	"context"
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/stickycalls/stickycalls/context/callcontext"
	"github.com/stickycalls/stickycalls/context/identity"
	"github.com/stickycalls/stickycalls/context/keys"
	"github.com/stickycalls/stickycalls/context/storage"
	"github.com/stickycalls/stickycalls/lookup"
)

// Measured is what a store measured here does: the domain's operations,
// the API keys, and Lookup's cache of line types.
type Measured interface {
	callcontext.Store
	keys.Store
	lookup.Cache
}

// Store is a measured store. It passes the inner store's Serializer on
// (see callcontext.Serializer).
type Store struct {
	inner    Measured
	duration *prometheus.HistogramVec
	errors   *prometheus.CounterVec
}

var (
	_ Measured               = (*Store)(nil)
	_ callcontext.Serializer = (*Store)(nil)
)

// Wrap measures s, registering its series with reg.
func Wrap(s Measured, reg prometheus.Registerer) *Store {
	m := &Store{
		inner: s,
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "stickycalls_store_operation_duration_seconds", Help: "Store operations' latency, by operation.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"operation"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stickycalls_store_errors_total", Help: "Store operations that failed, by operation (not found is not a failure).",
		}, []string{"operation"}),
	}
	for _, op := range operations {
		m.errors.WithLabelValues(op) // exported at 0 from the start, so that rates work
	}
	reg.MustRegister(m.duration, m.errors)
	return m
}

// operations are the operation labels, one per Store method.
var operations = []string{"resolve", "customers", "claim", "release", "save_start", "commit_end", "confirm_call", "note_call",
	"lease_stream", "release_stream", "call", "erase", "usage", "put_key", "key_by_hash", "keys", "revoke_key", "touch_key",
	"cached_line_type", "cache_line_type", "ping", "tallies"}

// measure records one operation that began at began and ended with *err;
// defer it with the method's named error.
func (m *Store) measure(op string, began time.Time, err *error) {
	m.duration.WithLabelValues(op).Observe(time.Since(began).Seconds())
	if *err != nil && !errors.Is(*err, callcontext.ErrNotFound) {
		m.errors.WithLabelValues(op).Inc()
	}
}

// Serialize implements callcontext.Serializer: the inner store's turns, or
// none when it has none.
func (m *Store) Serialize(ctx context.Context, sc callcontext.Scope, key string) (func(), error) {
	if s, ok := m.inner.(callcontext.Serializer); ok {
		return s.Serialize(ctx, sc, key)
	}
	return func() {}, nil
}

// Resolve implements callcontext.Store.
func (m *Store) Resolve(ctx context.Context, sc callcontext.Scope, q storage.Query, now time.Time) (f storage.Found, err error) {
	defer m.measure("resolve", time.Now(), &err)
	return m.inner.Resolve(ctx, sc, q, now)
}

// Customers implements callcontext.Store.
func (m *Store) Customers(ctx context.Context, sc callcontext.Scope, refs []string) (m2 map[string]storage.Record, err error) {
	defer m.measure("customers", time.Now(), &err)
	return m.inner.Customers(ctx, sc, refs)
}

// Claim implements callcontext.Store.
func (m *Store) Claim(ctx context.Context, sc callcontext.Scope, c storage.Claim) (r storage.ClaimResult, err error) {
	defer m.measure("claim", time.Now(), &err)
	return m.inner.Claim(ctx, sc, c)
}

// Release implements callcontext.Store.
func (m *Store) Release(ctx context.Context, sc callcontext.Scope, c storage.Claim) (err error) {
	defer m.measure("release", time.Now(), &err)
	return m.inner.Release(ctx, sc, c)
}

// SaveStart implements callcontext.Store.
func (m *Store) SaveStart(ctx context.Context, sc callcontext.Scope, c storage.StartCommit) (err error) {
	defer m.measure("save_start", time.Now(), &err)
	return m.inner.SaveStart(ctx, sc, c)
}

// CommitEnd implements callcontext.Store.
func (m *Store) CommitEnd(ctx context.Context, sc callcontext.Scope, e storage.EndCommit) (err error) {
	defer m.measure("commit_end", time.Now(), &err)
	return m.inner.CommitEnd(ctx, sc, e)
}

// ConfirmCall implements callcontext.Store.
func (m *Store) ConfirmCall(ctx context.Context, sc callcontext.Scope, callID string, c storage.Confirmation) (err error) {
	defer m.measure("confirm_call", time.Now(), &err)
	return m.inner.ConfirmCall(ctx, sc, callID, c)
}

// NoteCall implements callcontext.Store.
func (m *Store) NoteCall(ctx context.Context, sc callcontext.Scope, callID string, n storage.CallNote) (err error) {
	defer m.measure("note_call", time.Now(), &err)
	return m.inner.NoteCall(ctx, sc, callID, n)
}

// LeaseStream implements callcontext.Store.
func (m *Store) LeaseStream(ctx context.Context, sc callcontext.Scope, callID, holder string, now, expires time.Time) (ok bool, err error) {
	defer m.measure("lease_stream", time.Now(), &err)
	return m.inner.LeaseStream(ctx, sc, callID, holder, now, expires)
}

// ReleaseStream implements callcontext.Store.
func (m *Store) ReleaseStream(ctx context.Context, sc callcontext.Scope, callID, holder string) (err error) {
	defer m.measure("release_stream", time.Now(), &err)
	return m.inner.ReleaseStream(ctx, sc, callID, holder)
}

// Call implements callcontext.Store.
func (m *Store) Call(ctx context.Context, sc callcontext.Scope, callID string) (c storage.CallRecord, err error) {
	defer m.measure("call", time.Now(), &err)
	return m.inner.Call(ctx, sc, callID)
}

// Erase implements callcontext.Store.
func (m *Store) Erase(ctx context.Context, sc callcontext.Scope, ref string) (err error) {
	defer m.measure("erase", time.Now(), &err)
	return m.inner.Erase(ctx, sc, ref)
}

// Usage implements callcontext.Store.
func (m *Store) Usage(ctx context.Context, sc callcontext.Scope, period string) (u storage.UsageCount, err error) {
	defer m.measure("usage", time.Now(), &err)
	return m.inner.Usage(ctx, sc, period)
}

// PutKey implements keys.Store.
func (m *Store) PutKey(ctx context.Context, k keys.Key) (err error) {
	defer m.measure("put_key", time.Now(), &err)
	return m.inner.PutKey(ctx, k)
}

// KeyByHash implements keys.Store.
func (m *Store) KeyByHash(ctx context.Context, hash string) (k keys.Key, err error) {
	defer m.measure("key_by_hash", time.Now(), &err)
	return m.inner.KeyByHash(ctx, hash)
}

// Keys implements keys.Store.
func (m *Store) Keys(ctx context.Context) (ks []keys.Key, err error) {
	defer m.measure("keys", time.Now(), &err)
	return m.inner.Keys(ctx)
}

// RevokeKey implements keys.Store.
func (m *Store) RevokeKey(ctx context.Context, id string, now time.Time) (err error) {
	defer m.measure("revoke_key", time.Now(), &err)
	return m.inner.RevokeKey(ctx, id, now)
}

// TouchKey implements keys.Store.
func (m *Store) TouchKey(ctx context.Context, id string, now time.Time) (err error) {
	defer m.measure("touch_key", time.Now(), &err)
	return m.inner.TouchKey(ctx, id, now)
}

// CachedLineType implements Measured.
func (m *Store) CachedLineType(ctx context.Context, e164 string, now time.Time) (lt identity.LineType, ok bool, err error) {
	defer m.measure("cached_line_type", time.Now(), &err)
	return m.inner.CachedLineType(ctx, e164, now)
}

// CacheLineType implements Measured.
func (m *Store) CacheLineType(ctx context.Context, e164 string, lt identity.LineType, expires time.Time) (err error) {
	defer m.measure("cache_line_type", time.Now(), &err)
	return m.inner.CacheLineType(ctx, e164, lt, expires)
}

// Ping implements callcontext.Store.
func (m *Store) Ping(ctx context.Context) (err error) {
	defer m.measure("ping", time.Now(), &err)
	return m.inner.Ping(ctx)
}

// Tallies implements callcontext.Store.
func (m *Store) Tallies(ctx context.Context, sc callcontext.Scope, from, to time.Time) (h []storage.HourTally, err error) {
	defer m.measure("tallies", time.Now(), &err)
	return m.inner.Tallies(ctx, sc, from, to)
}
