package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/stickycalls/stickycalls/context/boltstore"
	"github.com/stickycalls/stickycalls/context/callapi"
	"github.com/stickycalls/stickycalls/context/callcontext"
	"github.com/stickycalls/stickycalls/context/childproc"
)

// TestBench runs the whole bench briefly, its servers in this process:
// the floor, then the service on Redis and on bbolt at two sizes. Every
// request of every workload must succeed (the bench's own checks make sure
// returning callers are reused and the voice greeting names the caller).
func TestBench(t *testing.T) {
	p := benchPlan{customers: []int{200, 300}, phase: 150 * time.Millisecond, warmup: 50 * time.Millisecond, grace: 500 * time.Millisecond,
		conns: 4, inflight: 64, voiceRate: 50, voiceSet: 50, probes: 2, repeats: 2, seedWorkers: 2, stores: []string{"redis", "cluster", "bbolt"}}
	sp := childproc.NewSpawner()
	defer sp.Close()
	var log bytes.Buffer
	res, err := runBench(context.Background(), p, sp, inProcessLauncher, &log)
	if err != nil {
		t.Fatalf("runBench() error %v\n%s", err, log.String())
	}
	if testing.Verbose() {
		t.Log(log.String())
	}
	if got := len(res.runs); got != 6 {
		t.Fatalf("runs = %d, want 6 (3 stores × 2 sizes)", got)
	}
	if got := len(res.floors); got != maxFloorWaves {
		t.Fatalf("floors = %d, want %d (1 to %d waves)", got, maxFloorWaves, maxFloorWaves)
	}
	for _, f := range res.floors {
		if f.closed.ok == 0 || f.open.ok == 0 || f.closed.failed+f.open.failed > 0 {
			t.Errorf("%d-wave floor: closed %d ok %d failed, open %d ok %d failed; want all ok", f.waves, f.closed.ok, f.closed.failed,
				f.open.ok, f.open.failed)
		}
	}
	// Every Redis workload's p99 has the floor with its waves at its rate
	// to be compared with.
	for _, sr := range res.redisBackedRuns() {
		for _, w := range sr.rows {
			f, _ := res.floorFor(sr, w.name, true)
			if fp, ok := f.atRate(sr, w.open.rate); !ok || fp.p.ok == 0 {
				t.Errorf("%s %d, %s: the %d-wave floor was not measured at %.0f req/s", sr.store, sr.customers, w.name, f.waves, w.open.rate)
			}
		}
	}
	for _, sr := range res.runs {
		if len(sr.rows) != 4 {
			t.Errorf("%s %d: %d workloads measured, want 4", sr.store, sr.customers, len(sr.rows))
		}
		for _, w := range sr.rows {
			if w.closed.ok == 0 || w.open.ok == 0 || w.closed.failed+w.open.failed > 0 {
				t.Errorf("%s %d, %s: closed %d ok %d failed, open %d ok %d failed; want all ok", sr.store, sr.customers, w.name,
					w.closed.ok, w.closed.failed, w.open.ok, w.open.failed)
			}
		}
		if sr.store != "bbolt" && sr.waves[returningName] < 2 {
			t.Errorf("%s %d: %v waves for a returning start, want at least 2", sr.store, sr.customers, sr.waves[returningName])
		}
	}
	md := res.markdown("stickycalls bench --test")
	for _, want := range []string{"### Targets", "### Throughput and latency", "### Latency by customers stored", returningName, voiceName,
		floorName(3), "store growth/req", "### Redis's own slow moments"} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q:\n%s", want, md)
		}
	}
}

// TestParseStores checks --stores: the stores in the bench's order, and
// an unknown one named.
func TestParseStores(t *testing.T) {
	got, err := parseStores("bbolt, redis")
	if err != nil || !slices.Equal(got, []string{"redis", "bbolt"}) {
		t.Errorf(`parseStores("bbolt, redis") = %q, %v; want [redis bbolt] in the bench's order`, got, err)
	}
	if _, err := parseStores("redis,postgres"); err == nil || !strings.Contains(err.Error(), `"postgres"`) {
		t.Errorf(`parseStores("redis,postgres") error %v, want one naming "postgres"`, err)
	}
}

// TestWriteReport keeps what surrounds the markers.
func TestWriteReport(t *testing.T) {
	path := filepath.Join(t.TempDir(), "PERFORMANCE.md")
	if err := writeReport(path, "first\n"); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(path)
	analysis := "\nAnalysis.\n" + strings.Repeat("More analysis, after the markers.\n", 40)
	edited := strings.Replace(string(raw), reportBegin, "Intro.\n\n"+reportBegin, 1) + analysis
	os.WriteFile(path, []byte(edited), 0o644)
	// The second report is longer than the first: it must not overwrite
	// the analysis after the markers, which it once did.
	second := strings.Repeat("second, longer than the first\n", 4)
	if err := writeReport(path, second); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(path)
	want := "# Performance\n\nIntro.\n\n" + reportBegin + "\n" + second + reportEnd + "\n" + analysis
	if string(got) != want {
		t.Errorf("after two writes:\n%s\nwant:\n%s", got, want)
	}
}

type benchGreeter struct{}

func (benchGreeter) Greet(res *callapi.StartResult) callapi.Greeting {
	return callapi.Greeting{Tier: res.Identity.Recommendation}
}

// The bench seeds customer i as the service's own start and end of its
// call leave it.
func TestSeedRecordIsWhatAnEndWrites(t *testing.T) {
	s, err := boltstore.Open(filepath.Join(t.TempDir(), "stickycalls.db"), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ended := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	now := ended.Add(-3 * time.Minute)
	calls := callcontext.NewService(s, callcontext.NoLookup{}, benchGreeter{}, func() time.Time { return now }, nil, callcontext.Durations{})
	sc := callcontext.Scope{Tenant: "default", Mode: callcontext.Prod}
	const i = 42
	start, err := callapi.ParseStart(fmtJSON(t, map[string]any{"call_id": seedCallID(i),
		"identity_hints": map[string]any{"ani": CustomerANI(i), "external_ids": map[string]string{"crm_id": CustomerCRM(i)}}}))
	if err == nil {
		_, err = calls.Start(context.Background(), sc, start, "")
	}
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	now = ended
	end, err := callapi.ParseEnd(fmtJSON(t, map[string]any{"call_id": seedCallID(i), "customer_ref": CustomerRef(i),
		"intent": seedIntent, "intent_status": "open", "variables": seedVariables(i)}))
	if err == nil {
		_, err = calls.End(context.Background(), sc, end, "")
	}
	if err != nil {
		t.Fatalf("end: %v", err)
	}
	got, err := s.Customers(context.Background(), sc, []string{CustomerRef(i)})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(SeedRecord(i, ended), got[CustomerRef(i)]); diff != "" {
		t.Errorf("SeedRecord(%d) differs from what the end wrote (-seed +end):\n%s", i, diff)
	}
}

func fmtJSON(t *testing.T, v any) []byte {
	t.Helper()
	raw, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// A file whose end marker is its last line, with no line end, or whose
// lines end in CRLF, is rewritten too.
func TestWriteReportMarkerEnds(t *testing.T) {
	for name, tail := range map[string]string{"at the end of the file": "", "before CRLF": "\r\nAfter.\r\n"} {
		path := filepath.Join(t.TempDir(), "PERFORMANCE.md")
		os.WriteFile(path, []byte("Intro.\n"+reportBegin+"\nold\n"+reportEnd+tail), 0o644)
		if err := writeReport(path, "new"); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		got, _ := os.ReadFile(path)
		if want := "Intro.\n" + reportBegin + "\nnew\n" + reportEnd + "\n" + strings.TrimPrefix(tail, "\r\n"); string(got) != want {
			t.Errorf("%s: got %q, want %q", name, got, want)
		}
	}
}
