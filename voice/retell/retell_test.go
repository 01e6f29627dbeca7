package retell_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/stickycalls/stickycalls/context/boltstore"
	"github.com/stickycalls/stickycalls/context/callcontext"
	"github.com/stickycalls/stickycalls/greetings"
	"github.com/stickycalls/stickycalls/voice/agentctx"
	"github.com/stickycalls/stickycalls/voice/retell"
)

const (
	key    = "key_0123456789abcdef"
	number = "+18005550188"
	agent  = "agent_override"
)

var prod = callcontext.Scope{Tenant: "default", Mode: callcontext.Prod}

type env struct {
	t     *testing.T
	mux   *http.ServeMux
	srv   *httptest.Server
	calls *callcontext.Service
	now   time.Time
}

func newEnv(t *testing.T) *env {
	bolt, err := boltstore.Open(filepath.Join(t.TempDir(), "db"), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bolt.Close() })
	g, _ := greetings.New(nil, nil)
	// Two seconds before a two-minute span ends: a retry crosses its edge.
	e := &env{t: t, mux: http.NewServeMux(), now: time.Now().Truncate(2 * time.Minute).Add(-2 * time.Second)}
	e.calls = callcontext.NewService(bolt, callcontext.NoLookup{}, g, func() time.Time { return e.now }, nil, callcontext.Durations{})
	cfg := retell.Config{
		Numbers: map[string]retell.Number{number: {Tenant: "default", AgentID: agent,
			Mapping: agentctx.Mapping{Intent: "intent", IntentStatus: "intent_status", Variables: map[string]string{"name": "caller_name"}}}},
		Keys: map[string]string{"default": key}, Greeter: g, Now: func() time.Time { return e.now },
	}
	e.mux.Handle("POST /inbound", retell.HandleInbound(zerolog.Nop(), e.calls, cfg))
	e.mux.Handle("POST /events", retell.HandleEvents(zerolog.Nop(), e.calls, cfg))
	e.srv = httptest.NewServer(e.mux)
	t.Cleanup(e.srv.Close)
	return e
}

// post sends a documented payload (testdata/name, with replacements)
// signed at signedAt.
func (e *env) post(path, name string, signedAt time.Time, k string, repl ...string) (int, map[string]any) {
	e.t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		e.t.Fatal(err)
	}
	body := []byte(strings.NewReplacer(repl...).Replace(string(raw)))
	req, _ := http.NewRequest("POST", e.srv.URL+path, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(retell.SignatureHeader, retell.Sign(body, k, signedAt))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	var m map[string]any
	json.Unmarshal(out, &m)
	return resp.StatusCode, m
}

func inboundOf(m map[string]any) (vars, meta map[string]any, agentID string) {
	ci, _ := m["call_inbound"].(map[string]any)
	vars, _ = ci["dynamic_variables"].(map[string]any)
	meta, _ = ci["metadata"].(map[string]any)
	agentID, _ = ci["override_agent_id"].(string)
	return vars, meta, agentID
}

// A Retell call: the inbound webhook starts it (a retry replays the same
// start), call_ended completes it, call_analyzed saves its end on it.
func TestRetellCall(t *testing.T) {
	e := newEnv(t)
	code, ans := e.post("/inbound", "call_inbound.json", e.now, key)
	vars, meta, agentID := inboundOf(ans)
	callID, _ := meta["stickycalls_call_id"].(string)
	if code != 200 || agentID != agent || callID == "" || vars["stickycalls_recommendation"] != "ignore" || vars["stickycalls_call_id"] != callID {
		t.Fatalf("call_inbound = %d %v, want the override, the call's id in metadata and a new caller's values", code, ans)
	}
	e.now = e.now.Add(3 * time.Second) // Retell's retry, signed anew, in the next span
	if _, again := e.post("/inbound", "call_inbound.json", e.now, key); again["call_inbound"].(map[string]any)["metadata"].(map[string]any)["stickycalls_call_id"] != callID {
		t.Errorf("a retried call_inbound = %v, want the same call", again)
	}
	if code, m := e.post("/events", "call_ended.json", e.now, key, "CALL_ID", callID); code != 200 {
		t.Fatalf("call_ended = %d %v", code, m)
	}
	if code, m := e.post("/events", "call_analyzed.json", e.now, key, "CALL_ID", callID); code != 200 {
		t.Fatalf("call_analyzed = %d %v", code, m)
	}
	call, err := e.calls.Call(context.Background(), prod, callID)
	rec := call.Record
	if err != nil || rec.Completed.IsZero() || rec.CompletedDuration != 142 || rec.Ended.IsZero() {
		t.Fatalf("the call = %+v, %v; want completed after 142 s and ended", rec, err)
	}
	cust, err := e.calls.Customer(context.Background(), prod, rec.CustomerRef)
	if err != nil || cust.Variables["name"].Value != "Grace Hopper" || len(cust.ClosedIntents) != 1 || cust.ClosedIntents[0].Intent != "address_change" {
		t.Errorf("the customer = %+v, %v; want Grace Hopper and address_change resolved", cust, err)
	}
	// The next call from the number: the name, to ask about it.
	e.now = e.now.Add(10 * time.Minute)
	if _, ans := e.post("/inbound", "call_inbound.json", e.now, key); func() bool { v, _, _ := inboundOf(ans); return v["stickycalls_name"] != "Grace Hopper" }() {
		t.Errorf("the next call's values = %v, want the stored name", ans)
	}
}

// A bad signature, another key or a stale one is refused and stores
// nothing.
func TestRetellSignature(t *testing.T) {
	e := newEnv(t)
	for name, tc := range map[string]struct {
		at time.Time
		k  string
	}{"another key": {e.now, "key_other"}, "stale": {e.now.Add(-6 * time.Minute), key}, "from the future": {e.now.Add(6 * time.Minute), key}} {
		if code, _ := e.post("/inbound", "call_inbound.json", tc.at, tc.k); code != 401 {
			t.Errorf("%s: call_inbound = %d, want 401", name, code)
		}
		if code, _ := e.post("/events", "call_analyzed.json", tc.at, tc.k, "CALL_ID", "retell_x"); code != 401 {
			t.Errorf("%s: call_analyzed = %d, want 401", name, code)
		}
	}
	if u, err := e.calls.Usage(context.Background(), prod); err != nil || u.Requests != 0 {
		t.Errorf("usage after refused webhooks = %+v, %v; want nothing", u, err)
	}
	if !retell.Verify([]byte("{}"), key, retell.Sign([]byte("{}"), key, e.now), e.now) {
		t.Error("Verify refuses its own Sign")
	}
}
