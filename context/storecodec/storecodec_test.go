package storecodec_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stickycalls/stickycalls/context/storecodec"
)

type value struct {
	Name    string            `json:"name"`
	At      time.Time         `json:"at"`
	Zero    time.Time         `json:"zero,omitzero"`
	Nano    time.Time         `json:"nano"`
	Far     time.Time         `json:"far"`
	Skipped string            `json:"-"`
	Map     map[string]string `json:"map"`
}

// A value read back marshals to the JSON it was written from, its times in
// UTC (not in the process's zone, time.Local, whatever that is), and a
// value stored as JSON still reads.
func TestRoundTrip(t *testing.T) {
	in := value{Name: "Ada", At: time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC), Nano: time.Date(2026, 12, 1, 12, 0, 0, 123456789, time.UTC),
		Far: time.Date(2600, 1, 1, 0, 0, 0, 5, time.UTC), Skipped: "not stored", Map: map[string]string{"a": "b"}}
	raw, err := storecodec.Encode(in)
	if err != nil || raw[0] == '{' {
		t.Fatalf("Encode = %q, %v; want MessagePack", raw, err)
	}
	var out value
	if err := storecodec.Decode(raw, &out); err != nil {
		t.Fatal(err)
	}
	for _, at := range []time.Time{out.At, out.Nano, out.Far} {
		if at.Location() != time.UTC {
			t.Errorf("decoded time %v is in %v, want UTC", at, at.Location())
		}
	}
	in.Skipped = ""
	want, _ := json.Marshal(in)
	if got, _ := json.Marshal(out); string(got) != string(want) {
		t.Errorf("round trip = %s, want %s", got, want)
	}
	var old value
	if err := storecodec.Decode(want, &old); err != nil || !old.At.Equal(in.At) || old.Name != "Ada" {
		t.Errorf("a JSON value decodes to %+v, %v", old, err)
	}
}
