package simulate

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"
)

func TestWorldDeterministic(t *testing.T) {
	p := Params{Seed: 5, People: 300, Calls: 1200, Days: 180, VoiceShare: 0.3}
	a, err := NewWorld(p)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := NewWorld(p)
	if len(a.calls) != 1200 {
		t.Errorf("NewWorld(%+v) has %d calls, want 1200", p, len(a.calls))
	}
	for i := range a.calls {
		x, y := a.calls[i], b.calls[i]
		if x.at != y.at || x.ani != y.ani || x.person.ID != y.person.ID || x.attest != y.attest || x.voice != y.voice {
			t.Fatalf("call %d differs between two worlds of one seed: %+v vs %+v", i, x, y)
		}
	}
	for i := 1; i < len(a.calls); i++ {
		if a.calls[i].at.Before(a.calls[i-1].at) {
			t.Fatalf("call %d is before call %d", i, i-1)
		}
	}
	seen := map[Segment]bool{}
	for _, per := range a.People {
		seen[per.Segment] = true
	}
	if len(seen) != len(Segments()) {
		t.Errorf("segments present: %v, want all of %v", seen, Segments())
	}
	if r1, r2 := NewRefs(1)(), NewRefs(1)(); r1 != r2 || len(r1) != len("cust_")+24 {
		t.Errorf("NewRefs(1)() = %q then %q, want the same cust_ and 24 hex digits", r1, r2)
	}
}

// Lookup answers a number's line type on the day asked, and 404 for
// numbers nobody has.
func TestLookup(t *testing.T) {
	w, err := NewWorld(Params{Seed: 2, People: 200, Calls: 600, Days: 180})
	if err != nil {
		t.Fatal(err)
	}
	var ported *Person
	for _, per := range w.People {
		if per.Segment == Ported {
			ported = per
			break
		}
	}
	at := func(day float64) time.Time { return w.Params.Start.Add(time.Duration(day * 24 * float64(time.Hour))) }
	for day, want := range map[float64]lineKind{ported.eras[0].from: ported.eras[0].kind, ported.eras[1].from + 1: ported.eras[1].kind} {
		rt := w.Lookup(func() time.Time { return at(day) })
		req, _ := http.NewRequest("GET", "https://lookups.twilio.com/v2/PhoneNumbers/"+ported.eras[0].number+"?Fields=line_type_intelligence", nil)
		resp, err := rt.RoundTrip(req)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("Lookup on day %.1f: %v, %v", day, resp, err)
		}
		var body struct {
			LTI struct {
				Type string `json:"type"`
			} `json:"line_type_intelligence"`
		}
		json.NewDecoder(resp.Body).Decode(&body)
		if body.LTI.Type != twilioType(want) {
			t.Errorf("Lookup on day %.1f = %q, want %q", day, body.LTI.Type, twilioType(want))
		}
	}
	req, _ := http.NewRequest("GET", "https://lookups.twilio.com/v2/PhoneNumbers/+19999999999", nil)
	if resp, _ := w.Lookup(time.Now).RoundTrip(req); resp.StatusCode != 404 {
		t.Errorf("Lookup of an unknown number: status %d, want 404", resp.StatusCode)
	}
}
