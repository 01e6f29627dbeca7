package boltstore

import (
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // the child of inZone finds its zone on a machine without a zone database

	"github.com/google/go-cmp/cmp"
	bolt "go.etcd.io/bbolt"

	"github.com/stickycalls/stickycalls/context/backup"
	"github.com/stickycalls/stickycalls/context/callcontext"
	"github.com/stickycalls/stickycalls/context/storage"
)

// A file written when values were JSON is still read, and a value written
// now is MessagePack, which reads back the same.
func TestEarlierJSONValues(t *testing.T) {
	s := openStore(t)
	sc := callcontext.Scope{Tenant: "acme", Mode: callcontext.Prod}
	at := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	rec := storage.Record{Ref: "cust_json", Version: 3, Created: at,
		Variables: map[string]storage.Variable{"name": {Value: "Ada", Source: "agent", Expires: at.Add(720 * time.Hour)}}}
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
	var back storage.Record
	if err := decode(raw, &back); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(rec, back); diff != "" {
		t.Errorf("MessagePack round trip (-want +got):\n%s", diff)
	}
}

// A backup file (times in UTC) imported twice on a host whose zone is not
// UTC: the second import finds every customer unchanged, which it did not
// when stored times came back in the local zone.
func TestImportTwiceOutsideUTC(t *testing.T) {
	if !inZone(t, "America/New_York") {
		return
	}
	s := openStore(t)
	sc := callcontext.Scope{Tenant: "acme", Mode: callcontext.Prod}
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	rec := storage.Record{Ref: "cust_1", Version: 1, Created: now.Add(-time.Hour), FirstCall: now.Add(-time.Hour),
		LastCall: now.Add(-time.Hour), Expires: now.Add(720 * time.Hour), ANIs: map[string]storage.Link{"+14155550100": {}}}
	f := backup.File{Header: backup.Header{Version: backup.Version, Tenant: sc.Tenant, Mode: sc.Mode, At: now}, Customers: []storage.Record{rec}}
	if _, err := backup.Import(t.Context(), s, sc, f, now); err != nil {
		t.Fatal(err)
	}
	again, err := backup.Import(t.Context(), s, sc, f, now)
	if err != nil || again.Unchanged != 1 {
		t.Errorf("the same import again = %+v, %v; want 1 unchanged", again, err)
	}
}

// inZone runs the test again in a child process whose TZ is zone, and
// reports whether this is that child, which is to do the test. The zone is
// set from the child's start: setting time.Local in a running test races
// with the timers of every store a test before it opened.
func inZone(t *testing.T, zone string) bool {
	t.Helper()
	const env = "STICKYCALLS_TEST_ZONE"
	if os.Getenv(env) == zone {
		if time.Local.String() != zone {
			t.Fatalf("TZ=%s gave time.Local %v", zone, time.Local)
		}
		return true
	}
	cmd := exec.Command(os.Args[0], "-test.run=^"+t.Name()+"$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), "TZ="+zone, env+"="+zone)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: "+t.Name()) {
		t.Fatalf("%s in %s: %v\n%s", t.Name(), zone, err, out)
	}
	return false
}
