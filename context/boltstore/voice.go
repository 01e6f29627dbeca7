package boltstore

import (
	"context"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/stickycalls/stickycalls/context/callcontext"
	"github.com/stickycalls/stickycalls/context/identity"
)

var bucketLookup = []byte("lookup")

// lookupEntry is a cached Lookup answer.
type lookupEntry struct {
	LineType identity.LineType `json:"line_type"`
	Expires  time.Time         `json:"expires"`
}

// ConfirmCall implements callcontext.Store.
func (s *Store) ConfirmCall(_ context.Context, sc callcontext.Scope, callID string, c callcontext.Confirmation) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		b, ok := readScope(tx, sc)
		if !ok {
			return callcontext.ErrNotFound
		}
		var call callcontext.CallRecord
		found, err := get(b.calls, callID, &call)
		if err != nil {
			return err
		}
		if !found {
			return callcontext.ErrNotFound
		}
		call.Confirmed, call.Denied, call.CustomerRef, call.Recommendation = c.Confirmed, c.Denied, c.CustomerRef, c.Recommendation
		return put(b.calls, callID, call)
	})
}

// CachedLineType implements callcontext.Store.
func (s *Store) CachedLineType(_ context.Context, e164 string, now time.Time) (identity.LineType, bool, error) {
	var e lookupEntry
	var found bool
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		found, err = get(tx.Bucket(bucketLookup), e164, &e)
		return err
	})
	if err != nil || !found || !e.Expires.After(now) {
		return "", false, err
	}
	return e.LineType, true, nil
}

// CacheLineType implements callcontext.Store.
func (s *Store) CacheLineType(_ context.Context, e164 string, lt identity.LineType, expires time.Time) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		return put(tx.Bucket(bucketLookup), e164, lookupEntry{LineType: lt, Expires: expires})
	})
}

// mergeCompletion copies a completion's fields, leaving start and end alone.
func mergeCompletion(dst *callcontext.CallRecord, src callcontext.CallRecord) {
	if dst.ID == "" {
		*dst = src
	}
	dst.Completed, dst.CompletionStatus, dst.CompletedDuration = src.Completed, src.CompletionStatus, src.CompletedDuration
	dst.CompletedRef, dst.CompletionCreated = src.CompletedRef, src.CompletionCreated
}
