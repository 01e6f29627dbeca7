package boltstore

import (
	"context"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/stickycalls/stickycalls/context/callcontext"
	"github.com/stickycalls/stickycalls/context/identity"
	"github.com/stickycalls/stickycalls/context/storage"
)

// Export calls customer with every customer of the scope alive at now,
// then lineType with every remembered line type live at now, from one
// consistent view of the file.
func (s *Store) Export(_ context.Context, sc callcontext.Scope, now time.Time, customer func(storage.Record) error, lineType func(storage.RememberedLineType) error) error {
	return s.db.View(func(tx *bolt.Tx) error {
		b, ok := readScope(tx, sc)
		if !ok {
			return nil
		}
		err := b.customers.ForEach(func(_, v []byte) error {
			var r storage.Record
			if err := decode(v, &r); err != nil {
				return err
			}
			if !r.Expires.After(now) {
				return nil
			}
			return customer(r)
		})
		if err != nil {
			return err
		}
		return b.anis.ForEach(func(k, v []byte) error {
			var e aniEntry
			if err := decode(v, &e); err != nil {
				return err
			}
			if e.LineType == "" || e.LineType == identity.Unknown || !e.LineTypeExpires.After(now) {
				return nil
			}
			return lineType(storage.RememberedLineType{ANI: string(k), LineType: e.LineType, Expires: e.LineTypeExpires})
		})
	})
}

// RememberLineTypes stores remembered line types, as a start would, in
// batches shared with requests, as Seed's are.
func (s *Store) RememberLineTypes(_ context.Context, sc callcontext.Scope, lts []storage.RememberedLineType) error {
	return s.inBatches(len(lts), func(tx *bolt.Tx, from, to int) error {
		b, err := writeScope(tx, sc)
		if err != nil {
			return err
		}
		for _, lt := range lts[from:to] {
			if err := updateANI(b, lt.ANI, func(e *aniEntry) { e.LineType, e.LineTypeExpires = lt.LineType, lt.Expires }); err != nil {
				return err
			}
		}
		return nil
	})
}
