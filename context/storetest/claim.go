package storetest

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stickycalls/stickycalls/context/callcontext"
	"github.com/stickycalls/stickycalls/context/identity"
	"github.com/stickycalls/stickycalls/context/storage"
)

// Fingerprints of two different request bodies.
const (
	printA = "print-a"
	printB = "print-b"
)

// claimOf is a claim with the service's default durations.
func claimOf(op storage.Op, callID, key, print string, now time.Time) storage.Claim {
	return storage.Claim{
		Op: op, CallID: callID, Key: key, Fingerprint: print, Now: now,
		Lease: 30 * time.Second, Replay: day, KeyTTL: day, Retention: 7 * day,
		Period: callcontext.Period(now),
	}
}

func withQuota(c storage.Claim, quota int64) storage.Claim {
	c.Quota = quota
	return c
}

func at(c storage.Claim, now time.Time) storage.Claim {
	c.Now, c.Period = now, callcontext.Period(now)
	return c
}

// response is the body a finished claim stores.
func response(c storage.Claim) []byte {
	return []byte(fmt.Sprintf(`{"op":%q,"call_id":%q,"print":%q}`, c.Op, c.CallID, c.Fingerprint))
}

var outcomeNames = map[storage.Outcome]string{
	storage.Claimed: "Claimed", storage.Replay: "Replay", storage.Conflict: "Conflict",
	storage.KeyReused: "KeyReused", storage.InFlight: "InFlight", storage.OverQuota: "OverQuota",
}

func outcomeName(o storage.Outcome) string {
	if n, ok := outcomeNames[o]; ok {
		return n
	}
	return fmt.Sprintf("Outcome(%d)", int(o))
}

func describe(c storage.Claim) string {
	return fmt.Sprintf("Claim(%s %s key=%q print=%s at +%s quota=%d)", c.Op, c.CallID, c.Key, c.Fingerprint, c.Now.Sub(t0), c.Quota)
}

// claimAction is one step that brings a store to the state a case needs.
type claimAction struct {
	do string // "claim" (must be Claimed), "finish" (SaveStart or CommitEnd), "release"
	c  storage.Claim
}

func claimed(c storage.Claim) claimAction  { return claimAction{"claim", c} }
func finished(c storage.Claim) claimAction { return claimAction{"finish", c} }
func released(c storage.Claim) claimAction { return claimAction{"release", c} }

func (a claimAction) apply(t *testing.T, s Store, sc callcontext.Scope) {
	t.Helper()
	ctx := context.Background()
	switch a.do {
	case "claim":
		mustClaim(t, s, sc, a.c, storage.Claimed)
	case "finish":
		finish(t, s, sc, a.c)
	case "release":
		if err := s.Release(ctx, sc, a.c); err != nil {
			t.Fatalf("Release(%s) = %v, want nil", describe(a.c), err)
		}
	}
}

// finish completes a claimed start or end. The end's call record holds
// only the end's fields, as when the start finished after the end's claim
// read the call: the store keeps what the start saved.
func finish(t *testing.T, s Store, sc callcontext.Scope, c storage.Claim) {
	t.Helper()
	ctx := context.Background()
	if c.Op == storage.OpStart {
		call := storage.CallRecord{
			ID: c.CallID, Started: c.Now, StartPrint: c.Fingerprint, StartResponse: response(c),
			CustomerRef: "cust_" + c.CallID, Recommendation: identity.Ignore, Expires: c.Now.Add(c.Retention),
		}
		st := storage.StartCommit{Call: call, LineType: identity.Unknown, LinkTTL: 90 * day, Period: c.Period, Billable: true}
		if err := s.SaveStart(ctx, sc, st); err != nil {
			t.Fatalf("SaveStart(%s) = %v, want nil", c.CallID, err)
		}
		return
	}
	call := storage.CallRecord{
		ID: c.CallID, Ended: c.Now, EndPrint: c.Fingerprint, EndResponse: response(c), Expires: c.Now.Add(c.Retention),
	}
	if err := s.CommitEnd(ctx, sc, storage.EndCommit{Call: call, Period: c.Period}); err != nil {
		t.Fatalf("CommitEnd(%s) = %v, want nil", c.CallID, err)
	}
}

func mustClaim(t *testing.T, s Store, sc callcontext.Scope, c storage.Claim, want storage.Outcome) storage.ClaimResult {
	t.Helper()
	res, err := s.Claim(context.Background(), sc, c)
	if err != nil {
		t.Fatalf("%s: error %v, want outcome %s", describe(c), err, outcomeName(want))
	}
	if res.Outcome != want {
		t.Fatalf("%s = %s, want %s", describe(c), outcomeName(res.Outcome), outcomeName(want))
	}
	return res
}

func claimTests() []storeTest {
	start := claimOf(storage.OpStart, "call_1", "", printA, t0)
	end := claimOf(storage.OpEnd, "call_1", "", printA, t0)
	startB := claimOf(storage.OpStart, "call_1", "", printB, t0)
	endB := claimOf(storage.OpEnd, "call_1", "", printB, t0)
	keyed := claimOf(storage.OpStart, "call_1", "idem-1", printA, t0)
	keyedB := claimOf(storage.OpStart, "call_1", "idem-1", printB, t0)
	keyedEnd := claimOf(storage.OpEnd, "call_1", "idem-1", printA, t0)
	later := func(c storage.Claim, d time.Duration) storage.Claim { return at(c, t0.Add(d)) }
	q := func(c storage.Claim, id string) storage.Claim {
		c.CallID = id
		return withQuota(c, 2)
	}

	cases := []struct {
		name     string
		before   []claimAction
		claim    storage.Claim
		sc       callcontext.Scope // of the final claim; zero is acmeTest
		want     storage.Outcome
		wantBody []byte // on Replay
	}{
		{name: "a new start is claimed", claim: start, want: storage.Claimed},
		{name: "a new end is claimed", claim: end, want: storage.Claimed},
		{name: "a finished start replays the same body",
			before: []claimAction{claimed(start), finished(start)},
			claim:  later(start, time.Hour), want: storage.Replay, wantBody: response(start)},
		{name: "a finished end replays the same body",
			before: []claimAction{claimed(end), finished(end)},
			claim:  later(end, 2*time.Hour), want: storage.Replay, wantBody: response(end)},
		{name: "a finished start conflicts with another body",
			before: []claimAction{claimed(start), finished(start)},
			claim:  later(startB, time.Minute), want: storage.Conflict},
		{name: "a finished end conflicts with another body",
			before: []claimAction{claimed(end), finished(end)},
			claim:  later(endB, time.Minute), want: storage.Conflict},
		{name: "a twin is in flight while the lease is live",
			before: []claimAction{claimed(start)},
			claim:  later(start, 29*time.Second), want: storage.InFlight},
		{name: "an end twin is in flight while the lease is live",
			before: []claimAction{claimed(end)},
			claim:  later(end, time.Second), want: storage.InFlight},
		{name: "another body conflicts while the lease is live",
			before: []claimAction{claimed(start)},
			claim:  later(startB, time.Second), want: storage.Conflict},
		{name: "an expired lease lets the same body through",
			before: []claimAction{claimed(start)},
			claim:  later(start, 30*time.Second), want: storage.Claimed},
		{name: "an expired lease lets another body through",
			before: []claimAction{claimed(end)},
			claim:  later(endB, 31*time.Second), want: storage.Claimed},
		{name: "an end that finishes after the start keeps the start's replay",
			before: []claimAction{claimed(start), claimed(end), finished(start), finished(end)},
			claim:  later(start, time.Minute), want: storage.Replay, wantBody: response(start)},
		{name: "a start that finishes after the end keeps the end's replay",
			before: []claimAction{claimed(start), claimed(end), finished(end), finished(start)},
			claim:  later(end, time.Minute), want: storage.Replay, wantBody: response(end)},
		{name: "a finished start does not block the call's end",
			before: []claimAction{claimed(start), finished(start)},
			claim:  later(end, time.Minute), want: storage.Claimed},
		{name: "an idempotency key reused with another body",
			before: []claimAction{claimed(keyed), finished(keyed)},
			claim:  later(keyedB, time.Minute), want: storage.KeyReused},
		{name: "an idempotency key reused with another body while in flight",
			before: []claimAction{claimed(keyed)},
			claim:  later(keyedB, time.Second), want: storage.KeyReused},
		{name: "an idempotency key replays",
			before: []claimAction{claimed(keyed), finished(keyed)},
			claim:  later(keyed, time.Hour), want: storage.Replay, wantBody: response(keyed)},
		{name: "an idempotency key replays an end",
			before: []claimAction{claimed(keyedEnd), finished(keyedEnd)},
			claim:  later(keyedEnd, time.Hour), want: storage.Replay, wantBody: response(keyedEnd)},
		{name: "an idempotency key twin is in flight",
			before: []claimAction{claimed(keyed)},
			claim:  later(keyed, time.Second), want: storage.InFlight},
		{name: "an idempotency key in another scope is new",
			before: []claimAction{claimed(keyed), finished(keyed)},
			sc:     acmeProd, claim: later(keyedB, time.Minute), want: storage.Claimed},
		{name: "the quota is reached",
			before: []claimAction{claimed(q(start, "call_1")), claimed(q(start, "call_2"))},
			claim:  q(start, "call_3"), want: storage.OverQuota},
		{name: "a replay is answered when the quota is spent",
			before: []claimAction{claimed(q(start, "call_1")), finished(q(start, "call_1")), claimed(q(start, "call_2"))},
			claim:  later(q(start, "call_1"), time.Minute), want: storage.Replay, wantBody: response(q(start, "call_1"))},
		{name: "the quota is per period",
			before: []claimAction{claimed(q(start, "call_1")), claimed(q(start, "call_2"))},
			claim:  later(q(start, "call_3"), 30*day), want: storage.Claimed},
		{name: "release frees the lease",
			before: []claimAction{claimed(start), released(start)},
			claim:  startB, want: storage.Claimed},
		{name: "release frees the idempotency key",
			before: []claimAction{claimed(keyed), released(keyed)},
			claim:  keyedB, want: storage.Claimed},
		{name: "release frees the quota",
			before: []claimAction{claimed(q(start, "call_1")), claimed(q(start, "call_2")), released(q(start, "call_2"))},
			claim:  q(start, "call_3"), want: storage.Claimed},
		{name: "release of another body's claim changes nothing",
			before: []claimAction{claimed(start), released(startB)},
			claim:  later(start, time.Second), want: storage.InFlight},
		{name: "release after the work finished keeps the replay",
			before: []claimAction{claimed(end), finished(end), released(end)},
			claim:  later(end, time.Minute), want: storage.Replay, wantBody: response(end)},
	}
	var tests []storeTest
	for _, tc := range cases {
		tests = append(tests, storeTest{tc.name, func(t *testing.T, s Store) {
			for _, a := range tc.before {
				a.apply(t, s, acmeTest)
			}
			sc := tc.sc
			if sc == (callcontext.Scope{}) {
				sc = acmeTest
			}
			res := mustClaim(t, s, sc, tc.claim, tc.want)
			if tc.want == storage.Replay && !bytes.Equal(res.Response, tc.wantBody) {
				t.Errorf("%s: response %s, want %s", describe(tc.claim), res.Response, tc.wantBody)
			}
		}})
	}
	return append(tests,
		storeTest{"claimed returns the call as it stood", testClaimReturnsCall},
		storeTest{"claims count requests once", testClaimUsage},
	)
}

// testClaimReturnsCall checks that a Claimed result carries the call record
// a start left (what a later end needs), and a zero record for a new call.
func testClaimReturnsCall(t *testing.T, s Store) {
	start := claimOf(storage.OpStart, "call_1", "", printA, t0)
	res := mustClaim(t, s, acmeTest, start, storage.Claimed)
	if !res.Call.Started.IsZero() || len(res.Call.StartResponse) != 0 || res.Call.CustomerRef != "" {
		t.Errorf("%s: Call = %+v, want a zero record", describe(start), res.Call)
	}
	finish(t, s, acmeTest, start)
	end := claimOf(storage.OpEnd, "call_1", "", printA, t0.Add(time.Minute))
	res = mustClaim(t, s, acmeTest, end, storage.Claimed)
	if !res.Call.Started.Equal(t0) || !bytes.Equal(res.Call.StartResponse, response(start)) || res.Call.CustomerRef != "cust_call_1" {
		t.Errorf("%s: Call = started %v, ref %q, response %s; want started %v, ref cust_call_1, response %s",
			describe(end), res.Call.Started, res.Call.CustomerRef, res.Call.StartResponse, t0, response(start))
	}
}

// testClaimUsage checks that only Claimed counts a request, and that
// Release gives it back.
func testClaimUsage(t *testing.T, s Store) {
	ctx := context.Background()
	start := claimOf(storage.OpStart, "call_1", "", printA, t0)
	mustClaim(t, s, acmeTest, start, storage.Claimed)
	mustClaim(t, s, acmeTest, at(start, t0.Add(time.Second)), storage.InFlight)
	finish(t, s, acmeTest, start)
	mustClaim(t, s, acmeTest, at(start, t0.Add(time.Minute)), storage.Replay)
	startB := claimOf(storage.OpStart, "call_1", "", printB, t0.Add(time.Minute))
	mustClaim(t, s, acmeTest, startB, storage.Conflict)
	other := claimOf(storage.OpStart, "call_2", "", printA, t0.Add(time.Minute))
	mustClaim(t, s, acmeTest, other, storage.Claimed)
	if err := s.Release(ctx, acmeTest, other); err != nil {
		t.Fatalf("Release(%s) = %v", describe(other), err)
	}
	u, err := s.Usage(ctx, acmeTest, callcontext.Period(t0))
	if err != nil {
		t.Fatalf("Usage() error %v", err)
	}
	if u.Requests != 1 {
		t.Errorf("after claimed, in flight, replay, conflict, claimed+released: Usage().Requests = %d, want 1", u.Requests)
	}
}
