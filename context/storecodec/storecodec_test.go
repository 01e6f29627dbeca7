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

// A value read back marshals to the JSON it was written from, times in
// UTC whatever the process's zone (TZ is set for this test's process), and
// a value stored as JSON still reads.
func TestRoundTrip(t *testing.T) {
	loc, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Skip("no zone database:", err) // the UTC check needs another zone than UTC
	}
	time.Local = loc
	defer func() { time.Local = time.UTC }()
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
