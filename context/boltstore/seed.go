package boltstore

import (
	"context"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/stickycalls/stickycalls/context/callcontext"
	"github.com/stickycalls/stickycalls/context/storage"
)

// seedBatch is how many customers one seeding transaction writes. An
// import may run on a live server (POST /admin/import), and bbolt has one
// writer, so a batch is a short write shared with requests (update). In a
// measurement with 100,000 customers, batches of 10,000 in transactions of
// their own held a write that arrived meanwhile for up to 1 s; batches of
// 100 hold one for at most 37 ms, and the import takes as long (3.9 s).
const seedBatch = 100

// Seed bulk-loads new customers, writing exactly what an end that created
// each of them writes for the customer: the record, which must not exist
// yet, its ANI links and its external id owners. It writes no call
// records: seeded customers are those whose calls are past retention. Each
// batch of seedBatch customers is written in one transaction (possibly
// shared with requests). A record that is already stored, expired as of
// now or without a ref or version is an error; the batches before it stay
// written.
func (s *Store) Seed(_ context.Context, sc callcontext.Scope, recs []storage.Record, now time.Time) error {
	for len(recs) > 0 {
		batch := recs[:min(len(recs), seedBatch)]
		recs = recs[len(batch):]
		err := s.update(func(tx *bolt.Tx) error {
			b, err := writeScope(tx, sc)
			if err != nil {
				return err
			}
			for _, r := range batch {
				if err := seed(b, r, now); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
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
