package boltstore

import (
	"context"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/stickycalls/stickycalls/context/callcontext"
	"github.com/stickycalls/stickycalls/context/storage"
)

// idemRecord remembers an Idempotency-Key: the request it was used with.
type idemRecord struct {
	Print   string    `json:"print"`
	CallID  string    `json:"call_id"`
	Expires time.Time `json:"expires"`
}

func idemKey(op storage.Op, key string) string { return string(op) + ":" + key }

// opState is one op's part of a call record.
type opState struct {
	done       bool
	print      string
	response   []byte
	lease      time.Time
	leasePrint string
}

func stateOf(c storage.CallRecord, op storage.Op) opState {
	if op == storage.OpStart {
		return opState{len(c.StartResponse) > 0, c.StartPrint, c.StartResponse, c.StartLease, c.StartLeasePrint}
	}
	return opState{len(c.EndResponse) > 0, c.EndPrint, c.EndResponse, c.EndLease, c.EndLeasePrint}
}

// Claim implements callcontext.Store in a read transaction: the claim
// it grants is kept in memory (see flights).
func (s *Store) Claim(_ context.Context, sc callcontext.Scope, c storage.Claim) (storage.ClaimResult, error) {
	s.flights.mu.Lock()
	tx, err := s.db.Begin(false) // after the lock: see flights
	if err != nil {
		s.flights.mu.Unlock()
		return storage.ClaimResult{}, err
	}
	defer tx.Rollback()
	b, stored := readScope(tx, sc)
	res, err := s.claim(tx, b, stored, sc, c)
	s.flights.mu.Unlock()
	if err != nil || res.Outcome != storage.Claimed || c.Query == nil {
		return res, err
	}
	if !stored {
		res.Found = storage.Found{Customers: map[string]storage.Record{}, Owners: map[string]string{}}
		return res, nil
	}
	res.Found, err = resolve(b, *c.Query, c.Now)
	return res, err
}

// claim decides c from the scope as tx read it (stored is false when the
// scope has nothing yet) and the claims in flight, and adds the claim it
// grants to them. Called with the flights' lock held.
func (s *Store) claim(tx *bolt.Tx, b scope, stored bool, sc callcontext.Scope, c storage.Claim) (storage.ClaimResult, error) {
	f := s.flights
	k := flightOf(sc, c.CallID, c.Op)
	if c.Key != "" {
		// A key in flight is used as a stored one is (claimByKey): by
		// another body, until it expires; by this one, while its lease
		// holds.
		if fl, ok := f.byKey(k.scope, idemKey(c.Op, c.Key), c.Now, tx); ok {
			if fl.print != c.Fingerprint {
				return storage.ClaimResult{Outcome: storage.KeyReused}, nil
			}
			if fl.until.After(c.Now) {
				return storage.ClaimResult{Outcome: storage.InFlight}, nil
			}
		} else if stored {
			res, decided, err := claimByKey(b, c)
			if decided || err != nil {
				return res, err
			}
		}
	}
	var call storage.CallRecord
	var u storage.UsageCount
	if stored {
		var err error
		if call, _, err = liveCall(b, c.CallID, c.Now); err != nil {
			return storage.ClaimResult{}, err
		}
		if u, err = usage(b, c.Period); err != nil {
			return storage.ClaimResult{}, err
		}
	}
	st := stateOf(call, c.Op)
	if fl, ok := f.live(k, c.Now, tx); ok {
		st.lease, st.leasePrint = fl.until, fl.print
	}
	switch {
	case st.done && st.print == c.Fingerprint && (c.Op == storage.OpEnd || call.Started.Add(c.Replay).After(c.Now)):
		return storage.ClaimResult{Outcome: storage.Replay, Response: st.response}, nil
	case st.done:
		return storage.ClaimResult{Outcome: storage.Conflict}, nil
	case st.lease.After(c.Now) && st.leasePrint == c.Fingerprint:
		return storage.ClaimResult{Outcome: storage.InFlight}, nil
	case st.lease.After(c.Now):
		return storage.ClaimResult{Outcome: storage.Conflict}, nil
	}
	if c.Quota > 0 && u.Requests+f.inPeriod(k.scope, c.Period, tx) >= c.Quota {
		return storage.ClaimResult{Outcome: storage.OverQuota}, nil
	}
	f.add(k, c)
	return storage.ClaimResult{Outcome: storage.Claimed, Call: call}, nil
}

// claimByKey applies the Idempotency-Key rules; decided is false when the
// key is new (or its request died) and the call_id rules apply.
func claimByKey(b scope, c storage.Claim) (storage.ClaimResult, bool, error) {
	var rec idemRecord
	ok, err := get(b.idem, idemKey(c.Op, c.Key), &rec)
	if err != nil || !ok || !rec.Expires.After(c.Now) {
		return storage.ClaimResult{}, false, err
	}
	if rec.Print != c.Fingerprint {
		return storage.ClaimResult{Outcome: storage.KeyReused}, true, nil
	}
	call, _, err := liveCall(b, rec.CallID, c.Now)
	if err != nil {
		return storage.ClaimResult{}, false, err
	}
	switch st := stateOf(call, c.Op); {
	case st.done:
		return storage.ClaimResult{Outcome: storage.Replay, Response: st.response}, true, nil
	case st.lease.After(c.Now):
		return storage.ClaimResult{Outcome: storage.InFlight}, true, nil
	}
	return storage.ClaimResult{}, false, nil
}

func liveCall(b scope, id string, now time.Time) (storage.CallRecord, bool, error) {
	var call storage.CallRecord
	ok, err := get(b.calls, id, &call)
	if err != nil || !ok || !call.Expires.After(now) {
		return storage.CallRecord{}, false, err
	}
	return call, true, nil
}

func usage(b scope, period string) (storage.UsageCount, error) {
	var u storage.UsageCount
	_, err := get(b.usage, period, &u)
	return u, err
}

// Release implements callcontext.Store: it forgets the claim, if it is
// still in flight. (A lease stored by an earlier version is left to
// expire.)
func (s *Store) Release(_ context.Context, sc callcontext.Scope, c storage.Claim) error {
	s.flights.release(sc, c)
	return nil
}

// SaveStart implements callcontext.Store; it finishes the start's claim
// (commitFlight).
func (s *Store) SaveStart(_ context.Context, sc callcontext.Scope, st storage.StartCommit) error {
	k := flightOf(sc, st.Call.ID, storage.OpStart)
	fl := s.flights.finishing(k, st.Call.StartPrint)
	err := s.update(func(tx *bolt.Tx) error {
		b, err := writeScope(tx, sc)
		if err != nil {
			return err
		}
		if err := s.flights.commit(b, tx, fl, st.Call.ID); err != nil {
			return err
		}
		var call storage.CallRecord
		if _, err := get(b.calls, st.Call.ID, &call); err != nil {
			return err
		}
		mergeStart(&call, st.Call)
		if err := put(b.calls, call.ID, call); err != nil {
			return err
		}
		if err := rememberLineType(b, st); err != nil {
			return err
		}
		if err := tally(b, st.Tally); err != nil {
			return err
		}
		return count(b, st.Period, st.Billable)
	})
	s.flights.committed(k, fl, err)
	return err
}

// mergeStart copies the start's fields, leaving any end and completion
// untouched.
func mergeStart(dst *storage.CallRecord, src storage.CallRecord) {
	old := *dst
	*dst = src
	dst.StartLease, dst.StartLeasePrint = time.Time{}, ""
	dst.Ended, dst.EndPrint, dst.EndResponse, dst.EndLease, dst.EndLeasePrint = old.Ended, old.EndPrint, old.EndResponse, old.EndLease, old.EndLeasePrint
	dst.Completed, dst.CompletionStatus, dst.CompletedRef, dst.CompletionCreated = old.Completed, old.CompletionStatus, old.CompletedRef, old.CompletionCreated
}

// mergeEnd copies the end's fields, leaving any start untouched.
func mergeEnd(dst *storage.CallRecord, src storage.CallRecord) {
	if dst.ID == "" {
		*dst = src
	}
	dst.Ended, dst.EndPrint, dst.EndResponse = src.Ended, src.EndPrint, src.EndResponse
	dst.EndLease, dst.EndLeasePrint = time.Time{}, ""
}

func rememberLineType(b scope, st storage.StartCommit) error {
	if st.Call.ANI == "" || st.LineType == "" || st.LineType == "unknown" {
		return nil
	}
	var e aniEntry
	if _, err := get(b.anis, st.Call.ANI, &e); err != nil {
		return err
	}
	e.LineType = st.LineType
	e.LineTypeExpires = st.Call.Started.Add(st.LinkTTL)
	return put(b.anis, st.Call.ANI, e)
}

// tally adds one to t's field in its hour.
func tally(b scope, t storage.Tally) error {
	if t.Field == "" {
		return nil
	}
	hour := storage.TallyHour(t.At)
	counts := map[string]int64{}
	if _, err := get(b.tallies, hour, &counts); err != nil {
		return err
	}
	counts[t.Field]++
	return put(b.tallies, hour, counts)
}

// Tallies implements callcontext.Store.
func (s *Store) Tallies(_ context.Context, sc callcontext.Scope, from, to time.Time) ([]storage.HourTally, error) {
	var out []storage.HourTally
	err := s.db.View(func(tx *bolt.Tx) error {
		b, ok := readScope(tx, sc)
		if !ok || b.tallies == nil {
			return nil
		}
		first, last := storage.TallyHour(from), storage.TallyHour(to)
		c := b.tallies.Cursor()
		for k, v := c.Seek([]byte(first)); k != nil && string(k) <= last; k, v = c.Next() {
			hour, err := time.Parse("2006010215", string(k))
			if err != nil {
				return fmt.Errorf("tally hour %q: %w", k, err)
			}
			h := storage.HourTally{Hour: hour, Counts: map[string]int64{}}
			if err := decode(v, &h.Counts); err != nil {
				return err
			}
			out = append(out, h)
		}
		return nil
	})
	return out, err
}

func count(b scope, period string, billable bool) error {
	u, err := usage(b, period)
	if err != nil {
		return err
	}
	if billable {
		u.Billable++
	} else {
		u.NonBillable++
	}
	return put(b.usage, period, u)
}

// Call implements callcontext.Store.
func (s *Store) Call(_ context.Context, sc callcontext.Scope, id string) (storage.CallRecord, error) {
	var call storage.CallRecord
	err := s.db.View(func(tx *bolt.Tx) error {
		b, ok := readScope(tx, sc)
		if !ok {
			return callcontext.ErrNotFound
		}
		found, err := get(b.calls, id, &call)
		if err == nil && !found {
			return callcontext.ErrNotFound
		}
		return err
	})
	return call, err
}

// Usage implements callcontext.Store.
func (s *Store) Usage(_ context.Context, sc callcontext.Scope, period string) (storage.UsageCount, error) {
	var u storage.UsageCount
	err := s.db.View(func(tx *bolt.Tx) error {
		b, ok := readScope(tx, sc)
		if !ok {
			return nil
		}
		var err error
		u, err = usage(b, period)
		return err
	})
	return u, err
}
