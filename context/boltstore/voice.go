package boltstore

import (
	"cmp"
	"context"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/stickycalls/stickycalls/context/callcontext"
	"github.com/stickycalls/stickycalls/context/identity"
	"github.com/stickycalls/stickycalls/context/storage"
)

var (
	bucketLookup  = []byte("lookup")
	bucketStreams = []byte("streams") // scope name, NUL, call id → streamLease
)

// streamLease is who holds a call's media stream, and until when.
type streamLease struct {
	Holder  string    `json:"holder"`
	Expires time.Time `json:"expires"`
}

func streamKey(sc callcontext.Scope, callID string) string {
	return string(scopeName(sc)) + "\x00" + callID
}

// LeaseStream implements callcontext.Store.
func (s *Store) LeaseStream(_ context.Context, sc callcontext.Scope, callID, holder string, now, expires time.Time) (bool, error) {
	granted := false
	err := s.update(func(tx *bolt.Tx) error {
		granted = false // update may run this more than once
		b, key := tx.Bucket(bucketStreams), streamKey(sc, callID)
		var l streamLease
		if _, err := get(b, key, &l); err != nil {
			return err
		}
		if l.Holder != "" && l.Holder != holder && l.Expires.After(now) {
			return nil
		}
		granted = true
		return put(b, key, streamLease{Holder: holder, Expires: expires})
	})
	return granted, err
}

// ReleaseStream implements callcontext.Store.
func (s *Store) ReleaseStream(_ context.Context, sc callcontext.Scope, callID, holder string) error {
	return s.update(func(tx *bolt.Tx) error {
		b, key := tx.Bucket(bucketStreams), streamKey(sc, callID)
		var l streamLease
		if _, err := get(b, key, &l); err != nil || l.Holder != holder {
			return err
		}
		return b.Delete([]byte(key))
	})
}

// lookupEntry is a cached Lookup answer.
type lookupEntry struct {
	LineType identity.LineType `json:"line_type"`
	Expires  time.Time         `json:"expires"`
}

// ConfirmCall implements callcontext.Store.
func (s *Store) ConfirmCall(_ context.Context, sc callcontext.Scope, callID string, c storage.Confirmation) error {
	return s.updateCall(sc, callID, c.Tally, func(call *storage.CallRecord) {
		call.Confirmed, call.Denied, call.CustomerRef, call.Recommendation = c.Confirmed, c.Denied, c.CustomerRef, c.Recommendation
	})
}

// NoteCall implements callcontext.Store.
func (s *Store) NoteCall(_ context.Context, sc callcontext.Scope, callID string, n storage.CallNote) error {
	return s.updateCall(sc, callID, storage.Tally{}, func(call *storage.CallRecord) {
		call.AgentAction = cmp.Or(n.AgentAction, call.AgentAction)
		call.DialStatus = cmp.Or(n.DialStatus, call.DialStatus)
	})
}

// updateCall changes an existing call record with change, and counts t,
// or reports ErrNotFound.
func (s *Store) updateCall(sc callcontext.Scope, callID string, t storage.Tally, change func(*storage.CallRecord)) error {
	return s.update(func(tx *bolt.Tx) error {
		if _, ok := readScope(tx, sc); !ok {
			return callcontext.ErrNotFound
		}
		b, err := writeScope(tx, sc) // a file from before tallies gets their bucket
		if err != nil {
			return err
		}
		var call storage.CallRecord
		found, err := get(b.calls, callID, &call)
		if err != nil {
			return err
		}
		if !found {
			return callcontext.ErrNotFound
		}
		change(&call)
		if err := tally(b, t); err != nil {
			return err
		}
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
	return s.update(func(tx *bolt.Tx) error {
		return put(tx.Bucket(bucketLookup), e164, lookupEntry{LineType: lt, Expires: expires})
	})
}

// mergeCompletion copies a completion's fields, leaving start and end alone.
func mergeCompletion(dst *storage.CallRecord, src storage.CallRecord) {
	if dst.ID == "" {
		*dst = src
	}
	dst.Completed, dst.CompletionStatus, dst.CompletedDuration = src.Completed, src.CompletionStatus, src.CompletedDuration
	dst.CompletedRef, dst.CompletionCreated = src.CompletedRef, src.CompletionCreated
}
