package boltstore

import (
	"context"
	"maps"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/stickycalls/stickycalls/context/callcontext"
	"github.com/stickycalls/stickycalls/context/identity"
	"github.com/stickycalls/stickycalls/context/storage"
)

// aniEntry is an ANI's index entry: its links and remembered line type.
type aniEntry struct {
	LineType        identity.LineType       `json:"line_type,omitempty"`
	LineTypeExpires time.Time               `json:"line_type_expires,omitzero"`
	Links           map[string]storage.Link `json:"links,omitempty"`
}

// owner is an external id's index entry.
type owner struct {
	Ref     string    `json:"ref"`
	Expires time.Time `json:"expires"`
}

// maxLineCustomers bounds how many customers of one ANI a start reads.
const maxLineCustomers = 10

// Resolve implements callcontext.Store.
func (s *Store) Resolve(_ context.Context, sc callcontext.Scope, q storage.Query, now time.Time) (storage.Found, error) {
	f := storage.Found{Customers: map[string]storage.Record{}, Owners: map[string]string{}}
	err := s.db.View(func(tx *bolt.Tx) error {
		b, ok := readScope(tx, sc)
		if !ok {
			return nil
		}
		var err error
		f, err = resolve(b, q, now)
		return err
	})
	return f, err
}

// resolve reads what a query's hints point at inside a transaction.
func resolve(b scope, q storage.Query, now time.Time) (storage.Found, error) {
	f := storage.Found{Customers: map[string]storage.Record{}, Owners: map[string]string{}}
	refs := []string{q.CustomerRef}
	for _, id := range q.ExternalIDs {
		var o owner
		if _, err := get(b.owners, id.String(), &o); err != nil {
			return f, err
		}
		if o.Expires.After(now) {
			f.Owners[id.String()] = o.Ref
			refs = append(refs, o.Ref)
		}
	}
	if q.ANI != "" {
		e, err := liveANI(b, q.ANI, now)
		if err != nil {
			return f, err
		}
		f.ANI = storage.ANIEntry{LineType: e.LineType, Links: recent(e.Links, maxLineCustomers)}
		refs = append(refs, sortedRefs(f.ANI.Links)...)
	}
	return f, readCustomers(b, refs, f.Customers)
}

// liveANI reads an ANI's entry without what has expired.
func liveANI(b scope, ani string, now time.Time) (aniEntry, error) {
	var e aniEntry
	if _, err := get(b.anis, ani, &e); err != nil {
		return e, err
	}
	pruneANI(&e, now)
	return e, nil
}

// pruneANI drops an ANI entry's expired links and line type, and reports
// whether it dropped anything.
func pruneANI(e *aniEntry, now time.Time) bool {
	n := len(e.Links)
	maps.DeleteFunc(e.Links, func(_ string, l storage.Link) bool { return !l.Expires.After(now) })
	pruned := len(e.Links) < n
	if e.LineType != "" && !e.LineTypeExpires.After(now) {
		e.LineType, pruned = "", true
	}
	return pruned
}

// recent keeps the n links with the latest calls.
func recent(links map[string]storage.Link, n int) map[string]storage.Link {
	out := maps.Clone(links)
	for len(out) > n {
		var oldest string
		for ref, l := range out {
			if oldest == "" || l.LastCall.Before(out[oldest].LastCall) {
				oldest = ref
			}
		}
		delete(out, oldest)
	}
	return out
}

func sortedRefs(links map[string]storage.Link) []string {
	refs := make([]string, 0, len(links))
	for ref := range links {
		refs = append(refs, ref)
	}
	return refs
}

func readCustomers(b scope, refs []string, into map[string]storage.Record) error {
	for _, ref := range refs {
		if _, done := into[ref]; done || ref == "" {
			continue
		}
		var r storage.Record
		ok, err := get(b.customers, ref, &r)
		if err != nil {
			return err
		}
		if ok {
			into[ref] = r
		}
	}
	return nil
}

// Customers implements callcontext.Store.
func (s *Store) Customers(_ context.Context, sc callcontext.Scope, refs []string) (map[string]storage.Record, error) {
	out := map[string]storage.Record{}
	err := s.db.View(func(tx *bolt.Tx) error {
		b, ok := readScope(tx, sc)
		if !ok {
			return nil
		}
		return readCustomers(b, refs, out)
	})
	return out, err
}

// CommitEnd implements callcontext.Store.
func (s *Store) CommitEnd(_ context.Context, sc callcontext.Scope, e storage.EndCommit) error {
	k := flightOf(sc, e.Call.ID, storage.OpEnd)
	var fl *flight
	if !e.Completion {
		fl = s.flights.finishing(k, e.Call.EndPrint)
	}
	err := s.update(func(tx *bolt.Tx) error {
		b, err := writeScope(tx, sc)
		if err != nil {
			return err
		}
		var call storage.CallRecord
		if _, err := get(b.calls, e.Call.ID, &call); err != nil {
			return err
		}
		if overtaken(call, e) {
			return storage.ErrVersion
		}
		for _, w := range e.Writes {
			if err := write(b, w); err != nil {
				return err
			}
		}
		if err := index(b, e); err != nil {
			return err
		}
		if e.Completion {
			mergeCompletion(&call, e.Call)
		} else {
			mergeEnd(&call, e.Call)
		}
		if err := put(b.calls, call.ID, call); err != nil {
			return err
		}
		if err := tally(b, e.Tally); err != nil {
			return err
		}
		if err := s.flights.commit(b, tx, fl, e.Call.ID); err != nil {
			return err
		}
		if !e.Counted {
			return nil
		}
		return count(b, e.Period, e.Billable)
	})
	s.flights.committed(k, fl, err)
	return err
}

// overtaken reports whether the other half of a call's ending committed
// since e read the call: a completion for an end, an end for a completion.
// Each decides what to link from the call as read (an end moves the link a
// completion made; a completion links nothing after an end), so one that
// missed the other must read again, or the number stays linked to a
// customer the end did not name.
func overtaken(stored storage.CallRecord, e storage.EndCommit) bool {
	if e.Completion {
		return !stored.Ended.Equal(e.Call.Ended)
	}
	return !stored.Completed.Equal(e.Call.Completed)
}

// write applies one customer write if the record is still at w.Prev.
func write(b scope, w storage.Write) error {
	var cur storage.Record
	if _, err := get(b.customers, w.Record.Ref, &cur); err != nil {
		return err
	}
	if cur.Version != w.Prev {
		return storage.ErrVersion
	}
	if w.Delete {
		return deleteCustomer(b, w.Record.Ref, cur)
	}
	return put(b.customers, w.Record.Ref, w.Record)
}

func index(b scope, e storage.EndCommit) error {
	for _, l := range e.ANILinks {
		if err := updateANI(b, l.ANI, func(en *aniEntry) { en.Links[l.Ref] = l.Link }); err != nil {
			return err
		}
	}
	for _, l := range e.ANIUnlinks {
		if err := updateANI(b, l.ANI, func(en *aniEntry) { delete(en.Links, l.Ref) }); err != nil {
			return err
		}
	}
	for _, o := range e.Owners {
		if err := put(b.owners, o.ID.String(), owner{Ref: o.Ref, Expires: o.Expires}); err != nil {
			return err
		}
	}
	return nil
}

// updateANI changes an ANI's entry, deleting it when nothing is left.
func updateANI(b scope, ani string, change func(*aniEntry)) error {
	var e aniEntry
	if _, err := get(b.anis, ani, &e); err != nil {
		return err
	}
	if e.Links == nil {
		e.Links = map[string]storage.Link{}
	}
	change(&e)
	if len(e.Links) == 0 && e.LineType == "" {
		return b.anis.Delete([]byte(ani))
	}
	return put(b.anis, ani, e)
}

// deleteCustomer removes a customer and the index entries that point at it.
func deleteCustomer(b scope, ref string, r storage.Record) error {
	for ani := range r.ANIs {
		if err := updateANI(b, ani, func(e *aniEntry) { delete(e.Links, ref) }); err != nil {
			return err
		}
	}
	for id := range r.ExternalIDs {
		var o owner
		if _, err := get(b.owners, id, &o); err != nil {
			return err
		}
		if o.Ref == ref {
			if err := b.owners.Delete([]byte(id)); err != nil {
				return err
			}
		}
	}
	return b.customers.Delete([]byte(ref))
}

// Erase implements callcontext.Store.
func (s *Store) Erase(_ context.Context, sc callcontext.Scope, ref string) error {
	return s.update(func(tx *bolt.Tx) error {
		b, ok := readScope(tx, sc)
		if !ok {
			return callcontext.ErrNotFound
		}
		var r storage.Record
		found, err := get(b.customers, ref, &r)
		if err != nil {
			return err
		}
		if !found {
			return callcontext.ErrNotFound
		}
		if err := deleteCustomer(b, ref, r); err != nil {
			return err
		}
		return eraseCalls(b, ref, r.Calls)
	})
}

// eraseCalls deletes the call records (and so the replays) of a customer,
// and the idempotency keys that named them.
func eraseCalls(b scope, ref string, calls []storage.CallRef) error {
	gone := map[string]bool{}
	for _, c := range calls {
		gone[c.ID] = true
	}
	err := b.calls.ForEach(func(k, v []byte) error {
		var call storage.CallRecord
		if _, err := get(b.calls, string(k), &call); err != nil {
			return err
		}
		if call.CustomerRef == ref || slices.Contains(call.Revealed, ref) {
			gone[string(k)] = true
		}
		return nil
	})
	if err != nil {
		return err
	}
	var keys [][]byte
	err = b.idem.ForEach(func(k, v []byte) error {
		var rec idemRecord
		if _, err := get(b.idem, string(k), &rec); err != nil {
			return err
		}
		if gone[rec.CallID] {
			keys = append(keys, append([]byte(nil), k...))
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, k := range keys {
		if err := b.idem.Delete(k); err != nil {
			return err
		}
	}
	for id := range gone {
		if err := b.calls.Delete([]byte(id)); err != nil {
			return err
		}
	}
	return nil
}
