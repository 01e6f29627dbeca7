package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stickycalls/stickycalls/cmd/stickycalls/internal/bench"
	"github.com/stickycalls/stickycalls/context/backup"
	"github.com/stickycalls/stickycalls/context/callapi"
	"github.com/stickycalls/stickycalls/context/callcontext"
	"github.com/stickycalls/stickycalls/context/identity"
	"github.com/stickycalls/stickycalls/context/redistest"
	"github.com/stickycalls/stickycalls/context/storage"
)

// A deployment moves from the embedded store to Redis and back without
// losing anyone: a few thousand customers imported into a running bbolt
// server, exported through it, imported into a running Redis server, and
// exported again into a fresh bbolt one, all with the CLI through the admin
// routes. Every customer reads byte for byte the same everywhere, and every
// next call is recognized the same.
func TestBackupRoundTrip(t *testing.T) {
	t.Parallel()
	const n, admin = 2000, "backup0admin"
	dir := t.TempDir()
	now := time.Now().UTC()

	// The generated customers: bench.SeedRecord's, half with a remembered line
	// type (the others' next call has none: confirm or ignore).
	var gen bytes.Buffer
	enc := json.NewEncoder(&gen)
	enc.Encode(backup.Line{Export: &backup.Header{Version: backup.Version, Tenant: "default", Mode: callcontext.Test, At: now}})
	for i := range n {
		r := bench.SeedRecord(i, now.Add(-time.Duration(i%30)*24*time.Hour))
		enc.Encode(backup.Line{Customer: &r})
		if i%2 == 0 {
			enc.Encode(backup.Line{LineType: &storage.RememberedLineType{ANI: bench.CustomerANI(i), LineType: identity.Mobile, Expires: now.Add(30 * 24 * time.Hour)}})
		}
	}
	genFile := filepath.Join(dir, "generated.jsonl")
	if err := os.WriteFile(genFile, gen.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}

	r := redistest.Durable(t, "no")
	servers := map[string]map[string]string{
		"bbolt": {"STICKYCALLS_DATA": filepath.Join(dir, "a.db")},
		"redis": {"STICKYCALLS_REDIS_URL": "redis://" + r.Addr() + "/0?" + redisTimeouts},
		"back":  {"STICKYCALLS_DATA": filepath.Join(dir, "c.db")},
	}
	s := map[string]*server{}
	env := map[string]map[string]string{}
	for name, e := range servers {
		e["STICKYCALLS_ADDR"], e["STICKYCALLS_ADMIN_TOKEN"] = freeAddr(t), admin
		s[name], env[name] = startServer(t, e), e
	}
	cli := func(name string, args ...string) string {
		t.Helper()
		var out, errOut bytes.Buffer
		e := env[name]
		if err := run(context.Background(), args, func(k string) string { return e[k] }, &out, &errOut); err != nil {
			t.Fatalf("stickycalls %s against %s: %v\n%s", strings.Join(args, " "), name, err, errOut.String())
		}
		return out.String() + errOut.String()
	}
	// A bad file is refused whole, every bad line named, through the server.
	badFile := filepath.Join(dir, "bad.jsonl")
	os.WriteFile(badFile, []byte(strings.SplitN(gen.String(), "\n", 2)[0]+"\n{\"customer\":{\"ref\":\"\"}}\nnot json\n"), 0o600)
	var errOut bytes.Buffer
	err := run(context.Background(), []string{"import", "--mode", "test", badFile}, func(k string) string { return env["bbolt"][k] }, io.Discard, &errOut)
	if err == nil || !strings.Contains(err.Error(), "400") || !strings.Contains(err.Error(), "line 2:") || !strings.Contains(err.Error(), "line 3:") {
		t.Errorf("importing a bad file = %v, want a 400 naming lines 2 and 3", err)
	}

	a, b := filepath.Join(dir, "a.jsonl"), filepath.Join(dir, "b.jsonl")
	if out := cli("bbolt", "import", "--mode", "test", genFile); !strings.Contains(out, fmt.Sprintf("imported %d customers and %d line types", n, n/2)) {
		t.Fatalf("import into bbolt said %q", out)
	}
	cli("bbolt", "export", "--mode", "test", "--out", a)
	if out := cli("redis", "import", "--mode", "test", a); !strings.Contains(out, fmt.Sprintf("imported %d customers", n)) {
		t.Fatalf("import into redis said %q", out)
	}
	// A test export is not imported as prod by mistake, and no page can
	// post one across sites (a simple request's content type is refused).
	if err := run(context.Background(), []string{"import", "--mode", "prod", a}, func(k string) string { return env["redis"][k] }, io.Discard, io.Discard); err == nil || !strings.Contains(err.Error(), `mode "test"`) {
		t.Errorf("importing a test export as prod = %v, want it refused", err)
	}
	raw, _ := os.ReadFile(a)
	req, _ := http.NewRequest("POST", s["redis"].base+"/admin/import", bytes.NewReader(raw))
	req.Header.Set("Content-Type", "text/plain")
	req.SetBasicAuth("ops", admin)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusUnsupportedMediaType {
		t.Errorf("an import posted as text/plain = %v, %v; want 415", resp, err)
	} else {
		resp.Body.Close()
	}
	// Again: no customer written (line types are set again, to the same).
	if out := cli("redis", "import", "--mode", "test", a); !strings.Contains(out, "imported 0 customers") || !strings.Contains(out, fmt.Sprintf("(%d unchanged", n)) {
		t.Errorf("the same import again said %q, want no customer written and all unchanged", out)
	}
	cli("redis", "export", "--mode", "test", "--out", b)
	cli("back", "import", "--mode", "test", b)

	// A variable's ttl_seconds counts down between two reads: the rest of
	// the answer must be byte for byte the same.
	countdown := regexp.MustCompile(`"ttl_seconds":\d+`)
	get := func(name, path string) []byte {
		a := s[name].exchange("GET", path, "")
		if a.err != nil || a.status != http.StatusOK {
			t.Errorf("%s GET %s = %v", name, path, a)
		}
		return countdown.ReplaceAll(a.body, []byte(`"ttl_seconds":_`))
	}
	inParallel(n, 8, func(i int) {
		path := "/v1/customers/" + bench.CustomerRef(i)
		want := get("bbolt", path)
		for _, name := range []string{"redis", "back"} {
			if got := get(name, path); !bytes.Equal(got, want) {
				t.Errorf("%s %s = %s, want %s", name, path, got, want)
			}
		}
	})
	type recognized struct {
		CustomerRef string               `json:"customer_ref"`
		Identity    callapi.IdentityView `json:"identity"`
		Greeting    callapi.Greeting     `json:"greeting"`
	}
	inParallel(n, 8, func(i int) {
		body := fmt.Sprintf(`{"call_id":"next_%d","identity_hints":{"ani":"%s","external_ids":{"crm_id":"%s"}}}`, i, bench.CustomerANI(i), bench.CustomerCRM(i))
		var first recognized
		for k, name := range []string{"bbolt", "redis", "back"} {
			a := s[name].exchange("POST", "/v1/calls/start", body)
			var got recognized
			if a.err != nil || a.status != 200 || json.Unmarshal(a.body, &got) != nil {
				t.Errorf("%s start %d = %v", name, i, a)
				return
			}
			if k == 0 {
				first = got
				continue
			}
			g, _ := json.Marshal(got)
			f, _ := json.Marshal(first)
			if !bytes.Equal(g, f) {
				t.Errorf("next call of %s on %s = %s, on bbolt %s", bench.CustomerRef(i), name, g, f)
			}
		}
	})
	// The exports themselves: the same customers, whatever the order.
	ca, cb := countLines(t, a), countLines(t, b)
	if ca != cb || ca != n+n/2+1 {
		t.Errorf("exports hold %d and %d lines, want %d each", ca, cb, n+n/2+1)
	}
}

func countLines(t *testing.T, path string) int {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	raw, _ := io.ReadAll(f)
	return bytes.Count(raw, []byte("\n"))
}
