package boltstore

import (
	"context"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/stickycalls/stickycalls/context/callcontext"
)

// PutKey implements callcontext.Store.
func (s *Store) PutKey(_ context.Context, k callcontext.APIKey) error {
	return s.update(func(tx *bolt.Tx) error {
		if err := put(tx.Bucket(bucketKeys), k.ID, k); err != nil {
			return err
		}
		return tx.Bucket(bucketKeyHash).Put([]byte(k.Hash), []byte(k.ID))
	})
}

// KeyByHash implements callcontext.Store.
func (s *Store) KeyByHash(_ context.Context, hash string) (callcontext.APIKey, error) {
	var k callcontext.APIKey
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

// Keys implements callcontext.Store.
func (s *Store) Keys(context.Context) ([]callcontext.APIKey, error) {
	var keys []callcontext.APIKey
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketKeys)
		return b.ForEach(func(id, _ []byte) error {
			var k callcontext.APIKey
			if _, err := get(b, string(id), &k); err != nil {
				return err
			}
			keys = append(keys, k)
			return nil
		})
	})
	return keys, err
}

// RevokeKey implements callcontext.Store.
func (s *Store) RevokeKey(_ context.Context, id string, now time.Time) error {
	return s.updateKey(id, func(k *callcontext.APIKey) {
		if k.Revoked.IsZero() {
			k.Revoked = now
		}
	})
}

// TouchKey implements callcontext.Store.
func (s *Store) TouchKey(_ context.Context, id string, now time.Time) error {
	return s.updateKey(id, func(k *callcontext.APIKey) { k.LastUsed = now })
}

func (s *Store) updateKey(id string, change func(*callcontext.APIKey)) error {
	return s.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketKeys)
		var k callcontext.APIKey
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
