package storetest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/stickycalls/stickycalls/context/backup"
	"github.com/stickycalls/stickycalls/context/callcontext"
)

func backupTests() []storeTest {
	return []storeTest{
		{"an export imported into another scope answers the same", testBackupRoundTrip},
		{"a bad file is refused whole, with every bad line", testBackupBadFile},
	}
}

// portable is a store that can be exported and imported.
type portable interface {
	backup.Source
	backup.Sink
}

// Customers made through the service (links, external ids, intents open
// and closed, variables, a confirmation and a dispute), exported and
// imported into another scope, read the same there, and a next call is
// recognized the same; importing the file again changes nothing.
func testBackupRoundTrip(t *testing.T, s Store) {
	p, ok := s.(portable)
	if !ok {
		t.Fatalf("%T cannot be exported and imported (backup.Source and backup.Sink)", s)
	}
	h := newHarness(t, s, nil)
	ctx := context.Background()
	for i := range 20 {
		ani := fmt.Sprintf("+1415555%04d", i)
		id := fmt.Sprintf("b%d", i)
		h.start(`{"call_id":"` + id + `a","identity_hints":{"ani":"` + ani + `","external_ids":{"crm":"C` + id + `"}},"telco":{"line_type":"mobile"}}`)
		h.end(`{"call_id":"` + id + `a","customer_ref":"cust_` + id + `","intent":"billing","intent_status":"open","variables":{"name":"N` + id + `","plan":"gold"}}`)
		h.at(time.Duration(i+1) * time.Hour)
		if i%3 == 0 {
			h.start(`{"call_id":"` + id + `b","identity_hints":{"ani":"` + ani + `"},"telco":{"line_type":"mobile"}}`)
			h.end(`{"call_id":"` + id + `b","customer_ref":"cust_` + id + `","intent":"billing","intent_status":"resolved"}`)
		}
	}
	now := h.clock.Now()
	var file bytes.Buffer
	exported, err := backup.Export(ctx, p, acmeTest, now, &file)
	if err != nil || exported.Customers != 20 || exported.LineTypes != 20 {
		t.Fatalf("Export = %+v, %v; want 20 customers and 20 line types", exported, err)
	}
	f, err := backup.Read(bytes.NewReader(file.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	into := callcontext.Scope{Tenant: "beta", Mode: callcontext.Test}
	imported, err := backup.Import(ctx, p, into, f, now)
	if err != nil || imported.Customers != 20 || imported.LineTypes != 20 {
		t.Fatalf("Import = %+v, %v; want 20 customers and 20 line types", imported, err)
	}
	for i := range 20 {
		ref := fmt.Sprintf("cust_b%d", i)
		a, errA := h.svc.Customer(ctx, acmeTest, ref)
		b, errB := h.svc.Customer(ctx, into, ref)
		ja, _ := json.Marshal(a)
		jb, _ := json.Marshal(b)
		if errA != nil || errB != nil || !bytes.Equal(ja, jb) {
			t.Errorf("Customer(%s) after the import = %s, %v; want %s", ref, jb, errB, ja)
		}
		// The next call, with no line type in the request: the remembered
		// one, the links and the external id decide, as before.
		next := fmt.Sprintf(`{"call_id":"n%d","identity_hints":{"ani":"+1415555%04d","external_ids":{"crm":"Cb%d"}}}`, i, i, i)
		ra, _ := h.startIn(acmeTest, next)
		rb, _ := h.startIn(into, next)
		if ra.CustomerRef != rb.CustomerRef || ra.Identity.Recommendation != rb.Identity.Recommendation || ra.Identity.Confidence != rb.Identity.Confidence {
			t.Errorf("next call of %s: %s %s %v after the import, want %s %s %v", ref, rb.CustomerRef, rb.Identity.Recommendation,
				rb.Identity.Confidence, ra.CustomerRef, ra.Identity.Recommendation, ra.Identity.Confidence)
		}
	}
	again, err := backup.Import(ctx, p, into, f, now)
	if err != nil || again.Customers != 0 || again.Unchanged != 20 {
		t.Errorf("the same import again = %+v, %v; want 20 unchanged, nothing written", again, err)
	}
	// A customer changed since: importing over it is refused whole.
	h.endIn(into, `{"call_id":"z1","customer_ref":"cust_b1","variables":{"plan":"silver"}}`)
	if _, err := backup.Import(ctx, p, into, f, now); err == nil || !strings.Contains(err.Error(), "cust_b1") {
		t.Errorf("import over a changed customer = %v, want a conflict naming cust_b1", err)
	}
}

// Every bad line of a file is reported with its number; nothing is read.
func testBackupBadFile(t *testing.T, s Store) {
	file := strings.Join([]string{
		`{"stickycalls_export":{"version":1,"tenant":"acme","mode":"test","at":"2026-02-07T10:30:00Z"}}`,
		`{"customer":{"ref":"cust_1","version":1,"expires":"2026-03-07T10:30:00Z"}}`,
		`{"customer":{"ref":"","version":1,"expires":"2026-03-07T10:30:00Z"}}`,
		`{"customer":{"ref":"cust_1","version":1,"expires":"2026-03-07T10:30:00Z"}}`,
		`{"line_type":{"ani":"555","line_type":"mobile","expires":"2026-03-07T10:30:00Z"}}`,
		`not json`,
		`{"customer":{"ref":"cust_2","version":1,"expires":"2026-03-07T10:30:00Z"},"line_type":{"ani":"+14155550100","line_type":"mobile"}}`,
		`{"line_type":{"ani":"+14155550100","line_type":"fax","expires":"2026-03-07T10:30:00Z"}}`,
		// What §4 refuses an end is refused an import too.
		`{"customer":{"ref":"cust_3","version":1,"expires":"2026-03-07T10:30:00Z","variables":{"note":{"value":"card 4111 1111 1111 1111","source":"c","expires":"2026-03-07T10:30:00Z"}}}}`,
		`{"customer":{"ref":"cust_4","version":1,"expires":"2026-03-07T10:30:00Z","variables":{"bad key!":{"value":"x","source":"c","expires":"2026-03-07T10:30:00Z"}}}}`,
		`{"customer":{"ref":"cust_5","version":1,"expires":"2026-03-07T10:30:00Z","variables":` + manyVariables(101) + `}}`,
		`{"customer":{"ref":"cust_6","version":1,"expires":"2026-03-07T10:30:00Z","variables":` + manyVariables(100) + `}}`,
	}, "\n")
	_, err := backup.Read(strings.NewReader(file))
	var bad *backup.BadFile
	if !errors.As(err, &bad) {
		t.Fatalf("Read(bad file) = %v, want a *backup.BadFile", err)
	}
	var lines []int
	for _, l := range bad.Lines {
		lines = append(lines, l.Line)
	}
	if diff := cmp.Diff([]int{3, 4, 5, 6, 7, 8, 9, 10, 11}, lines); diff != "" {
		t.Errorf("bad lines: diff (-want +got):\n%s\n%v", diff, err)
	}
	if _, err := backup.Read(strings.NewReader(`{"customer":{"ref":"cust_1","version":1,"expires":"2026-03-07T10:30:00Z"}}`)); err == nil {
		t.Error("a file without its header was read")
	}
}

// manyVariables is a customer's variables, n of them, as an export writes them.
func manyVariables(n int) string {
	vars := make([]string, n)
	for i := range vars {
		vars[i] = fmt.Sprintf(`"v%d":{"value":"x","source":"c","expires":"2026-03-07T10:30:00Z"}`, i)
	}
	return "{" + strings.Join(vars, ",") + "}"
}
