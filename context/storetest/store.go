package storetest

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/stickycalls/stickycalls/context/callcontext"
	"github.com/stickycalls/stickycalls/context/identity"
	"github.com/stickycalls/stickycalls/context/keys"
	"github.com/stickycalls/stickycalls/context/storage"
)

const (
	ani1 = "+14155550101"
	ani2 = "+14155550102"
)

var (
	crm42 = storage.ExternalID{Key: "crm_id", Value: "42"}
	crm7  = storage.ExternalID{Key: "crm_id", Value: "7"}
)

// equateEmpty treats nil and empty maps and slices alike: a store may
// return either for "none".
var equateEmpty = cmpopts.EquateEmpty()

func linkAt(now time.Time) storage.Link {
	return storage.Link{LastCall: now, Expires: now.Add(90 * day)}
}

// record is a customer linked at now to ani (if any) and ids, with one
// variable, as an end would write it.
func record(ref string, version int64, now time.Time, ani string, ids ...storage.ExternalID) storage.Record {
	l := linkAt(now)
	r := storage.Record{
		Ref: ref, Version: version, Created: now, FirstCall: now, LastCall: now,
		Variables: map[string]storage.Variable{"name": {Value: "Name of " + ref, Source: "call_x", Expires: now.Add(30 * day)}},
		Calls:     []storage.CallRef{{ID: "call_x", At: now}},
		Expires:   l.Expires,
	}
	if ani != "" {
		r.ANIs = map[string]storage.Link{ani: l}
	}
	for _, id := range ids {
		if r.ExternalIDs == nil {
			r.ExternalIDs = map[string]storage.Link{}
		}
		r.ExternalIDs[id.String()] = l
	}
	return r
}

// commitOf is the end of callID that writes r with its links.
func commitOf(callID string, now time.Time, prev int64, r storage.Record) storage.EndCommit {
	e := storage.EndCommit{
		Call: storage.CallRecord{
			ID: callID, CustomerRef: r.Ref, Ended: now, EndPrint: printA,
			EndResponse: []byte(`{"call_id":"` + callID + `"}`), Expires: now.Add(7 * day),
		},
		Writes: []storage.Write{{Record: r, Prev: prev}},
		Period: callcontext.Period(now),
	}
	for ani, l := range r.ANIs {
		e.ANILinks = append(e.ANILinks, storage.ANILink{ANI: ani, Ref: r.Ref, Link: l})
	}
	for id, l := range r.ExternalIDs {
		key, value, _ := strings.Cut(id, ":")
		e.Owners = append(e.Owners, storage.Owner{ID: storage.ExternalID{Key: key, Value: value}, Ref: r.Ref, Expires: l.Expires})
	}
	return e
}

func mustCommit(t *testing.T, s Store, sc callcontext.Scope, e storage.EndCommit) {
	t.Helper()
	if err := s.CommitEnd(context.Background(), sc, e); err != nil {
		t.Fatalf("CommitEnd(%s) = %v, want nil", e.Call.ID, err)
	}
}

func mustResolve(t *testing.T, s Store, sc callcontext.Scope, q storage.Query, now time.Time) storage.Found {
	t.Helper()
	f, err := s.Resolve(context.Background(), sc, q, now)
	if err != nil {
		t.Fatalf("Resolve(%+v) error %v", q, err)
	}
	return f
}

func mustUsage(t *testing.T, s Store, sc callcontext.Scope, period string) storage.UsageCount {
	t.Helper()
	u, err := s.Usage(context.Background(), sc, period)
	if err != nil {
		t.Fatalf("Usage(%v, %s) error %v", sc, period, err)
	}
	return u
}

func storeTests() []storeTest {
	return []storeTest{
		{"Ping answers", func(t *testing.T, s Store) {
			if err := s.Ping(context.Background()); err != nil {
				t.Errorf("Ping() = %v, want nil", err)
			}
		}},
		{"SaveStart then Call returns it", testSaveStartCall},
		{"Call of an unknown call is ErrNotFound", testCallNotFound},
		{"CommitEnd keeps the start and adds the end", testCommitEndCall},
		{"CommitEnd links and owners are visible through Resolve", testCommitEndResolve},
		{"CommitEnd checks versions and writes nothing on ErrVersion", testCommitEndVersion},
		{"CommitEnd deletes a customer", testCommitEndDelete},
		{"Resolve does not report expired owners", testResolveExpiredOwner},
		{"SaveStart remembers the line type", testLineType},
		{"scopes are isolated", testScopes},
		{"Erase removes the customer, its index entries and call records", testErase},
		{"Usage counts requests and calls per period", testUsage},
		{"keys", testKeys},
		{"ConfirmCall records the answer on the call", testConfirmCall},
		{"a completion merges beside the start and end", testCompletion},
		{"an end refused for a changed customer does not hold up the completion", testRefusedEndThenCompletion},
		{"the Lookup cache answers until it expires", testLookupCache},
		{"a claim with a query reads what Resolve reads", testClaimQuery},
		{"Erase removes the calls whose answers showed the customer", testEraseRevealed},
		{"Erase removes the calls that matched the customer, though the caller said no", testEraseMatched},
		{"Erase keeps the calls whose answers did not show the customer", testEraseKeepsOthers},
		{"a call has one live media stream", testStreamLease},
		{"NoteCall keeps the agent's instruction and the dial status on the call", testNoteCall},
	}
}

func testConfirmCall(t *testing.T, s Store) {
	ctx := context.Background()
	c := storage.Confirmation{Confirmed: true, CustomerRef: "cust_1", Recommendation: identity.Reuse}
	if err := s.ConfirmCall(ctx, acmeTest, "call_1", c); !errors.Is(err, callcontext.ErrNotFound) {
		t.Errorf("ConfirmCall(call_1) before any start = %v, want ErrNotFound", err)
	}
	call := startCall("call_1", "cust_1", t0)
	call.Recommendation = identity.Confirm
	mustSaveStart(t, s, acmeTest, call, identity.Mobile, false)
	if err := s.ConfirmCall(ctx, acmeProd, "call_1", c); !errors.Is(err, callcontext.ErrNotFound) {
		t.Errorf("ConfirmCall(acme prod, call_1) = %v, want ErrNotFound (another scope)", err)
	}
	if err := s.ConfirmCall(ctx, acmeTest, "call_1", c); err != nil {
		t.Fatalf("ConfirmCall(call_1) = %v, want nil", err)
	}
	want := call
	want.Confirmed, want.Recommendation = true, identity.Reuse
	if diff := cmp.Diff(want, mustCall(t, s, acmeTest, "call_1"), equateEmpty); diff != "" {
		t.Errorf("Call(call_1) after ConfirmCall: diff (-want +got):\n%s", diff)
	}
	mustClaim(t, s, acmeTest, claimOf(storage.OpStart, "call_1", "", printA, t0.Add(time.Second)), storage.Replay)
}

func testCompletion(t *testing.T, s Store) {
	call := startCall("call_1", "cust_1", t0)
	mustSaveStart(t, s, acmeTest, call, identity.Mobile, false)
	completion := func(at time.Time) storage.EndCommit {
		c := call
		c.Completed, c.CompletionStatus, c.CompletedRef, c.CompletionCreated = at, "completed", "cust_1", true
		c.CompletedDuration = 342
		e := commitOf("call_1", at, 0, record("cust_1", 1, at, ani1))
		e.Call, e.Completion = c, true
		return e
	}
	// A completion first: the end can still come and replay afterwards.
	done := t0.Add(2 * time.Minute)
	mustCommit(t, s, acmeTest, completion(done))
	want := call
	want.Completed, want.CompletionStatus, want.CompletedRef, want.CompletionCreated = done, "completed", "cust_1", true
	want.CompletedDuration = 342
	if diff := cmp.Diff(want, mustCall(t, s, acmeTest, "call_1"), equateEmpty); diff != "" {
		t.Errorf("Call(call_1) after a completion: diff (-want +got):\n%s", diff)
	}
	end := claimOf(storage.OpEnd, "call_1", "", printA, t0.Add(5*time.Minute))
	mustClaim(t, s, acmeTest, end, storage.Claimed)
	e := commitOf("call_1", end.Now, 1, record("cust_1", 2, end.Now, ani1))
	e.Call = want
	e.Call.Ended, e.Call.EndPrint, e.Call.EndResponse = end.Now, printA, response(end)
	mustCommit(t, s, acmeTest, e)
	// A second completion (Twilio retries) read before the end leaves the
	// end alone: it is refused, the end having committed since its read.
	if err := s.CommitEnd(context.Background(), acmeTest, storage.EndCommit{Call: completion(done).Call, Completion: true, Period: callcontext.Period(done)}); !errors.Is(err, storage.ErrVersion) {
		t.Errorf("CommitEnd(a completion read before the end) = %v, want ErrVersion", err)
	}
	got := mustCall(t, s, acmeTest, "call_1")
	if !got.Ended.Equal(end.Now) || string(got.EndResponse) != string(response(end)) || !got.Completed.Equal(done) {
		t.Errorf("Call(call_1) after completion, end, completion = ended %v, end response %s, completed %v; want %v, %s, %v",
			got.Ended, got.EndResponse, got.Completed, end.Now, response(end), done)
	}
	mustClaim(t, s, acmeTest, at(end, end.Now.Add(time.Minute)), storage.Replay)
	mustClaim(t, s, acmeTest, claimOf(storage.OpStart, "call_1", "", printA, end.Now), storage.Replay)
}

func testRefusedEndThenCompletion(t *testing.T, s Store) {
	ctx := context.Background()
	call := startCall("call_1", "cust_1", t0)
	mustSaveStart(t, s, acmeTest, call, identity.Mobile, false)
	end := claimOf(storage.OpEnd, "call_1", "", printA, t0.Add(time.Minute))
	mustClaim(t, s, acmeTest, end, storage.Claimed)
	e := commitOf("call_1", end.Now, 4, record("cust_1", 5, end.Now, ani1)) // cust_1 is not at version 4
	ended := call
	ended.Ended, ended.EndPrint, ended.EndResponse = end.Now, printA, response(end)
	e.Call = ended
	if err := s.CommitEnd(ctx, acmeTest, e); !errors.Is(err, storage.ErrVersion) {
		t.Fatalf("CommitEnd(a customer at another version) = %v, want ErrVersion", err)
	}
	done := call
	done.Completed, done.CompletionStatus, done.CompletedDuration = end.Now, "completed", 60
	if err := s.CommitEnd(ctx, acmeTest, storage.EndCommit{Call: done, Completion: true, Period: callcontext.Period(end.Now)}); err != nil {
		t.Errorf("CommitEnd(the completion, after the refused end) = %v, want nil", err)
	}
	if got := mustCall(t, s, acmeTest, "call_1"); !got.Completed.Equal(end.Now) || !got.Ended.IsZero() {
		t.Errorf("Call(call_1) = completed %v, ended %v; want completed %v, not ended", got.Completed, got.Ended, end.Now)
	}
}

func testLookupCache(t *testing.T, s Store) {
	ctx := context.Background()
	check := func(what, e164 string, now time.Time, wantLT identity.LineType, wantOK bool) {
		t.Helper()
		lt, ok, err := s.CachedLineType(ctx, e164, now)
		if err != nil || ok != wantOK || (ok && lt != wantLT) {
			t.Errorf("%s: CachedLineType(%s, +%s) = %q, %v, %v; want %q, %v, nil", what, e164, now.Sub(t0), lt, ok, err, wantLT, wantOK)
		}
	}
	check("empty cache", ani1, t0, "", false)
	if err := s.CacheLineType(ctx, ani1, identity.Mobile, t0.Add(30*day)); err != nil {
		t.Fatalf("CacheLineType(%s) = %v", ani1, err)
	}
	check("cached", ani1, t0.Add(time.Hour), identity.Mobile, true)
	check("another number", ani2, t0.Add(time.Hour), "", false)
	check("a second before expiry", ani1, t0.Add(30*day-time.Second), identity.Mobile, true)
	check("at expiry", ani1, t0.Add(30*day), "", false)
	if err := s.CacheLineType(ctx, ani1, identity.Unknown, t0.Add(31*day)); err != nil {
		t.Fatalf("CacheLineType(%s, unknown) = %v", ani1, err)
	}
	check("a cached unknown (no such number)", ani1, t0.Add(30*day+time.Hour), identity.Unknown, true)
}

func startCall(id, ref string, now time.Time) storage.CallRecord {
	return storage.CallRecord{
		ID: id, Started: now, StartPrint: printA, StartResponse: []byte(`{"call_id":"` + id + `","customer_ref":"` + ref + `"}`),
		CustomerRef: ref, Recommendation: identity.Reuse, ANI: ani1, DNIS: "+18005550100",
		ExternalIDs: []storage.ExternalID{crm42}, Expires: now.Add(7 * day),
	}
}

func mustSaveStart(t *testing.T, s Store, sc callcontext.Scope, call storage.CallRecord, lt identity.LineType, billable bool) {
	t.Helper()
	c := claimOf(storage.OpStart, call.ID, "", call.StartPrint, call.Started)
	mustClaim(t, s, sc, c, storage.Claimed)
	st := storage.StartCommit{Call: call, LineType: lt, LinkTTL: 90 * day, Period: callcontext.Period(call.Started), Billable: billable}
	if err := s.SaveStart(context.Background(), sc, st); err != nil {
		t.Fatalf("SaveStart(%s) = %v, want nil", call.ID, err)
	}
}

func mustCall(t *testing.T, s Store, sc callcontext.Scope, id string) storage.CallRecord {
	t.Helper()
	got, err := s.Call(context.Background(), sc, id)
	if err != nil {
		t.Fatalf("Call(%s) error %v, want the record", id, err)
	}
	return got
}

func testSaveStartCall(t *testing.T, s Store) {
	want := startCall("call_1", "cust_1", t0)
	mustSaveStart(t, s, acmeTest, want, identity.Mobile, false)
	got := mustCall(t, s, acmeTest, "call_1")
	if diff := cmp.Diff(want, got, equateEmpty); diff != "" {
		t.Errorf("Call(call_1) after SaveStart: diff (-want +got):\n%s", diff)
	}
	// The start lease is cleared: a twin now replays instead of waiting.
	mustClaim(t, s, acmeTest, claimOf(storage.OpStart, "call_1", "", printA, t0.Add(time.Second)), storage.Replay)
}

func testCallNotFound(t *testing.T, s Store) {
	mustSaveStart(t, s, acmeTest, startCall("call_1", "cust_1", t0), identity.Mobile, false)
	for _, tc := range []struct {
		sc callcontext.Scope
		id string
	}{{acmeTest, "call_2"}, {acmeProd, "call_1"}, {zetaTest, "call_1"}} {
		if _, err := s.Call(context.Background(), tc.sc, tc.id); !errors.Is(err, callcontext.ErrNotFound) {
			t.Errorf("Call(%v, %s) error %v, want ErrNotFound", tc.sc, tc.id, err)
		}
	}
}

func testCommitEndCall(t *testing.T, s Store) {
	call := startCall("call_1", "cust_1", t0)
	mustSaveStart(t, s, acmeTest, call, identity.Mobile, false)
	now := t0.Add(3 * time.Minute)
	mustClaim(t, s, acmeTest, claimOf(storage.OpEnd, "call_1", "", printB, now), storage.Claimed)
	want := call
	want.Ended, want.EndPrint, want.EndResponse = now, printB, []byte(`{"ended":true}`)
	e := commitOf("call_1", now, 0, record("cust_1", 1, now, ani1, crm42))
	e.Call = want
	mustCommit(t, s, acmeTest, e)
	got := mustCall(t, s, acmeTest, "call_1")
	if diff := cmp.Diff(want, got, equateEmpty); diff != "" {
		t.Errorf("Call(call_1) after CommitEnd: diff (-want +got):\n%s", diff)
	}
	mustClaim(t, s, acmeTest, claimOf(storage.OpEnd, "call_1", "", printB, now.Add(time.Second)), storage.Replay)
	mustClaim(t, s, acmeTest, claimOf(storage.OpStart, "call_1", "", printA, now.Add(time.Second)), storage.Replay)
}

func testCommitEndResolve(t *testing.T, s Store) {
	r1 := record("cust_1", 1, t0, ani1, crm42)
	r2 := record("cust_2", 1, t0.Add(time.Hour), ani1, crm7)
	mustCommit(t, s, acmeTest, commitOf("call_1", t0, 0, r1))
	mustCommit(t, s, acmeTest, commitOf("call_2", t0.Add(time.Hour), 0, r2))
	now := t0.Add(2 * time.Hour)

	tests := []struct {
		name string
		q    storage.Query
		want storage.Found
	}{
		{"by ANI", storage.Query{ANI: ani1}, storage.Found{
			Customers: map[string]storage.Record{"cust_1": r1, "cust_2": r2},
			ANI:       storage.ANIEntry{Links: map[string]storage.Link{"cust_1": linkAt(t0), "cust_2": linkAt(t0.Add(time.Hour))}},
		}},
		{"by external id", storage.Query{ExternalIDs: []storage.ExternalID{crm42}}, storage.Found{
			Customers: map[string]storage.Record{"cust_1": r1},
			Owners:    map[string]string{"crm_id:42": "cust_1"},
		}},
		{"by two external ids", storage.Query{ExternalIDs: []storage.ExternalID{crm42, crm7}}, storage.Found{
			Customers: map[string]storage.Record{"cust_1": r1, "cust_2": r2},
			Owners:    map[string]string{"crm_id:42": "cust_1", "crm_id:7": "cust_2"},
		}},
		{"by customer_ref", storage.Query{CustomerRef: "cust_2"}, storage.Found{
			Customers: map[string]storage.Record{"cust_2": r2},
		}},
		{"by an unknown customer_ref", storage.Query{CustomerRef: "cust_9"}, storage.Found{}},
		{"by an unknown ANI", storage.Query{ANI: ani2}, storage.Found{}},
		{"by all hints", storage.Query{ANI: ani1, ExternalIDs: []storage.ExternalID{crm7}, CustomerRef: "cust_1"}, storage.Found{
			Customers: map[string]storage.Record{"cust_1": r1, "cust_2": r2},
			ANI:       storage.ANIEntry{Links: map[string]storage.Link{"cust_1": linkAt(t0), "cust_2": linkAt(t0.Add(time.Hour))}},
			Owners:    map[string]string{"crm_id:7": "cust_2"},
		}},
	}
	for _, tc := range tests {
		got := mustResolve(t, s, acmeTest, tc.q, now)
		if diff := cmp.Diff(tc.want, got, equateEmpty); diff != "" {
			t.Errorf("Resolve(%s %+v): diff (-want +got):\n%s", tc.name, tc.q, diff)
		}
	}
	got, err := s.Customers(context.Background(), acmeTest, []string{"cust_2", "cust_9", "cust_1"})
	if err != nil {
		t.Fatalf("Customers() error %v", err)
	}
	if diff := cmp.Diff(map[string]storage.Record{"cust_1": r1, "cust_2": r2}, got, equateEmpty); diff != "" {
		t.Errorf("Customers(cust_2, cust_9, cust_1): diff (-want +got):\n%s", diff)
	}
}

func testCommitEndVersion(t *testing.T, s Store) {
	ctx := context.Background()
	v1 := record("cust_1", 1, t0, ani1, crm42)
	mustCommit(t, s, acmeTest, commitOf("call_1", t0, 0, v1))
	before := mustUsage(t, s, acmeTest, callcontext.Period(t0))

	now := t0.Add(time.Hour)
	v2 := record("cust_1", 2, now, ani2, crm7)
	other := record("cust_2", 1, now, ani2)
	stale := []struct {
		name   string
		writes []storage.Write
	}{
		{"create over an existing customer", []storage.Write{{Record: v2, Prev: 0}}},
		{"update from a version never written", []storage.Write{{Record: v2, Prev: 5}}},
		{"update a missing customer", []storage.Write{{Record: other, Prev: 1}}},
		{"delete from a stale version", []storage.Write{{Record: v2, Prev: 2, Delete: true}}},
		{"a good write then a stale one", []storage.Write{{Record: other, Prev: 0}, {Record: v2, Prev: 0}}},
	}
	for _, tc := range stale {
		e := commitOf("call_2", now, 0, v2)
		e.Writes = tc.writes
		e.ANILinks = append(e.ANILinks, storage.ANILink{ANI: ani2, Ref: "cust_2", Link: linkAt(now)})
		e.Counted, e.Billable = true, true
		if err := s.CommitEnd(ctx, acmeTest, e); !errors.Is(err, storage.ErrVersion) {
			t.Fatalf("CommitEnd(%s) = %v, want ErrVersion", tc.name, err)
		}
		f := mustResolve(t, s, acmeTest, storage.Query{ANI: ani2, ExternalIDs: []storage.ExternalID{crm7}, CustomerRef: "cust_1"}, now)
		if diff := cmp.Diff(storage.Found{Customers: map[string]storage.Record{"cust_1": v1}}, f, equateEmpty); diff != "" {
			t.Errorf("after CommitEnd(%s) failed: Resolve diff (-want +got):\n%s", tc.name, diff)
		}
		switch got, err := s.Call(ctx, acmeTest, "call_2"); {
		case err == nil && len(got.EndResponse) > 0:
			t.Errorf("after CommitEnd(%s) failed: Call(call_2) holds an end response %s", tc.name, got.EndResponse)
		case err != nil && !errors.Is(err, callcontext.ErrNotFound):
			t.Errorf("after CommitEnd(%s) failed: Call(call_2) error %v, want ErrNotFound", tc.name, err)
		}
		if got := mustUsage(t, s, acmeTest, callcontext.Period(now)); got != before {
			t.Errorf("after CommitEnd(%s) failed: Usage() = %+v, want %+v", tc.name, got, before)
		}
	}
	e := commitOf("call_2", now, 1, v2)
	mustCommit(t, s, acmeTest, e)
	got := mustResolve(t, s, acmeTest, storage.Query{CustomerRef: "cust_1"}, now)
	if diff := cmp.Diff(v2, got.Customers["cust_1"], equateEmpty); diff != "" {
		t.Errorf("after CommitEnd(Prev 1): customer diff (-want +got):\n%s", diff)
	}
}

func testCommitEndDelete(t *testing.T, s Store) {
	v1 := record("cust_1", 1, t0, ani1, crm42)
	mustCommit(t, s, acmeTest, commitOf("call_1", t0, 0, v1))
	now := t0.Add(time.Hour)
	gone := storage.Record{Ref: "cust_1", Version: 2}
	e := commitOf("call_2", now, 1, gone)
	e.Writes[0].Delete = true
	mustCommit(t, s, acmeTest, e)
	f := mustResolve(t, s, acmeTest, storage.Query{ANI: ani1, ExternalIDs: []storage.ExternalID{crm42}, CustomerRef: "cust_1"}, now)
	if len(f.Customers) != 0 {
		t.Errorf("Resolve(cust_1) after a delete: Customers = %v, want none", f.Customers)
	}
	// A deleted customer can be created again from version 0.
	mustCommit(t, s, acmeTest, commitOf("call_3", now, 0, record("cust_1", 1, now, ani1)))
}

func testResolveExpiredOwner(t *testing.T, s Store) {
	mustCommit(t, s, acmeTest, commitOf("call_1", t0, 0, record("cust_1", 1, t0, ani1, crm42)))
	q := storage.Query{ExternalIDs: []storage.ExternalID{crm42}}
	if f := mustResolve(t, s, acmeTest, q, t0.Add(90*day-time.Second)); f.Owners["crm_id:42"] != "cust_1" {
		t.Errorf("Resolve(crm_id:42) a second before expiry: Owners = %v, want crm_id:42 → cust_1", f.Owners)
	}
	if f := mustResolve(t, s, acmeTest, q, t0.Add(90*day)); len(f.Owners) != 0 {
		t.Errorf("Resolve(crm_id:42) at expiry: Owners = %v, want none", f.Owners)
	}
}

func testLineType(t *testing.T, s Store) {
	steps := []struct {
		at   time.Duration
		call string
		lt   identity.LineType // saved; "" saves nothing
		want identity.LineType // remembered after
	}{
		{0, "call_1", identity.Mobile, identity.Mobile},
		{time.Hour, "call_2", identity.Unknown, identity.Mobile}, // unknown never overwrites
		{2 * time.Hour, "call_3", identity.Landline, identity.Landline},
	}
	for _, st := range steps {
		now := t0.Add(st.at)
		call := startCall(st.call, "cust_1", now)
		mustSaveStart(t, s, acmeTest, call, st.lt, true)
		f := mustResolve(t, s, acmeTest, storage.Query{ANI: ani1}, now.Add(time.Minute))
		if f.ANI.LineType != st.want {
			t.Errorf("after SaveStart(%s, line type %q): Resolve(%s).ANI.LineType = %q, want %q", st.call, st.lt, ani1, f.ANI.LineType, st.want)
		}
	}
	for _, sc := range []callcontext.Scope{acmeProd, zetaTest} {
		if f := mustResolve(t, s, sc, storage.Query{ANI: ani1}, t0.Add(3*time.Hour)); f.ANI.LineType != "" && f.ANI.LineType != identity.Unknown {
			t.Errorf("Resolve(%v, %s).ANI.LineType = %q, want none (another scope)", sc, ani1, f.ANI.LineType)
		}
	}
	// Remembered for LinkTTL after the start that set it.
	f := mustResolve(t, s, acmeTest, storage.Query{ANI: ani1}, t0.Add(2*time.Hour+90*day))
	if f.ANI.LineType != "" && f.ANI.LineType != identity.Unknown {
		t.Errorf("Resolve(%s) 90 days after the last start: ANI.LineType = %q, want forgotten", ani1, f.ANI.LineType)
	}
}

func testScopes(t *testing.T, s Store) {
	ctx := context.Background()
	r := record("cust_1", 1, t0, ani1, crm42)
	mustSaveStart(t, s, acmeTest, startCall("call_1", "cust_1", t0), identity.Mobile, true)
	mustCommit(t, s, acmeTest, commitOf("call_1", t0, 0, r))
	now := t0.Add(time.Minute)
	q := storage.Query{ANI: ani1, ExternalIDs: []storage.ExternalID{crm42}, CustomerRef: "cust_1"}

	for _, sc := range []callcontext.Scope{acmeProd, zetaTest} {
		f := mustResolve(t, s, sc, q, now)
		if len(f.Customers) != 0 || len(f.ANI.Links) != 0 || len(f.Owners) != 0 || (f.ANI.LineType != "" && f.ANI.LineType != identity.Unknown) {
			t.Errorf("Resolve(%v, %+v) = %+v, want nothing (another scope)", sc, q, f)
		}
		if got, err := s.Customers(ctx, sc, []string{"cust_1"}); err != nil || len(got) != 0 {
			t.Errorf("Customers(%v, cust_1) = %v, %v; want none, nil", sc, got, err)
		}
		if _, err := s.Call(ctx, sc, "call_1"); !errors.Is(err, callcontext.ErrNotFound) {
			t.Errorf("Call(%v, call_1) error %v, want ErrNotFound", sc, err)
		}
		if u := mustUsage(t, s, sc, callcontext.Period(t0)); u != (storage.UsageCount{}) {
			t.Errorf("Usage(%v) = %+v, want zero", sc, u)
		}
		if err := s.Erase(ctx, sc, "cust_1"); !errors.Is(err, callcontext.ErrNotFound) {
			t.Errorf("Erase(%v, cust_1) = %v, want ErrNotFound", sc, err)
		}
		mustClaim(t, s, sc, claimOf(storage.OpStart, "call_1", "", printA, now), storage.Claimed)
	}
	f := mustResolve(t, s, acmeTest, q, now)
	if diff := cmp.Diff(r, f.Customers["cust_1"], equateEmpty); diff != "" {
		t.Errorf("Resolve(acme test) after the other scopes worked: diff (-want +got):\n%s", diff)
	}
	if u := mustUsage(t, s, acmeTest, callcontext.Period(t0)); u.Requests != 1 {
		t.Errorf("Usage(acme test).Requests = %d after the other scopes claimed, want 1", u.Requests)
	}
}

func testErase(t *testing.T, s Store) {
	ctx := context.Background()
	// call_1: started and ended on cust_1 with an idempotency key.
	c1 := claimOf(storage.OpStart, "call_1", "idem-1", printA, t0)
	mustClaim(t, s, acmeTest, c1, storage.Claimed)
	call := startCall("call_1", "cust_1", t0)
	if err := s.SaveStart(ctx, acmeTest, storage.StartCommit{Call: call, LinkTTL: 90 * day, Period: c1.Period}); err != nil {
		t.Fatalf("SaveStart(call_1) = %v", err)
	}
	r1 := record("cust_1", 1, t0.Add(time.Minute), ani1, crm42)
	r1.Calls = []storage.CallRef{{ID: "call_1", At: t0.Add(time.Minute)}, {ID: "call_3", At: t0.Add(time.Minute)}}
	e := commitOf("call_1", t0.Add(time.Minute), 0, r1)
	e.Call = call
	e.Call.Ended, e.Call.EndPrint, e.Call.EndResponse = t0.Add(time.Minute), printA, []byte(`{"customer_ref":"cust_1"}`)
	mustCommit(t, s, acmeTest, e)
	// call_3: an end without a start, listed only by the customer's record.
	e3 := commitOf("call_3", t0.Add(time.Minute), 1, r1)
	e3.Writes = nil
	e3.Call.CustomerRef = ""
	mustCommit(t, s, acmeTest, e3)
	// call_4: only started, matched to cust_1; its response shows cust_1.
	mustSaveStart(t, s, acmeTest, startCall("call_4", "cust_1", t0.Add(2*time.Minute)), identity.Mobile, false)
	// cust_2 shares the line and must survive.
	r2 := record("cust_2", 1, t0.Add(time.Hour), ani1)
	r2.Calls = []storage.CallRef{{ID: "call_2", At: t0.Add(time.Hour)}}
	mustCommit(t, s, acmeTest, commitOf("call_2", t0.Add(time.Hour), 0, r2))

	if err := s.Erase(ctx, acmeTest, "cust_1"); err != nil {
		t.Fatalf("Erase(cust_1) = %v, want nil", err)
	}
	now := t0.Add(2 * time.Hour)
	f := mustResolve(t, s, acmeTest, storage.Query{ANI: ani1, ExternalIDs: []storage.ExternalID{crm42}, CustomerRef: "cust_1"}, now)
	if _, ok := f.Customers["cust_1"]; ok {
		t.Errorf("Resolve after Erase(cust_1): Customers holds cust_1")
	}
	if _, ok := f.ANI.Links["cust_1"]; ok {
		t.Errorf("Resolve after Erase(cust_1): ANI links hold cust_1: %v", f.ANI.Links)
	}
	if ref, ok := f.Owners["crm_id:42"]; ok {
		t.Errorf("Resolve after Erase(cust_1): Owners[crm_id:42] = %q, want none", ref)
	}
	if diff := cmp.Diff(r2, f.Customers["cust_2"], equateEmpty); diff != "" {
		t.Errorf("Resolve after Erase(cust_1): cust_2 diff (-want +got):\n%s", diff)
	}
	for _, id := range []string{"call_1", "call_3", "call_4"} {
		if got, err := s.Call(ctx, acmeTest, id); !errors.Is(err, callcontext.ErrNotFound) {
			t.Errorf("Call(%s) after Erase(cust_1) = %+v, %v; want ErrNotFound", id, got, err)
		}
	}
	mustCall(t, s, acmeTest, "call_2")
	if err := s.Erase(ctx, acmeTest, "cust_1"); !errors.Is(err, callcontext.ErrNotFound) {
		t.Errorf("second Erase(cust_1) = %v, want ErrNotFound", err)
	}
	if err := s.Erase(ctx, acmeTest, "cust_never"); !errors.Is(err, callcontext.ErrNotFound) {
		t.Errorf("Erase(cust_never) = %v, want ErrNotFound", err)
	}
	// The replay records are gone: the same key and body start afresh.
	mustClaim(t, s, acmeTest, at(c1, now), storage.Claimed)
}

func testUsage(t *testing.T, s Store) {
	ctx := context.Background()
	save := func(id string, billable bool) {
		c := claimOf(storage.OpStart, id, "", printA, t0)
		mustClaim(t, s, acmeTest, c, storage.Claimed)
		st := storage.StartCommit{Call: startCall(id, "cust_"+id, t0), LinkTTL: 90 * day, Period: c.Period, Billable: billable}
		if err := s.SaveStart(ctx, acmeTest, st); err != nil {
			t.Fatalf("SaveStart(%s) = %v", id, err)
		}
	}
	end := func(id string, counted, billable bool) {
		c := claimOf(storage.OpEnd, id, "", printA, t0.Add(time.Minute))
		mustClaim(t, s, acmeTest, c, storage.Claimed)
		e := commitOf(id, c.Now, 0, record("cust_"+id, 1, c.Now, ""))
		e.Counted, e.Billable = counted, billable
		mustCommit(t, s, acmeTest, e)
	}
	save("call_1", true)
	save("call_2", false)
	end("call_1", false, false) // had a start: not a second call
	end("call_3", true, true)   // standalone end that created its customer
	end("call_4", true, false)
	want := storage.UsageCount{Requests: 5, Billable: 2, NonBillable: 2}
	if got := mustUsage(t, s, acmeTest, callcontext.Period(t0)); got != want {
		t.Errorf("Usage(%s) = %+v, want %+v", callcontext.Period(t0), got, want)
	}
	next := callcontext.Period(t0.AddDate(0, 1, 0))
	if got := mustUsage(t, s, acmeTest, next); got != (storage.UsageCount{}) {
		t.Errorf("Usage(%s) = %+v, want zero", next, got)
	}
}

func testKeys(t *testing.T, s Store) {
	ctx := context.Background()
	k1 := keys.Key{ID: "key_aaaaaaaa", Tenant: "acme", Mode: callcontext.Test, Hash: "hash-1", Prefix: "sk_test_abcd", Created: t0}
	k2 := keys.Key{ID: "key_bbbbbbbb", Tenant: "zeta", Mode: callcontext.Prod, Hash: "hash-2", Prefix: "sk_prod_efgh", Created: t0.Add(time.Hour)}
	if got, err := s.Keys(ctx); err != nil || len(got) != 0 {
		t.Fatalf("Keys() on an empty store = %v, %v; want none, nil", got, err)
	}
	for _, k := range []keys.Key{k1, k2} {
		if err := s.PutKey(ctx, k); err != nil {
			t.Fatalf("PutKey(%s) = %v", k.ID, err)
		}
	}
	for _, k := range []keys.Key{k1, k2} {
		got, err := s.KeyByHash(ctx, k.Hash)
		if err != nil {
			t.Fatalf("KeyByHash(%s) error %v", k.Hash, err)
		}
		if diff := cmp.Diff(k, got); diff != "" {
			t.Errorf("KeyByHash(%s): diff (-want +got):\n%s", k.Hash, diff)
		}
	}
	if _, err := s.KeyByHash(ctx, "hash-unknown"); !errors.Is(err, callcontext.ErrNotFound) {
		t.Errorf("KeyByHash(hash-unknown) error %v, want ErrNotFound", err)
	}
	if err := s.RevokeKey(ctx, "key_missing", t0); !errors.Is(err, callcontext.ErrNotFound) {
		t.Errorf("RevokeKey(key_missing) = %v, want ErrNotFound", err)
	}
	revoked := t0.Add(2 * time.Hour)
	if err := s.RevokeKey(ctx, k1.ID, revoked); err != nil {
		t.Fatalf("RevokeKey(%s) = %v", k1.ID, err)
	}
	used := t0.Add(3 * time.Hour)
	if err := s.TouchKey(ctx, k2.ID, used); err != nil {
		t.Fatalf("TouchKey(%s) = %v", k2.ID, err)
	}
	k1.Revoked, k2.LastUsed = revoked, used
	if got, err := s.KeyByHash(ctx, k1.Hash); err != nil || !got.Revoked.Equal(revoked) {
		t.Errorf("KeyByHash(%s) after RevokeKey = revoked %v, %v; want %v, nil", k1.Hash, got.Revoked, err, revoked)
	}
	got, err := s.Keys(ctx)
	if err != nil {
		t.Fatalf("Keys() error %v", err)
	}
	slices.SortFunc(got, func(a, b keys.Key) int { return strings.Compare(a.ID, b.ID) })
	if diff := cmp.Diff([]keys.Key{k1, k2}, got); diff != "" {
		t.Errorf("Keys(): diff (-want +got):\n%s", diff)
	}
}

// A call has one live media stream: a second holder is refused while the
// first's lease is live, the holder renews it, and a released or expired
// lease can be taken. Scopes are separate.
func testStreamLease(t *testing.T, s Store) {
	ctx := context.Background()
	lease := func(what string, sc callcontext.Scope, holder string, now time.Time, want bool) {
		t.Helper()
		got, err := s.LeaseStream(ctx, sc, "CA1", holder, now, now.Add(time.Minute))
		if err != nil || got != want {
			t.Errorf("%s: LeaseStream(%s) = %v, %v; want %v", what, holder, got, err, want)
		}
	}
	lease("first", acmeTest, "relay-a", t0, true)
	lease("a second stream", acmeTest, "relay-b", t0.Add(time.Second), false)
	lease("the other mode", acmeProd, "relay-b", t0.Add(time.Second), true)
	lease("renewed by its holder", acmeTest, "relay-a", t0.Add(50*time.Second), true)
	lease("still held after the first minute", acmeTest, "relay-b", t0.Add(90*time.Second), false)
	if err := s.ReleaseStream(ctx, acmeTest, "CA1", "relay-b"); err != nil {
		t.Fatal(err)
	}
	lease("another holder's release changes nothing", acmeTest, "relay-b", t0.Add(91*time.Second), false)
	if err := s.ReleaseStream(ctx, acmeTest, "CA1", "relay-a"); err != nil {
		t.Fatal(err)
	}
	lease("after its release", acmeTest, "relay-b", t0.Add(92*time.Second), true)
	lease("after it expired", acmeTest, "relay-c", t0.Add(153*time.Second), true)
}

// What the voice webhooks learn after a start (an AI agent's instruction
// for the end of its stream, the dial's outcome) is kept on the call's
// record, beside its start and end, for whichever instance answers the
// next webhook; a note sets only its non-empty fields.
func testNoteCall(t *testing.T, s Store) {
	ctx := context.Background()
	if err := s.NoteCall(ctx, acmeTest, "call_1", storage.CallNote{AgentAction: "hangup"}); !errors.Is(err, callcontext.ErrNotFound) {
		t.Errorf("NoteCall(call_1) before any start = %v, want ErrNotFound", err)
	}
	call := startCall("call_1", "cust_1", t0)
	mustSaveStart(t, s, acmeTest, call, identity.Mobile, false)
	if err := s.NoteCall(ctx, acmeProd, "call_1", storage.CallNote{AgentAction: "hangup"}); !errors.Is(err, callcontext.ErrNotFound) {
		t.Errorf("NoteCall(acme prod, call_1) = %v, want ErrNotFound (another scope)", err)
	}
	for _, n := range []storage.CallNote{{AgentAction: "hangup"}, {AgentAction: "transfer:+14155550100"}, {DialStatus: "no-answer"}, {}} {
		if err := s.NoteCall(ctx, acmeTest, "call_1", n); err != nil {
			t.Fatalf("NoteCall(%+v) = %v", n, err)
		}
	}
	want := call
	want.AgentAction, want.DialStatus = "transfer:+14155550100", "no-answer"
	if diff := cmp.Diff(want, mustCall(t, s, acmeTest, "call_1"), equateEmpty); diff != "" {
		t.Errorf("Call(call_1) after NoteCall: diff (-want +got):\n%s", diff)
	}
	// An end that comes later keeps it.
	e := commitOf("call_1", t0.Add(time.Minute), 0, record("cust_1", 1, t0.Add(time.Minute), ani1))
	e.Call = want
	e.Call.Ended, e.Call.EndPrint, e.Call.EndResponse = t0.Add(time.Minute), printA, []byte(`{}`)
	mustCommit(t, s, acmeTest, e)
	if got := mustCall(t, s, acmeTest, "call_1"); got.AgentAction != want.AgentAction || got.DialStatus != want.DialStatus {
		t.Errorf("after an end: AgentAction %q DialStatus %q, want %q %q", got.AgentAction, got.DialStatus, want.AgentAction, want.DialStatus)
	}
}
