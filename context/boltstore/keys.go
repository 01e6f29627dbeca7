package boltstore

import (
	"context"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/stickycalls/stickycalls/context/callcontext"
	"github.com/stickycalls/stickycalls/context/keys"
)

// PutKey implements keys.Store.
func (s *Store) PutKey(_ context.Context, k keys.Key) error {
	return s.update(func(tx *bolt.Tx) error {
		if err := put(tx.Bucket(bucketKeys), k.ID, k); err != nil {
			return err
		}
		return tx.Bucket(bucketKeyHash).Put([]byte(k.Hash), []byte(k.ID))
	})
}

// KeyByHash implements keys.Store.
func (s *Store) KeyByHash(_ context.Context, hash string) (keys.Key, error) {
	var k keys.Key
	err := s.db.View(func(tx *bolt.Tx) error {
		id := tx.Bucket(bucketKeyHash).Get([]byte(hash))
		if id == nil {
			return callcontext.ErrNotFound
		}
		ok, err := get(tx.Bucket(bucketKeys), string(id), &k)
		if err == nil && !ok {
			return callcontext.ErrNotFound
		}
		return err
	})
	return k, err
}

// Keys implements keys.Store.
func (s *Store) Keys(context.Context) ([]keys.Key, error) {
	var all []keys.Key
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketKeys)
		return b.ForEach(func(id, _ []byte) error {
			var k keys.Key
			if _, err := get(b, string(id), &k); err != nil {
				return err
			}
			all = append(all, k)
			return nil
		})
	})
	return all, err
}

// RevokeKey implements keys.Store.
func (s *Store) RevokeKey(_ context.Context, id string, now time.Time) error {
	return s.updateKey(id, func(k *keys.Key) {
		if k.Revoked.IsZero() {
			k.Revoked = now
		}
	})
}

// TouchKey implements keys.Store.
func (s *Store) TouchKey(_ context.Context, id string, now time.Time) error {
	return s.updateKey(id, func(k *keys.Key) { k.LastUsed = now })
}

func (s *Store) updateKey(id string, change func(*keys.Key)) error {
	return s.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketKeys)
		var k keys.Key
		ok, err := get(b, id, &k)
		if err != nil {
			return err
		}
		if !ok {
			return callcontext.ErrNotFound
		}
		change(&k)
		return put(b, id, k)
	})
}
