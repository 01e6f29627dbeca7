package boltstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	bolt "go.etcd.io/bbolt"

	"github.com/stickycalls/stickycalls/context/callapi"
	"github.com/stickycalls/stickycalls/context/callcontext"
	"github.com/stickycalls/stickycalls/context/identity"
	"github.com/stickycalls/stickycalls/context/storage"
	"github.com/stickycalls/stickycalls/context/storetest"
)

func openStore(t *testing.T) *Store {
	t.Helper()
	s, err := Open(filepath.Join(t.TempDir(), "stickycalls.db"), time.Second)
	if err != nil {
		t.Fatalf("Open() error %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Store { return openStore(t) })
}

func TestOpenLocked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "stickycalls.db")
	s, err := Open(path, time.Second)
	if err != nil {
		t.Fatalf("Open(%s) error %v", path, err)
	}
	if _, err := Open(path, 50*time.Millisecond); !errors.Is(err, ErrLocked) {
		t.Errorf("second Open(%s) while open: error %v, want ErrLocked", path, err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close() error %v", err)
	}
	again, err := Open(path, time.Second)
	if err != nil {
		t.Fatalf("Open(%s) after Close error %v, want nil", path, err)
	}
	again.Close()
}

func TestOpenNotADatabase(t *testing.T) {
	path := t.TempDir() // a directory cannot be opened as a file
	if s, err := Open(path, 50*time.Millisecond); err == nil || errors.Is(err, ErrLocked) {
		if s != nil {
			s.Close()
		}
		t.Errorf("Open(%s) on a directory: error %v, want an error that is not ErrLocked", path, err)
	}
}

var (
	t0        = time.Date(2026, 2, 7, 10, 30, 0, 0, time.UTC)
	day       = 24 * time.Hour
	testScope = callcontext.Scope{Tenant: "acme", Mode: callcontext.Test}
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

type greeter struct{}

func (greeter) Greet(res *callapi.StartResult) callapi.Greeting {
	return callapi.Greeting{Tier: res.Identity.Recommendation, Text: "Hello!"}
}

// keysOf lists the keys of one of the test scope's buckets.
func keysOf(t *testing.T, s *Store, sub []byte) []string {
	t.Helper()
	var keys []string
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketScopes).Bucket(scopeName(testScope))
		if b == nil {
			return nil
		}
		return b.Bucket(sub).ForEach(func(k, _ []byte) error {
			keys = append(keys, string(k))
			return nil
		})
	})
	if err != nil {
		t.Fatalf("read bucket %s: %v", sub, err)
	}
	slices.Sort(keys)
	return keys
}

// TestSweepInPages checks that a sweep reads and deletes a page at a time,
// so that a write commits between its pages (a sweep in one write
// transaction held every request of a large store for seconds), and that
// it keeps a customer a request refreshed after the sweep read it dead.
func TestSweepInPages(t *testing.T) {
	s := openStore(t)
	ctx := context.Background()
	n := 3*sweepPage + 1
	recs := make([]storage.Record, n)
	for i := range recs {
		link := storage.Link{LastCall: t0, Expires: t0.Add(day)}
		recs[i] = storage.Record{Ref: fmt.Sprintf("cust_%04d", i), Version: 1, Created: t0, FirstCall: t0, LastCall: t0,
			ANIs:        map[string]storage.Link{fmt.Sprintf("+1415555%04d", i): link},
			ExternalIDs: map[string]storage.Link{fmt.Sprintf("crm:%d", i): link},
			Expires:     t0.Add(day)}
	}
	if err := s.Seed(ctx, testScope, recs, t0); err != nil {
		t.Fatalf("Seed() error %v", err)
	}
	pages := 0
	s.sweptPage = func() {
		pages++
		err := s.update(func(tx *bolt.Tx) error { return tx.Bucket(bucketKeys).Put([]byte("written"), []byte("during a sweep")) })
		if err != nil {
			t.Errorf("a write during the sweep: %v", err)
		}
		if pages > 1 {
			return
		}
		err = s.update(func(tx *bolt.Tx) error { // as an end would: the first page read it dead
			b, _ := readScope(tx, testScope)
			var r storage.Record
			if _, err := get(b.customers, "cust_0000", &r); err != nil {
				return err
			}
			r.Expires = t0.Add(90 * day)
			return put(b.customers, r.Ref, r)
		})
		if err != nil {
			t.Errorf("refresh cust_0000: %v", err)
		}
	}
	if err := s.Sweep(t0.Add(2 * day)); err != nil {
		t.Fatalf("Sweep() error %v", err)
	}
	if got := keysOf(t, s, subCustomers); !slices.Equal(got, []string{"cust_0000"}) {
		t.Errorf("customers after Sweep = %q, want the refreshed one only", got)
	}
	for _, sub := range [][]byte{subANIs, subOwners} {
		if got := keysOf(t, s, sub); len(got) != 0 {
			t.Errorf("bucket %s after Sweep = %q, want nothing (every link expired)", sub, got)
		}
	}
	// The customers in pages of sweepPage, and at least one page of each
	// other bucket swept: streams, calls, idem, owners and ANIs.
	if want := 4 + 5; pages < want {
		t.Errorf("the sweep read %d pages, want at least %d", pages, want)
	}
}

// TestMapSize checks the first map's size: 8 GiB, twice a larger file,
// and at most a quarter of an address-space limit (a host with
// `ulimit -v` 6 GB could not open a store with an 8 GiB map).
func TestMapSize(t *testing.T) {
	for _, c := range []struct{ file, limit, want int64 }{
		{0, 0, 8 << 30},
		{6 << 30, 0, 12 << 30},
		{0, 6_000_000 << 10, 1_536_000_000},
		{1 << 30, 64 << 40, 8 << 30},
	} {
		if got := mapSize(c.file, c.limit); got != c.want {
			t.Errorf("mapSize(%d, %d) = %d, want %d", c.file, c.limit, got, c.want)
		}
	}
}

// TestMapHeadroom checks that the file is mapped with room to grow to
// 8 GiB before bbolt maps it anew (see initialMap).
func TestMapHeadroom(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc/self/maps")
	}
	s := openStore(t)
	var addr uintptr
	s.db.View(func(*bolt.Tx) error { addr = s.db.Info().Data; return nil })
	maps, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(maps)) {
		var lo, hi uintptr
		if _, err := fmt.Sscanf(line, "%x-%x", &lo, &hi); err == nil && lo == addr {
			if hi-lo < 8<<30 {
				t.Errorf("the file is mapped with %d MiB, want at least 8 GiB", (hi-lo)>>20)
			}
			return
		}
	}
	t.Fatalf("no mapping at %#x in /proc/self/maps", addr)
}

// TestSweepPastBadEntries checks that an entry the sweep cannot decode is
// left alone and reported by its bucket, and that the sweep goes on with
// the other entries, buckets and scopes.
func TestSweepPastBadEntries(t *testing.T) {
	s := openStore(t)
	link := storage.Link{LastCall: t0, Expires: t0.Add(day)}
	rec := storage.Record{Ref: "cust_1", Version: 1, Created: t0, FirstCall: t0, LastCall: t0,
		ANIs: map[string]storage.Link{"+14155550101": link}, ExternalIDs: map[string]storage.Link{"crm:1": link}, Expires: t0.Add(day)}
	if err := s.Seed(context.Background(), testScope, []storage.Record{rec}, t0); err != nil {
		t.Fatalf("Seed() error %v", err)
	}
	// A line type remembered alone, swept by the ANIs' own sweep, after the calls'.
	lt := storage.RememberedLineType{ANI: "+14155550102", LineType: identity.Mobile, Expires: t0.Add(day)}
	if err := s.RememberLineTypes(context.Background(), testScope, []storage.RememberedLineType{lt}); err != nil {
		t.Fatalf("RememberLineTypes() error %v", err)
	}
	err := s.update(func(tx *bolt.Tx) error {
		b, _ := writeScope(tx, testScope)
		return b.calls.Put([]byte("call_bad"), []byte{0xc1}) // never valid MessagePack
	})
	if err != nil {
		t.Fatal(err)
	}
	err = s.Sweep(t0.Add(2 * day))
	if err == nil || !strings.Contains(err.Error(), "sweep calls: 1 entries could not be decoded") || strings.Contains(err.Error(), "call_bad") {
		t.Errorf("Sweep() error %v, want the calls bucket's bad entry counted, without its key", err)
	}
	for sub, want := range map[string][]string{"customers": nil, "owners": nil, "anis": nil, "calls": {"call_bad"}} {
		if got := keysOf(t, s, []byte(sub)); !slices.Equal(got, want) {
			t.Errorf("bucket %s after Sweep = %q, want %q", sub, got, want)
		}
	}
}

func TestSweep(t *testing.T) {
	s := openStore(t)
	c := &clock{t: t0}
	svc := callcontext.NewService(s, callcontext.NoLookup{}, greeter{}, c.now, nil, callcontext.Durations{})
	ctx := context.Background()
	call := func(id, ani, crm, ref, key string, vars string) {
		t.Helper()
		start, err := callapi.ParseStart([]byte(`{"call_id":"` + id + `","identity_hints":{"ani":"` + ani + `","external_ids":{"crm":"` + crm + `"}},"telco":{"line_type":"mobile"}}`))
		if err != nil {
			t.Fatalf("ParseStart(%s) error %v", id, err)
		}
		if _, err := svc.Start(ctx, testScope, start, key); err != nil {
			t.Fatalf("Start(%s) error %v", id, err)
		}
		end, err := callapi.ParseEnd([]byte(`{"call_id":"` + id + `","customer_ref":"` + ref + `","variables":` + vars + `}`))
		if err != nil {
			t.Fatalf("ParseEnd(%s) error %v", id, err)
		}
		if _, err := svc.End(ctx, testScope, end, ""); err != nil {
			t.Fatalf("End(%s) error %v", id, err)
		}
	}
	call("call_old", "+14155550101", "1", "cust_old", "idem-old", `{}`)
	c.t = t0.Add(80 * day)
	call("call_new", "+14155550102", "2", "cust_new", "idem-new", `{"name":"New"}`)
	before, err := svc.Customer(ctx, testScope, "cust_new")
	if err != nil {
		t.Fatalf("Customer(cust_new) error %v", err)
	}
	c.t = t0.Add(90*day + 12*time.Hour)
	call("call_live", "+14155550103", "3", "cust_live", "idem-live", `{}`)

	// Everything of the first call has expired 91 days later; the second
	// call's record (7 days) and key (1 day) have too, but not its customer;
	// nothing of the third call has.
	c.t = t0.Add(91 * day)
	for e164, expires := range map[string]time.Time{"+14155550104": c.t.Add(-time.Second), "+14155550105": c.t.Add(day)} {
		if err := s.CacheLineType(ctx, e164, identity.Mobile, expires); err != nil {
			t.Fatalf("CacheLineType(%s) error %v", e164, err)
		}
	}
	if err := s.Sweep(c.t); err != nil {
		t.Fatalf("Sweep() error %v", err)
	}
	want := map[string][]string{
		"customers": {"cust_live", "cust_new"},
		"anis":      {"+14155550102", "+14155550103"},
		"owners":    {"crm:2", "crm:3"},
		"calls":     {"call_live"},
		"idem":      {idemKey(storage.OpStart, "idem-live")},
		"usage":     {"2026-02", "2026-04", "2026-05"},
	}
	for sub, keys := range want {
		if diff := cmp.Diff(keys, keysOf(t, s, []byte(sub))); diff != "" {
			t.Errorf("bucket %s after Sweep: diff (-want +got):\n%s", sub, diff)
		}
	}
	var cached []string
	s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketLookup).ForEach(func(k, _ []byte) error { cached = append(cached, string(k)); return nil })
	})
	if !slices.Equal(cached, []string{"+14155550105"}) {
		t.Errorf("cached line types after Sweep = %q, want the unexpired one only", cached)
	}
	after, err := svc.Customer(ctx, testScope, "cust_new")
	if err != nil {
		t.Fatalf("Customer(cust_new) after Sweep error %v", err)
	}
	if diff := cmp.Diff(before, after, cmp.FilterPath(func(p cmp.Path) bool {
		return p.Last().String() == ".TTLSeconds"
	}, cmp.Ignore())); diff != "" {
		t.Errorf("Customer(cust_new) changed by Sweep: diff (-before +after):\n%s", diff)
	}
	start, _ := callapi.ParseStart([]byte(`{"call_id":"call_3","identity_hints":{"ani":"+14155550102"}}`))
	reply, err := svc.Start(ctx, testScope, start, "")
	if err != nil {
		t.Fatalf("Start(call_3) after Sweep error %v", err)
	}
	var res callapi.StartResult
	if err := json.Unmarshal(reply.Body, &res); err != nil || res.CustomerRef != "cust_new" {
		t.Errorf("Start(call_3) after Sweep: customer_ref %q, %v; want cust_new", res.CustomerRef, err)
	}

	// Sweeping again, or an empty store, is harmless.
	if err := s.Sweep(c.t); err != nil {
		t.Errorf("second Sweep() error %v", err)
	}
	if err := openStore(t).Sweep(c.t); err != nil {
		t.Errorf("Sweep() of an empty store error %v", err)
	}
}

func TestRunSweepsUntilCancelled(t *testing.T) {
	s := openStore(t)
	e := storage.EndCommit{
		Call: storage.CallRecord{ID: "call_1", Ended: t0, EndResponse: []byte(`{}`), Expires: t0.Add(7 * day)},
		Writes: []storage.Write{{Record: storage.Record{
			Ref: "cust_1", Version: 1, Expires: t0.Add(day),
			Variables: map[string]storage.Variable{"name": {Value: "x", Expires: t0.Add(day)}},
		}}},
	}
	if err := s.CommitEnd(context.Background(), testScope, e); err != nil {
		t.Fatalf("CommitEnd() error %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		s.Run(ctx, time.Millisecond, func() time.Time { return t0.Add(8 * day) }, func(err error) { t.Errorf("sweep failed: %v", err) })
		close(done)
	}()
	deadline := time.After(10 * time.Second)
	for len(keysOf(t, s, subCustomers)) > 0 || len(keysOf(t, s, subCalls)) > 0 {
		select {
		case <-deadline:
			t.Fatal("Run() did not sweep the expired customer and call within 10s")
		case <-time.After(time.Millisecond):
		}
	}
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run() did not return after its context was cancelled")
	}
}

// TestClaimsInMemory checks that a claim writes nothing (a request costs
// one fsync, its commit's); that its commit writes what the claim used to
// (the request counted, its Idempotency-Key), also after its lease ran
// out and a twin went ahead; that a quota counts the claims in flight,
// once each, also while a commit is on disk but its flight not yet
// forgotten; and that a claim in flight does not outlive the process:
// reopened, the file takes the retry.
func TestClaimsInMemory(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db")
	s, err := Open(path, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	sc := callcontext.Scope{Tenant: "acme", Mode: callcontext.Test}
	now := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	claim := func(s *Store, id, key string) storage.Outcome {
		t.Helper()
		res, err := s.Claim(ctx, sc, storage.Claim{Op: storage.OpStart, CallID: id, Key: key, Fingerprint: "p", Now: now,
			Lease: time.Minute, Replay: time.Hour, KeyTTL: time.Hour, Retention: 24 * time.Hour, Period: callcontext.Period(now)})
		if err != nil {
			t.Fatal(err)
		}
		return res.Outcome
	}
	writes := func() int64 { st := s.db.Stats(); return st.TxStats.GetWrite() }
	claim(s, "c0", "") // c0's save makes the scope's buckets
	if err := s.SaveStart(ctx, sc, storage.StartCommit{Call: storage.CallRecord{ID: "c0", Started: now, StartPrint: "p", StartResponse: []byte(`{}`), Expires: now.Add(24 * time.Hour)}, Period: callcontext.Period(now)}); err != nil {
		t.Fatal(err)
	}
	before := writes()
	if got := claim(s, "c1", "k1"); got != storage.Claimed {
		t.Fatalf("claim of c1 = %v, want Claimed", got)
	}
	if w := writes() - before; w != 0 {
		t.Errorf("a claim wrote %d pages, want none", w)
	}
	if err := s.SaveStart(ctx, sc, storage.StartCommit{Call: storage.CallRecord{ID: "c1", Started: now, StartPrint: "p", StartResponse: []byte(`{"c":1}`), Expires: now.Add(24 * time.Hour)}, Period: callcontext.Period(now)}); err != nil {
		t.Fatal(err)
	}
	if u, err := s.Usage(ctx, sc, callcontext.Period(now)); err != nil || u.Requests != 2 {
		t.Errorf("usage after two claimed starts = %+v, %v; want 2 requests", u, err)
	}
	if got := claim(s, "c9", "k1"); got != storage.Replay {
		t.Errorf("claim with c1's key after its commit = %v, want Replay", got)
	}
	if got := claim(s, "c2", ""); got != storage.Claimed {
		t.Fatalf("claim of c2 = %v, want Claimed", got)
	}
	if got := claim(s, "c2", ""); got != storage.InFlight {
		t.Errorf("twin of c2 = %v, want InFlight", got)
	}
	quota := func(at time.Time) storage.Outcome {
		t.Helper()
		res, err := s.Claim(ctx, sc, storage.Claim{Op: storage.OpStart, CallID: "c3", Fingerprint: "p", Now: at, Quota: 3,
			Lease: time.Minute, Replay: time.Hour, KeyTTL: time.Hour, Retention: 24 * time.Hour, Period: callcontext.Period(now)})
		if err != nil {
			t.Fatal(err)
		}
		return res.Outcome
	}
	later := now.Add(2 * time.Minute) // c2's lease has run out
	if got := quota(now); got != storage.OverQuota {
		t.Errorf("claim with a quota of 3, 2 requests counted and c2 in flight = %v, want OverQuota", got)
	}
	if got := quota(later); got != storage.OverQuota {
		t.Errorf("the same once c2's lease ran out = %v, want OverQuota (its request may still finish)", got)
	}
	// A slow request whose lease ran out is still counted, and its key
	// kept, when it commits: a twin went ahead meanwhile.
	slow := storage.Claim{Op: storage.OpStart, CallID: "c2", Key: "k2", Fingerprint: "p", Now: later,
		Lease: time.Minute, Replay: time.Hour, KeyTTL: time.Hour, Retention: 24 * time.Hour, Period: callcontext.Period(now)}
	if res, err := s.Claim(ctx, sc, slow); err != nil || res.Outcome != storage.Claimed {
		t.Fatalf("twin of c2 after its lease = %v, %v; want Claimed", res.Outcome, err)
	}
	other := slow
	other.Fingerprint, other.Now = "q", later.Add(time.Second)
	if res, err := s.Claim(ctx, sc, other); err != nil || res.Outcome != storage.KeyReused {
		t.Errorf("key k2 in flight reused with another body = %v, %v; want KeyReused", res.Outcome, err)
	}
	for range 2 { // the first request, then its twin
		if err := s.SaveStart(ctx, sc, storage.StartCommit{Call: storage.CallRecord{ID: "c2", Started: now, StartPrint: "p", StartResponse: []byte(`{"c":2}`), Expires: now.Add(24 * time.Hour)}, Period: callcontext.Period(now)}); err != nil {
			t.Fatal(err)
		}
	}
	if u, err := s.Usage(ctx, sc, callcontext.Period(now)); err != nil || u.Requests != 4 {
		t.Errorf("usage after c2 and its twin committed = %+v, %v; want 4 requests", u, err)
	}
	if res, err := s.Claim(ctx, sc, other); err != nil || res.Outcome != storage.KeyReused {
		t.Errorf("key k2, committed, reused with another body = %v, %v; want KeyReused", res.Outcome, err)
	}
	// Between a commit reaching the file and its flight being forgotten,
	// a claim counts the request once.
	if got := claim(s, "c7", ""); got != storage.Claimed {
		t.Fatalf("claim of c7 = %v, want Claimed", got)
	}
	k := flightOf(sc, "c7", storage.OpStart)
	fl := s.flights.finishing(k, "p")
	if err := s.update(func(tx *bolt.Tx) error {
		b, err := writeScope(tx, sc)
		if err != nil {
			return err
		}
		return s.flights.commit(b, tx, fl, "c7")
	}); err != nil {
		t.Fatal(err)
	}
	res, err := s.Claim(ctx, sc, storage.Claim{Op: storage.OpStart, CallID: "c8", Fingerprint: "p", Now: later, Quota: 6,
		Lease: time.Minute, Replay: time.Hour, KeyTTL: time.Hour, Retention: 24 * time.Hour, Period: callcontext.Period(now)})
	if err != nil || res.Outcome != storage.Claimed {
		t.Errorf("claim with a quota of 6 while c7's commit (the 5th request) is on disk and still in flight = %v, %v; want Claimed", res.Outcome, err)
	}
	s.flights.committed(k, fl, nil)
	if got := claim(s, "c6", ""); got != storage.Claimed {
		t.Fatalf("claim of c6 = %v, want Claimed", got)
	}
	s.Close()
	if s, err = Open(path, time.Second); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got := claim(s, "c6", ""); got != storage.Claimed {
		t.Errorf("retry of c6 after a restart = %v, want Claimed (its first request died with the process)", got)
	}
}

// TestForgetDead checks that a dead claim is forgotten while a later
// claim of the same call, whose request still runs, stays in flight.
func TestForgetDead(t *testing.T) {
	f := newFlights()
	sc := callcontext.Scope{Tenant: "acme", Mode: callcontext.Test}
	now := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	k := flightOf(sc, "c1", storage.OpStart)
	claim := func(at time.Time) storage.Claim {
		return storage.Claim{Op: storage.OpStart, CallID: "c1", Fingerprint: "p", Now: at, Lease: time.Minute, Period: callcontext.Period(at)}
	}
	f.add(k, claim(now))                  // its request died
	f.add(k, claim(now.Add(2*deadAfter))) // a twin, still running
	f.forgetDead(now.Add(2*deadAfter + time.Second))
	if list := f.calls[k]; len(list) != 1 || !list[0].at.Equal(now.Add(2*deadAfter)) {
		t.Errorf("flights after forgetting the dead = %v, want the twin alone", list)
	}
}

// TestInBatches checks that an import's batches cover every item once, in
// order, the first of minBatch and none past maxBatch.
func TestInBatches(t *testing.T) {
	s := openStore(t)
	const n = 25_000
	var got [][2]int
	err := s.inBatches(n, func(tx *bolt.Tx, from, to int) error {
		got = append(got, [2]int{from, to})
		return tx.Bucket(bucketKeys).Put([]byte("batch"), []byte{byte(len(got))})
	})
	if err != nil {
		t.Fatalf("inBatches() error %v", err)
	}
	if len(got) == 0 || got[0] != [2]int{0, minBatch} || got[len(got)-1][1] != n {
		t.Fatalf("batches %v, want [0 %d] first and %d the last end", got, minBatch, n)
	}
	for i, b := range got {
		if i > 0 && b[0] != got[i-1][1] || b[1]-b[0] > maxBatch || b[1]-b[0] < minBatch && b[1] != n {
			t.Errorf("batch %d is %v after %v, want contiguous, %d to %d items", i, b, got[max(i-1, 0)], minBatch, maxBatch)
		}
	}
}
