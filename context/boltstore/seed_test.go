package boltstore_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/stickycalls/stickycalls/context/boltstore"
	"github.com/stickycalls/stickycalls/context/callcontext"
)

var t0 = time.Date(2026, 2, 7, 10, 30, 0, 0, time.UTC)

type plainGreeter struct{}

func (plainGreeter) Greet(res *callcontext.StartResult) callcontext.Greeting {
	return callcontext.Greeting{Tier: res.Identity.Recommendation, Text: "Hello!"}
}

// A seeded customer is found by a start exactly as the same customer made
// by a start and an end: same recognition, intents and variables, and the
// same Resolve answer. Seeding it again fails.
func TestSeed(t *testing.T) {
	s, err := boltstore.Open(filepath.Join(t.TempDir(), "stickycalls.db"), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	now := t0
	calls := callcontext.NewService(s, callcontext.NoLookup{}, plainGreeter{}, func() time.Time { return now }, nil, callcontext.Durations{})
	made := callcontext.Scope{Tenant: "acme", Mode: callcontext.Prod}
	seeded := callcontext.Scope{Tenant: "seeded", Mode: callcontext.Prod}
	hints := `"identity_hints":{"ani":"+14155550123","external_ids":{"crm_id":"crm_1"}}`
	do(t, calls.Start, made, `{"call_id":"c1",`+hints+`}`)
	vars := make([]string, 10)
	for i := range vars {
		vars[i] = fmt.Sprintf("%q:\"value %d\"", fmt.Sprintf("v%d", i), i)
	}
	do(t, calls.End, made, `{"call_id":"c1","customer_ref":"cust_1","intent":"refund","intent_status":"open","variables":{`+strings.Join(vars, ",")+`}}`)
	recs, err := s.Customers(ctx, made, []string{"cust_1"})
	if err != nil || len(recs) != 1 {
		t.Fatalf("Customers(cust_1) = %v, %v; want one record", recs, err)
	}
	if err := s.Seed(ctx, seeded, []callcontext.Record{recs["cust_1"]}, now); err != nil {
		t.Fatalf("Seed() error %v", err)
	}

	now = now.Add(time.Hour)
	q := callcontext.Query{ANI: "+14155550123", ExternalIDs: []callcontext.ExternalID{{Key: "crm_id", Value: "crm_1"}}}
	want, err := s.Resolve(ctx, made, q, now)
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Resolve(ctx, seeded, q, now)
	if diff := cmp.Diff(want, got); err != nil || diff != "" {
		t.Errorf("Resolve of the seeded customer: error %v, diff (-made +seeded):\n%s", err, diff)
	}
	body := `{"call_id":"c2",` + hints + `,"telco":{"line_type":"mobile"}}`
	wantStart, gotStart := do(t, calls.Start, made, body), do(t, calls.Start, seeded, body)
	if gotStart != wantStart {
		t.Errorf("start of the seeded customer:\n%s\nwant as made by an end:\n%s", gotStart, wantStart)
	}
	if !strings.Contains(gotStart, `"customer_ref":"cust_1"`) || !strings.Contains(gotStart, `"recommendation":"reuse"`) || !strings.Contains(gotStart, `"attempt_count":1`) {
		t.Errorf("start of the seeded customer = %s, want cust_1 reused with its open intent", gotStart)
	}
	if err := s.Seed(ctx, seeded, []callcontext.Record{recs["cust_1"]}, now); err == nil {
		t.Error("seeding a stored customer again: nil error, want one")
	}
}

// TestSeedBatches seeds more customers than one transaction holds and finds
// the first and the last.
func TestSeedBatches(t *testing.T) {
	s, err := boltstore.Open(filepath.Join(t.TempDir(), "stickycalls.db"), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	sc := callcontext.Scope{Tenant: "acme", Mode: callcontext.Test}
	link := callcontext.Link{LastCall: t0, Expires: t0.Add(24 * time.Hour)}
	recs := make([]callcontext.Record, 10_001)
	for i := range recs {
		recs[i] = callcontext.Record{Ref: fmt.Sprintf("cust_%d", i), Version: 1, Created: t0, FirstCall: t0, LastCall: t0,
			ANIs: map[string]callcontext.Link{fmt.Sprintf("+141555%05d", i): link}, Expires: link.Expires}
	}
	if err := s.Seed(ctx, sc, recs, t0); err != nil {
		t.Fatalf("Seed() error %v", err)
	}
	for _, i := range []int{0, len(recs) - 1} {
		f, err := s.Resolve(ctx, sc, callcontext.Query{ANI: fmt.Sprintf("+141555%05d", i)}, t0)
		if ref := fmt.Sprintf("cust_%d", i); err != nil || f.Customers[ref].Ref != ref {
			t.Errorf("Resolve(ANI of customer %d) = %v, %v; want %s", i, f.Customers, err, ref)
		}
	}
	expired := callcontext.Record{Ref: "cust_old", Version: 1, Expires: t0}
	if err := s.Seed(ctx, sc, []callcontext.Record{expired}, t0); err == nil {
		t.Error("seeding a customer expired as of now: nil error, want one")
	}
}

// do runs a start or end of body and returns the response.
func do[R any](t *testing.T, op func(context.Context, callcontext.Scope, R, string) (callcontext.Reply, error), sc callcontext.Scope, body string) string {
	t.Helper()
	var req R
	var err error
	switch p := any(&req).(type) {
	case *callcontext.StartRequest:
		*p, err = callcontext.ParseStart([]byte(body))
	case *callcontext.EndRequest:
		*p, err = callcontext.ParseEnd([]byte(body))
	}
	if err != nil {
		t.Fatalf("parse %s: %v", body, err)
	}
	rep, err := op(context.Background(), sc, req, "")
	if err != nil {
		t.Fatalf("%s in %v: %v", body, sc, err)
	}
	return string(rep.Body)
}
