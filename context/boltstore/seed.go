package boltstore

import (
	"context"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/stickycalls/stickycalls/context/callcontext"
	"github.com/stickycalls/stickycalls/context/storage"
)

// An import may run on a live server (POST /admin/import), and bbolt has
// one writer, so an import writes in batches shared with requests
// (update), each sized from the last one's time to take about batchTime:
// a request waits for about one batch at most. Measured importing 300,000
// customers in random order while a write was made every 2 ms: batches of
// 10,000 in transactions of their own took 22 s and held a write for up to
// 2.2 s (past voice's 800 ms webhook deadline); batches of 100, 49 s and
// 130 ms; batches sized to 50 ms, 36 s and 168 ms. Bigger batches are
// faster because the customers of one share the pages above them.
const (
	batchTime          = 50 * time.Millisecond
	minBatch, maxBatch = 100, 10_000
)

// inBatches writes n items through update, items [from, to) in each call
// of write, in batches sized from the last one's time to take batchTime.
func (s *Store) inBatches(n int, write func(tx *bolt.Tx, from, to int) error) error {
	size := minBatch
	for from := 0; from < n; {
		to := min(n, from+size)
		began := time.Now()
		if err := s.update(func(tx *bolt.Tx) error { return write(tx, from, to) }); err != nil {
			return err
		}
		took := max(time.Since(began), time.Millisecond)
		size = min(max(int(int64(to-from)*int64(batchTime)/int64(took)), minBatch), maxBatch)
		from = to
	}
	return nil
}

// Seed bulk-loads new customers, writing exactly what an end that created
// each of them writes for the customer: the record, which must not exist
// yet, its ANI links and its external id owners. It writes no call
// records: seeded customers are those whose calls are past retention. It
// writes in batches (see inBatches). A record that is already stored,
// expired as of now or without a ref or version is an error; the batches
// before it stay written.
func (s *Store) Seed(_ context.Context, sc callcontext.Scope, recs []storage.Record, now time.Time) error {
	return s.inBatches(len(recs), func(tx *bolt.Tx, from, to int) error {
		b, err := writeScope(tx, sc)
		if err != nil {
			return err
		}
		for _, r := range recs[from:to] {
			if err := seed(b, r, now); err != nil {
				return err
			}
		}
		return nil
	})
}

func seed(b scope, r storage.Record, now time.Time) error {
	if r.Ref == "" || r.Version < 1 || !r.Expires.After(now) {
		return fmt.Errorf("seed customer %q: needs a ref, a version and an expiry after now", r.Ref)
	}
	if b.customers.Get([]byte(r.Ref)) != nil {
		return fmt.Errorf("seed customer %q: already stored", r.Ref)
	}
	if err := put(b.customers, r.Ref, r); err != nil {
		return err
	}
	for ani, l := range r.ANIs {
		if err := updateANI(b, ani, func(e *aniEntry) { e.Links[r.Ref] = storage.Link{LastCall: l.LastCall, Expires: l.Expires} }); err != nil {
			return err
		}
	}
	for id, l := range r.ExternalIDs {
		if err := put(b.owners, id, owner{Ref: r.Ref, Expires: l.Expires}); err != nil {
			return err
		}
	}
	return nil
}
