package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/stickycalls/stickycalls/context/callcontext"
	"github.com/stickycalls/stickycalls/context/storage"
)

// testClaimQuery checks that the reads a claim carries answer exactly what
// Resolve answers, and that only a granted claim reads.
func testClaimQuery(t *testing.T, s Store) {
	h := newHarness(t, s, nil)
	h.start(`{"call_id":"q1","identity_hints":{"ani":"+14155550101","external_ids":{"crm_id":"c1"}}}`)
	h.end(`{"call_id":"q1","customer_ref":"cust_q1","variables":{"name":"Q One"}}`)
	h.start(`{"call_id":"q2","identity_hints":{"ani":"+14155550101"}}`)
	h.end(`{"call_id":"q2","customer_ref":"cust_q2"}`) // a shared line
	h.at(time.Hour)
	now := t0.Add(time.Hour)
	q := storage.Query{ANI: "+14155550101", ExternalIDs: []storage.ExternalID{{Key: "crm_id", Value: "c1"}}, CustomerRef: "cust_q2"}
	want, err := s.Resolve(context.Background(), acmeTest, q, now)
	if err != nil {
		t.Fatal(err)
	}
	c := claimOf(storage.OpStart, "q3", "", printA, now)
	c.Query = &q
	res, err := s.Claim(context.Background(), acmeTest, c)
	if err != nil || res.Outcome != storage.Claimed {
		t.Fatalf("%s = %s, %v; want Claimed", describe(c), outcomeName(res.Outcome), err)
	}
	if diff := cmp.Diff(want, res.Found); diff != "" {
		t.Errorf("Claim's Found differs from Resolve's (-Resolve +Claim):\n%s", diff)
	}
	if len(res.Found.Customers) != 2 || res.Found.Owners["crm_id:c1"] != "cust_q1" {
		t.Errorf("Claim's Found = %d customers, owners %v; want both customers and crm_id:c1 → cust_q1", len(res.Found.Customers), res.Found.Owners)
	}
	res, err = s.Claim(context.Background(), acmeTest, c)
	if err != nil || res.Outcome != storage.InFlight || len(res.Found.Customers) != 0 {
		t.Errorf("twin %s = %s with %d customers, %v; want InFlight with none", describe(c), outcomeName(res.Outcome), len(res.Found.Customers), err)
	}
}

// testEraseRevealed checks that erasing a customer erases the calls whose
// answers showed it, though they ended up with another customer: a shared
// line's candidates.
func testEraseRevealed(t *testing.T, s Store) {
	h := newHarness(t, s, nil)
	h.start(`{"call_id":"r1","identity_hints":{"ani":"+14155550202"}}`)
	h.end(`{"call_id":"r1","customer_ref":"cust_ra","variables":{"name":"Ra"}}`)
	h.at(time.Minute)
	h.start(`{"call_id":"r2","identity_hints":{"ani":"+14155550202"}}`)
	h.end(`{"call_id":"r2","customer_ref":"cust_rb","variables":{"name":"Rb"}}`)
	h.at(2 * time.Minute)
	res, _ := h.start(`{"call_id":"r3","identity_hints":{"ani":"+14155550202"}}`)
	if len(res.Identity.Candidates) != 2 {
		t.Fatalf("start on the shared line: candidates %v, want both customers", res.Identity.Candidates)
	}
	if err := h.svc.Erase(context.Background(), acmeTest, "cust_ra"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Call(context.Background(), acmeTest, "r3"); err != callcontext.ErrNotFound {
		t.Errorf("Call(r3) after erasing a candidate it showed: err %v, want ErrNotFound", err)
	}
}

// testEraseMatched checks that erasing a customer erases a call whose
// answer matched it, though the caller then said it was someone else: a
// store may keep the matched customer apart from the other customers a
// call revealed.
func testEraseMatched(t *testing.T, s Store) {
	h := newHarness(t, s, nil)
	const line = `"identity_hints":{"ani":"+14155550505"}` // no telco: unknown line, confirm
	h.start(`{"call_id":"m1",` + line + `}`)
	h.end(`{"call_id":"m1","customer_ref":"cust_ma","variables":{"name":"Ma"}}`)
	h.at(time.Minute)
	if res, _ := h.start(`{"call_id":"m2",` + line + `}`); res.CustomerRef != "cust_ma" || res.Match == nil {
		t.Fatalf("second call from cust_ma's line: customer %q, match %v; want cust_ma's data", res.CustomerRef, res.Match)
	}
	h.answer("m2", callcontext.AnswerNo)
	if call, err := s.Call(context.Background(), acmeTest, "m2"); err != nil || call.CustomerRef == "cust_ma" {
		t.Fatalf("Call(m2) after the caller said no = %q, %v; want another customer", call.CustomerRef, err)
	}
	if err := h.svc.Erase(context.Background(), acmeTest, "cust_ma"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Call(context.Background(), acmeTest, "m2"); err != callcontext.ErrNotFound {
		t.Errorf("Call(m2) after erasing the customer its answer matched: err %v, want ErrNotFound", err)
	}
}

// testEraseKeepsOthers checks that erasing a customer keeps a call whose
// hints pointed at it but whose answer showed another customer only: a
// store may note the call under every customer the hints led to, and must
// then check what the call showed.
func testEraseKeepsOthers(t *testing.T, s Store) {
	h := newHarness(t, s, nil)
	h.start(`{"call_id":"k1","identity_hints":{"ani":"+14155550303"}}`)
	h.end(`{"call_id":"k1","customer_ref":"cust_kx","variables":{"name":"Kx"}}`)
	h.start(`{"call_id":"k2","identity_hints":{"ani":"+14155550404"}}`)
	h.end(`{"call_id":"k2","customer_ref":"cust_ky","variables":{"name":"Ky"}}`)
	h.at(time.Hour)
	res, _ := h.start(`{"call_id":"k3","identity_hints":{"ani":"+14155550303","customer_ref":"cust_ky"}}`)
	if res.CustomerRef != "cust_ky" || len(res.Identity.Candidates) != 0 {
		t.Fatalf("start naming cust_ky on cust_kx's line: customer %q, candidates %v; want cust_ky alone", res.CustomerRef, res.Identity.Candidates)
	}
	if err := h.svc.Erase(context.Background(), acmeTest, "cust_kx"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Call(context.Background(), acmeTest, "k3"); err != nil {
		t.Errorf("Call(k3) after erasing a customer its answer did not show: err %v, want the call", err)
	}
}
