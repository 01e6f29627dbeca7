package boltstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/stickycalls/stickycalls/context/storage"
	bolt "go.etcd.io/bbolt"
)

// A sweep deletes what expired. It must not hold up calls: bbolt has one
// writer, and a sweep in one write transaction decoded every customer
// while it held it (about 3 s at 200,000 customers, so every start and end
// of a store with a million waited some 15 s every sweep interval). So a
// sweep reads a bucket a page at a time, each page in a read transaction,
// which holds no writer up, and deletes what the page found dead in a
// write transaction shared with requests (update), checking each entry
// again there, as a request may have refreshed it meanwhile. A write
// waits for at most one page's deletes.
const sweepPage = 64

// sweeper sweeps one kind of bucket: its name (for errors), where it is
// in a transaction (nil when it does not exist), whether an entry is dead,
// and how a dead entry is deleted.
type sweeper struct {
	name   string
	bucket func(tx *bolt.Tx) *bolt.Bucket
	dead   func(k, v []byte) (bool, error)
	remove func(tx *bolt.Tx, k, v []byte) error
}

// Sweep deletes everything that expired before now, in every scope. An
// entry it cannot decode is left alone and reported, by its bucket only
// (keys are phone numbers and call ids), and the sweep goes on.
func (s *Store) Sweep(now time.Time) error {
	var errs []error
	streams := func(tx *bolt.Tx) *bolt.Bucket { return tx.Bucket(bucketStreams) }
	lookups := func(tx *bolt.Tx) *bolt.Bucket { return tx.Bucket(bucketLookup) }
	for _, sw := range []sweeper{
		{"streams", streams, expiredBy(now, func(l *streamLease) time.Time { return l.Expires }), deleteEntry(streams)},
		{"lookup", lookups, expiredBy(now, func(e *lookupEntry) time.Time { return e.Expires }), deleteEntry(lookups)},
	} {
		errs = append(errs, s.sweepBucket(sw))
	}
	var names [][]byte
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketScopes).ForEach(func(name, _ []byte) error {
			names = append(names, bytes.Clone(name))
			return nil
		})
	})
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	for _, name := range names {
		errs = append(errs, s.sweepScope(name, now))
	}
	return errors.Join(errs...)
}

func (s *Store) sweepScope(name []byte, now time.Time) error {
	in := func(tx *bolt.Tx) (scope, bool) {
		b := tx.Bucket(bucketScopes).Bucket(name)
		if b == nil {
			return scope{}, false
		}
		return scopeOf(b), true
	}
	sub := func(pick func(scope) *bolt.Bucket) func(*bolt.Tx) *bolt.Bucket {
		return func(tx *bolt.Tx) *bolt.Bucket {
			if b, ok := in(tx); ok {
				return pick(b)
			}
			return nil
		}
	}
	// Hours past retention: a few keys, sorting before the oldest kept,
	// deleted in a write only when there are some.
	oldest := []byte(storage.TallyHour(now.Add(-storage.TallyRetention)))
	old := func(tx *bolt.Tx) [][]byte {
		b, ok := in(tx)
		if !ok || b.tallies == nil {
			return nil
		}
		var keys [][]byte
		c := b.tallies.Cursor()
		for k, _ := c.First(); k != nil && bytes.Compare(k, oldest) < 0; k, _ = c.Next() {
			keys = append(keys, bytes.Clone(k))
		}
		return keys
	}
	var stale [][]byte
	err := s.db.View(func(tx *bolt.Tx) error { stale = old(tx); return nil })
	if err == nil && len(stale) > 0 {
		err = s.update(func(tx *bolt.Tx) error {
			keys := old(tx)
			if len(keys) == 0 {
				return nil
			}
			b, _ := in(tx)
			for _, k := range keys {
				if err := b.tallies.Delete(k); err != nil {
					return err
				}
			}
			return nil
		})
	}
	errs := []error{err}
	customers := sub(func(b scope) *bolt.Bucket { return b.customers })
	calls := sub(func(b scope) *bolt.Bucket { return b.calls })
	idem := sub(func(b scope) *bolt.Bucket { return b.idem })
	owners := sub(func(b scope) *bolt.Bucket { return b.owners })
	anis := sub(func(b scope) *bolt.Bucket { return b.anis })
	for _, sw := range []sweeper{
		{"customers", customers, expiredBy(now, func(r *storage.Record) time.Time { return r.Expires }), func(tx *bolt.Tx, k, v []byte) error {
			var r storage.Record
			if err := decode(v, &r); err != nil {
				return err
			}
			b, _ := in(tx)
			return deleteCustomer(b, string(k), r)
		}},
		{"calls", calls, expiredBy(now, func(c *storage.CallRecord) time.Time { return c.Expires }), deleteEntry(calls)},
		{"idem", idem, expiredBy(now, func(r *idemRecord) time.Time { return r.Expires }), deleteEntry(idem)},
		{"owners", owners, expiredBy(now, func(o *owner) time.Time { return o.Expires }), deleteEntry(owners)},
		{"anis", anis, func(_, v []byte) (bool, error) {
			var e aniEntry
			if err := decode(v, &e); err != nil {
				return false, err
			}
			return pruneANI(&e, now) || len(e.Links) == 0 && e.LineType == "", nil
		}, func(tx *bolt.Tx, k, v []byte) error {
			var e aniEntry
			if err := decode(v, &e); err != nil {
				return err
			}
			pruneANI(&e, now)
			b, _ := in(tx)
			if len(e.Links) == 0 && e.LineType == "" {
				return b.anis.Delete(k)
			}
			return put(b.anis, string(k), e)
		}},
	} {
		errs = append(errs, s.sweepBucket(sw))
	}
	return errors.Join(errs...)
}

// sweepBucket sweeps one bucket, a page at a time (see sweepPage).
func (s *Store) sweepBucket(sw sweeper) error {
	var from []byte // the first key of the next page; nil before the first
	undecodable := 0
	for {
		var dead [][]byte
		next := []byte(nil)
		err := s.db.View(func(tx *bolt.Tx) error {
			b := sw.bucket(tx)
			if b == nil {
				return nil
			}
			c := b.Cursor()
			k, v := c.First()
			if from != nil {
				k, v = c.Seek(from)
			}
			for n := 0; k != nil; k, v = c.Next() {
				if n == sweepPage {
					next = bytes.Clone(k)
					break
				}
				n++
				ok, err := sw.dead(k, v)
				if err != nil {
					undecodable++
					continue
				}
				if ok {
					dead = append(dead, bytes.Clone(k))
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		if s.sweptPage != nil {
			s.sweptPage()
		}
		if len(dead) > 0 {
			err := s.update(func(tx *bolt.Tx) error {
				b := sw.bucket(tx)
				if b == nil {
					return nil
				}
				for _, k := range dead {
					v := b.Get(k)
					if v == nil {
						continue
					}
					if ok, err := sw.dead(k, v); err != nil || !ok {
						continue
					}
					if err := sw.remove(tx, k, v); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				return err
			}
		}
		if next == nil {
			if undecodable > 0 {
				return fmt.Errorf("sweep %s: %d entries could not be decoded and were left alone", sw.name, undecodable)
			}
			return nil
		}
		from = next
	}
}

// expiredBy is a sweeper's test of an entry of type T whose expiry is
// expires: dead when it is not after now.
func expiredBy[T any](now time.Time, expires func(*T) time.Time) func(k, v []byte) (bool, error) {
	return func(_, v []byte) (bool, error) {
		var e T
		if err := decode(v, &e); err != nil {
			return false, err
		}
		return !expires(&e).After(now), nil
	}
}

// deleteEntry deletes a dead entry of the bucket where is.
func deleteEntry(where func(*bolt.Tx) *bolt.Bucket) func(tx *bolt.Tx, k, _ []byte) error {
	return func(tx *bolt.Tx, k, _ []byte) error { return where(tx).Delete(k) }
}

// Run sweeps every interval until ctx is done, telling failed what a
// sweep could not do (it is tried again at the next interval).
func (s *Store) Run(ctx context.Context, interval time.Duration, now func() time.Time, failed func(error)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := s.Sweep(now()); err != nil {
				failed(err)
			}
		}
	}
}
