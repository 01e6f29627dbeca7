package boltstore

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	bolt "go.etcd.io/bbolt"

	"github.com/stickycalls/stickycalls/context/callcontext"
)

// A file written when values were JSON is still read, and a value written
// now is MessagePack, which reads back the same.
func TestEarlierJSONValues(t *testing.T) {
	s := openStore(t)
	sc := callcontext.Scope{Tenant: "acme", Mode: callcontext.Prod}
	at := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	rec := callcontext.Record{Ref: "cust_json", Version: 3, Created: at,
		Variables: map[string]callcontext.Variable{"name": {Value: "Ada", Source: "agent", Expires: at.Add(720 * time.Hour)}}}
	old, _ := json.Marshal(rec)
	err := s.db.Update(func(tx *bolt.Tx) error {
		b, err := writeScope(tx, sc)
		if err != nil {
			return err
		}
		return b.customers.Put([]byte(rec.Ref), old)
	})
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Customers(t.Context(), sc, []string{rec.Ref})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(rec, got[rec.Ref]); diff != "" {
		t.Errorf("a record stored as JSON read back (-want +got):\n%s", diff)
	}
	raw, err := encode(rec)
	if err != nil || raw[0] == '{' || len(raw) >= len(old) {
		t.Fatalf("encode = %d bytes starting %q, %v; want MessagePack, smaller than JSON's %d", len(raw), raw[:1], err, len(old))
	}
	var back callcontext.Record
	if err := decode(raw, &back); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(rec, back); diff != "" {
		t.Errorf("MessagePack round trip (-want +got):\n%s", diff)
	}
}
