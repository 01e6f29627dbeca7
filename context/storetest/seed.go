package storetest

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/stickycalls/stickycalls/context/callapi"
	"github.com/stickycalls/stickycalls/context/callcontext"
	"github.com/stickycalls/stickycalls/context/storage"
)

// Seeder is a store with a bulk loader for benchmarks.
type Seeder interface {
	callcontext.Store
	Seed(ctx context.Context, sc callcontext.Scope, recs []storage.Record, now time.Time) error
}

// RunSeed checks a store's bulk loader: a seeded customer is found by a start exactly as the same customer made
// by a start and an end: same recognition, intents and variables, and the
// same Resolve answer. Seeding it again fails.
func RunSeed(t *testing.T, s Seeder) {
	ctx := context.Background()
	now := t0
	calls := callcontext.NewService(s, callcontext.NoLookup{}, greeter{}, func() time.Time { return now }, nil, callcontext.Durations{})
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
	if err := s.Seed(ctx, seeded, []storage.Record{recs["cust_1"]}, now); err != nil {
		t.Fatalf("Seed() error %v", err)
	}

	now = now.Add(time.Hour)
	q := storage.Query{ANI: "+14155550123", ExternalIDs: []storage.ExternalID{{Key: "crm_id", Value: "crm_1"}}}
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
	if err := s.Seed(ctx, seeded, []storage.Record{recs["cust_1"]}, now); err == nil {
		t.Error("seeding a stored customer again: nil error, want one")
	}
}

// do runs a start or end of body and returns the response.
func do[R any, T callapi.StartResult | callapi.EndResult](t *testing.T, op func(context.Context, callcontext.Scope, R, string) (callcontext.Reply[T], error), sc callcontext.Scope, body string) string {
	t.Helper()
	var req R
	var err error
	switch p := any(&req).(type) {
	case *callapi.StartRequest:
		*p, err = callapi.ParseStart([]byte(body))
	case *callapi.EndRequest:
		*p, err = callapi.ParseEnd([]byte(body))
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
