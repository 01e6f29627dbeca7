package callcontext

import (
	"testing"
	"time"

	"github.com/stickycalls/stickycalls/context/callapi"
	"github.com/stickycalls/stickycalls/context/storage"
)

// An end whose customer already holds it (the store failed after writing
// the customer, before the call record) is not counted again on retry.
func TestEndAppliesOnce(t *testing.T) {
	now := time.Date(2026, 2, 7, 10, 30, 0, 0, time.UTC)
	d := Durations{}.withDefaults()
	link := storage.Link{LastCall: now, Expires: now.Add(d.LinkTTL)}
	rec := storage.Record{Ref: "cust_1", Version: 3, ANIs: map[string]storage.Link{"+14155550100": link},
		Intents: []storage.Intent{{Name: "refund", Status: "open", Attempts: 1, Opened: now, LastCall: now}},
		Calls:   []storage.CallRef{{ID: "c1", At: now, Ended: true}}}
	rec.Expires = latestExpiry(&rec, d)
	for _, tt := range []struct {
		calls []storage.CallRef
		want  int
	}{
		{rec.Calls, 1}, // the retry of c1's end
		{[]storage.CallRef{{ID: "c1", At: now}}, 2},              // c1 only completed: its end counts
		{[]storage.CallRef{{ID: "c0", At: now, Ended: true}}, 2}, // another call's end
	} {
		r := rec
		r.Calls = tt.calls
		e := &ending{
			req: callapi.EndRequest{CallID: "c1", Intent: "refund", Status: "open", VariableTTL: 30 * 24 * time.Hour},
			c:   storage.Claim{Now: now.Add(time.Minute)}, ref: "cust_1",
			found: storage.Found{Customers: map[string]storage.Record{"cust_1": r}},
		}
		if _, err := e.save(d); err != nil {
			t.Fatal(err)
		}
		got := e.commit.Writes[0].Record.Intents[0].Attempts
		if got != tt.want {
			t.Errorf("with calls %+v: attempts = %d, want %d", tt.calls, got, tt.want)
		}
	}
}

// The retry of an end whose first attempt created the customer still
// reports it billable.
func TestEndRetryKeepsBillable(t *testing.T) {
	now := time.Date(2026, 2, 7, 10, 30, 0, 0, time.UTC)
	d := Durations{}.withDefaults()
	link := storage.Link{LastCall: now, Expires: now.Add(d.LinkTTL)}
	for _, created := range []bool{true, false} {
		rec := storage.Record{Ref: "cust_1", Version: 1, Created: now, FirstCall: now, LastCall: now,
			ANIs:  map[string]storage.Link{"+14155550100": link},
			Calls: []storage.CallRef{{ID: "c1", At: now, Ended: true, Created: created}}}
		rec.Expires = latestExpiry(&rec, d)
		e := &ending{req: callapi.EndRequest{CallID: "c1", VariableTTL: 30 * 24 * time.Hour},
			c: storage.Claim{Now: now.Add(time.Minute)}, ref: "cust_1", found: storage.Found{Customers: map[string]storage.Record{"cust_1": rec}}}
		res, err := e.save(d)
		if err != nil {
			t.Fatal(err)
		}
		if res.Billable != created {
			t.Errorf("retry of an end that created=%v: billable = %v, want %v", created, res.Billable, created)
		}
	}
}
