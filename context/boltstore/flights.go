package boltstore

import (
	"sync"
	"time"

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
// The claims take one lock, inside which each reads the store: a commit
// removes its flight only after it is on disk, so a claim either sees the
// commit's result or the flight, never neither.
type flights struct {
	mu      sync.Mutex
	calls   map[flightKey]*flight
	keys    map[string]flightKey // scope + idemKey → the claim that uses it
	pending map[string]int64     // scope + period → claims in flight (quotas count them)
	next    uint64               // a flight's id
	claimed int                  // claims since expired flights were last dropped
}

// flightKey names one op of one call.
type flightKey struct {
	scope, callID string
	op            storage.Op
}

// flight is a claim in flight.
type flight struct {
	id         uint64
	until      time.Time // its lease
	print      string
	key        string    // idemKey of its Idempotency-Key, or ""
	keyExpires time.Time // when that key is forgotten
	period     string    // counted in it when committed
}

func newFlights() *flights {
	return &flights{calls: map[flightKey]*flight{}, keys: map[string]flightKey{}, pending: map[string]int64{}}
}

func flightOf(sc callcontext.Scope, callID string, op storage.Op) flightKey {
	return flightKey{string(scopeName(sc)), callID, op}
}

// live returns k's flight if its lease runs past now.
func (f *flights) live(k flightKey, now time.Time) (*flight, bool) {
	fl, ok := f.calls[k]
	return fl, ok && fl.until.After(now)
}

// byKey returns the live flight that uses an Idempotency-Key of scope.
func (f *flights) byKey(scope, key string, now time.Time) (*flight, bool) {
	k, ok := f.keys[scope+"\x00"+key]
	if !ok {
		return nil, false
	}
	return f.live(k, now)
}

// add records a claim in flight, in place of any expired one of the same
// op and call. Called with mu held.
func (f *flights) add(k flightKey, c storage.Claim) {
	f.drop(k)
	f.next++
	fl := &flight{id: f.next, until: c.Now.Add(c.Lease), print: c.Fingerprint, period: c.Period}
	if c.Key != "" {
		fl.key, fl.keyExpires = idemKey(c.Op, c.Key), c.Now.Add(c.KeyTTL)
		f.keys[k.scope+"\x00"+fl.key] = k
	}
	f.calls[k] = fl
	f.pending[k.scope+"\x00"+c.Period]++
	if f.claimed++; f.claimed >= 1024 {
		f.dropExpired(c.Now)
	}
}

// dropExpired forgets the flights whose lease has run out: requests that
// died without releasing their claim (a quota then no longer counts
// them). Called with mu held.
func (f *flights) dropExpired(now time.Time) {
	f.claimed = 0
	for k, fl := range f.calls {
		if !fl.until.After(now) {
			f.drop(k)
		}
	}
}

// drop forgets k's flight. Called with mu held.
func (f *flights) drop(k flightKey) {
	fl, ok := f.calls[k]
	if !ok {
		return
	}
	delete(f.calls, k)
	if fl.key != "" && f.keys[k.scope+"\x00"+fl.key] == k {
		delete(f.keys, k.scope+"\x00"+fl.key)
	}
	p := k.scope + "\x00" + fl.period
	if f.pending[p]--; f.pending[p] <= 0 {
		delete(f.pending, p)
	}
}

// taken returns a copy of k's flight, for the commit that finishes it.
func (f *flights) taken(k flightKey) (flight, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fl, ok := f.calls[k]
	if !ok {
		return flight{}, false
	}
	return *fl, true
}

// done forgets the flight with id, once its commit is on disk (unless a
// later claim has taken its place).
func (f *flights) done(k flightKey, id uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if fl, ok := f.calls[k]; ok && fl.id == id {
		f.drop(k)
	}
}

// commitFlight writes what a finished claim would have written: the
// request counted and its Idempotency-Key. It may run more than once (see
// update), so it writes from fl alone.
func commitFlight(b scope, fl flight, callID string) error {
	u, err := usage(b, fl.period)
	if err != nil {
		return err
	}
	u.Requests++
	if err := put(b.usage, fl.period, u); err != nil {
		return err
	}
	if fl.key == "" {
		return nil
	}
	return put(b.idem, fl.key, idemRecord{Print: fl.print, CallID: callID, Expires: fl.keyExpires})
}
