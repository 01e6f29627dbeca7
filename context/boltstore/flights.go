package boltstore

import (
	"slices"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/stickycalls/stickycalls/context/callcontext"
	"github.com/stickycalls/stickycalls/context/storage"
)

// Claims in flight live in memory. bbolt locks its file to one process,
// so a lease need not be on disk for another process to see, and one
// that a crash loses belonged to a request the crash ended anyway. A
// claim is then a read transaction: no fsync of its own. What a claim
// wrote before (the request counted, its Idempotency-Key remembered) is
// written by the commit that finishes the request, in the same fsync, so
// a request costs one fsync instead of two. Leases stored by earlier
// versions are still honoured until they expire.
//
// The claims take one lock, inside which each reads the store. A commit
// notes on its flight the transaction that commits it, and a claim whose
// read sees that transaction ignores the flight; the flight is forgotten
// once the commit is on disk. So a claim sees a request's result or its
// flight, never neither and never both.
//
// A claim stays in flight until its request commits or releases it, also
// past its lease: the lease only decides whether a twin may go ahead. A
// request that never does either (it died) is forgotten after deadAfter.
type flights struct {
	mu      sync.Mutex
	calls   map[flightKey][]*flight // oldest first; the last holds the lease
	keys    map[string]*flight      // scope + idemKey → the last claim that used it
	claimed int                     // claims since dead flights were last forgotten
}

// deadAfter is how long past its lease a claim stays in flight without
// its request committing or releasing it.
const deadAfter = time.Hour

// flightKey names one op of one call.
type flightKey struct {
	scope, callID string
	op            storage.Op
}

// flight is a claim in flight.
type flight struct {
	at, until  time.Time // when it was claimed; its lease
	print      string
	key        string    // idemKey of its Idempotency-Key, or ""
	keyExpires time.Time // when that key is forgotten
	period     string    // counted in it when committed
	committing uint64    // the write transaction that commits it, or 0
}

func newFlights() *flights {
	return &flights{calls: map[flightKey][]*flight{}, keys: map[string]*flight{}}
}

func flightOf(sc callcontext.Scope, callID string, op storage.Op) flightKey {
	return flightKey{string(scopeName(sc)), callID, op}
}

// keyName names an Idempotency-Key (its idemKey) of a scope in keys.
func keyName(scope, key string) string { return scope + "\x00" + key }

// open reports whether fl is still to be committed as tx sees the file.
func (fl *flight) open(tx *bolt.Tx) bool {
	return fl.committing == 0 || fl.committing > uint64(tx.ID())
}

// live returns k's flight holding a lease past now, as tx sees the file.
// Called with mu held.
func (f *flights) live(k flightKey, now time.Time, tx *bolt.Tx) (*flight, bool) {
	list := f.calls[k]
	if len(list) == 0 {
		return nil, false
	}
	fl := list[len(list)-1]
	return fl, fl.until.After(now) && fl.open(tx)
}

// byKey returns the flight that uses an Idempotency-Key of scope until
// the key expires, as tx sees the file. Called with mu held.
func (f *flights) byKey(scope, key string, now time.Time, tx *bolt.Tx) (*flight, bool) {
	fl, ok := f.keys[keyName(scope, key)]
	return fl, ok && fl.keyExpires.After(now) && fl.open(tx)
}

// inPeriod counts the scope's open claims of period. Called with mu held.
func (f *flights) inPeriod(scope, period string, tx *bolt.Tx) int64 {
	var n int64
	for k, list := range f.calls {
		if k.scope != scope {
			continue
		}
		for _, fl := range list {
			if fl.period == period && fl.open(tx) {
				n++
			}
		}
	}
	return n
}

// add records a claim in flight. Called with mu held.
func (f *flights) add(k flightKey, c storage.Claim) {
	fl := &flight{at: c.Now, until: c.Now.Add(c.Lease), print: c.Fingerprint, period: c.Period}
	if c.Key != "" {
		fl.key, fl.keyExpires = idemKey(c.Op, c.Key), c.Now.Add(c.KeyTTL)
		f.keys[keyName(k.scope, fl.key)] = fl
	}
	f.calls[k] = append(f.calls[k], fl)
	if f.claimed++; f.claimed >= 1024 {
		f.claimed = 0
		f.forgetDead(c.Now)
	}
}

// remove forgets fl, a flight of k. Called with mu held.
func (f *flights) remove(k flightKey, fl *flight) {
	list := slices.DeleteFunc(f.calls[k], func(x *flight) bool { return x == fl })
	if len(list) == 0 {
		delete(f.calls, k)
	} else {
		f.calls[k] = list
	}
	if fl.key != "" && f.keys[keyName(k.scope, fl.key)] == fl {
		delete(f.keys, keyName(k.scope, fl.key))
	}
}

// forgetDead forgets the claims whose requests died: deadAfter past their
// lease. Called with mu held.
func (f *flights) forgetDead(now time.Time) {
	for k, list := range f.calls {
		for _, fl := range slices.Clone(list) { // remove changes list in place
			if fl.until.Add(deadAfter).Before(now) {
				f.remove(k, fl)
			}
		}
	}
}

// release forgets the claim c, if it is still in flight.
func (f *flights) release(sc callcontext.Scope, c storage.Claim) {
	k := flightOf(sc, c.CallID, c.Op)
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, fl := range f.calls[k] {
		if fl.print == c.Fingerprint && fl.at.Equal(c.Now) {
			f.remove(k, fl)
			return
		}
	}
}

// finishing returns the oldest flight of k claimed with print, which the
// commit of a request with that print finishes, or nil.
func (f *flights) finishing(k flightKey, print string) *flight {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, fl := range f.calls[k] {
		if fl.print == print && fl.committing == 0 {
			return fl
		}
	}
	return nil
}

// commit writes in tx what fl's claim would have written: the request
// counted and its Idempotency-Key. It notes tx on fl, so that claims that
// see tx no longer count fl. It may run more than once (see update).
func (f *flights) commit(b scope, tx *bolt.Tx, fl *flight, callID string) error {
	if fl == nil {
		return nil
	}
	f.mu.Lock()
	fl.committing = uint64(tx.ID())
	period, key, print, keyExpires := fl.period, fl.key, fl.print, fl.keyExpires
	f.mu.Unlock()
	u, err := usage(b, period)
	if err != nil {
		return err
	}
	u.Requests++
	if err := put(b.usage, period, u); err != nil {
		return err
	}
	if key == "" {
		return nil
	}
	return put(b.idem, key, idemRecord{Print: print, CallID: callID, Expires: keyExpires})
}

// committed forgets fl once its commit is on disk, or, when the commit
// failed, keeps it in flight.
func (f *flights) committed(k flightKey, fl *flight, err error) {
	if fl == nil {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if err != nil {
		fl.committing = 0
		return
	}
	f.remove(k, fl)
}
