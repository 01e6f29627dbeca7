package boltstore

import (
	"context"
	"time"

	"github.com/stickycalls/stickycalls/context/storage"
	bolt "go.etcd.io/bbolt"
)

// Sweep deletes everything that expired before now, in every scope.
func (s *Store) Sweep(now time.Time) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		// Leases of streams whose relay died without releasing them.
		if err := sweepExpired(tx.Bucket(bucketStreams), now, func(v []byte) (time.Time, error) {
			var l streamLease
			err := decode(v, &l)
			return l.Expires, err
		}); err != nil {
			return err
		}
		return tx.Bucket(bucketScopes).ForEach(func(name, _ []byte) error {
			return sweepScope(scopeOf(tx.Bucket(bucketScopes).Bucket(name)), now)
		})
	})
}

func sweepScope(b scope, now time.Time) error {
	if b.tallies != nil { // hours past retention: their keys sort before the oldest kept
		oldest := []byte(storage.TallyHour(now.Add(-storage.TallyRetention)))
		var old [][]byte
		c := b.tallies.Cursor()
		for k, _ := c.First(); k != nil && string(k) < string(oldest); k, _ = c.Next() {
			old = append(old, k)
		}
		for _, k := range old {
			if err := b.tallies.Delete(k); err != nil {
				return err
			}
		}
	}
	var dead []string
	err := b.customers.ForEach(func(k, _ []byte) error {
		var r storage.Record
		if _, err := get(b.customers, string(k), &r); err != nil {
			return err
		}
		if !r.Expires.After(now) {
			dead = append(dead, string(k))
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, ref := range dead {
		var r storage.Record
		if _, err := get(b.customers, ref, &r); err != nil {
			return err
		}
		if err := deleteCustomer(b, ref, r); err != nil {
			return err
		}
	}
	if err := sweepExpired(b.calls, now, func(v []byte) (time.Time, error) {
		var c storage.CallRecord
		err := decode(v, &c) // before reading c.Expires: operand order is unspecified
		return c.Expires, err
	}); err != nil {
		return err
	}
	if err := sweepExpired(b.idem, now, func(v []byte) (time.Time, error) {
		var r idemRecord
		err := decode(v, &r) // before reading r.Expires: operand order is unspecified
		return r.Expires, err
	}); err != nil {
		return err
	}
	if err := sweepExpired(b.owners, now, func(v []byte) (time.Time, error) {
		var o owner
		err := decode(v, &o) // before reading o.Expires: operand order is unspecified
		return o.Expires, err
	}); err != nil {
		return err
	}
	return sweepANIs(b, now)
}

// sweepExpired deletes the entries of b whose expiry is not after now.
func sweepExpired(b *bolt.Bucket, now time.Time, expires func([]byte) (time.Time, error)) error {
	var dead [][]byte
	err := b.ForEach(func(k, v []byte) error {
		t, err := expires(v)
		if err != nil {
			return err
		}
		if !t.After(now) {
			dead = append(dead, append([]byte(nil), k...))
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, k := range dead {
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

func sweepANIs(b scope, now time.Time) error {
	var keys []string
	err := b.anis.ForEach(func(k, _ []byte) error {
		keys = append(keys, string(k))
		return nil
	})
	if err != nil {
		return err
	}
	for _, ani := range keys {
		e, err := liveANI(b, ani, now)
		if err != nil {
			return err
		}
		if len(e.Links) == 0 && e.LineType == "" {
			err = b.anis.Delete([]byte(ani))
		} else {
			err = put(b.anis, ani, e)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// Run sweeps every interval until ctx is done.
func (s *Store) Run(ctx context.Context, interval time.Duration, now func() time.Time) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			_ = s.Sweep(now()) // a failed sweep is retried at the next tick
		}
	}
}
