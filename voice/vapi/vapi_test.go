package vapi_test

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
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/stickycalls/stickycalls/context/boltstore"
	"github.com/stickycalls/stickycalls/context/callapi"
	"github.com/stickycalls/stickycalls/context/callcontext"
	"github.com/stickycalls/stickycalls/context/storage"
	"github.com/stickycalls/stickycalls/greetings"
	"github.com/stickycalls/stickycalls/voice/agentctx"
	"github.com/stickycalls/stickycalls/voice/vapi"
)

const (
	secret  = "vapi0secret"
	number  = "+18005550177"
	callID  = "0d3f2a8e-9c1b-4d5e-8f7a-6b2c1d0e9f8a"
	caller  = "+14155550142"
	assist  = "asst_support"
	timeout = 300 * time.Millisecond
)

var prod = callcontext.Scope{Tenant: "default", Mode: callcontext.Prod}

// hangable is a store that can stop answering: every call then waits for
// its context.
type hangable struct {
	callcontext.Store
	mu   sync.Mutex
	hang bool
}

func (h *hangable) Claim(ctx context.Context, sc callcontext.Scope, c storage.Claim) (storage.ClaimResult, error) {
	h.mu.Lock()
	hang := h.hang
	h.mu.Unlock()
	if hang {
		<-ctx.Done()
		return storage.ClaimResult{}, callcontext.ErrUnavailable
	}
	return h.Store.Claim(ctx, sc, c)
}

// outbox records the ends kept for later.
type outbox struct {
	mu   sync.Mutex
	ends []callapi.EndRequest
}

func (o *outbox) PutEnd(_ string, e callapi.EndRequest) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.ends = append(o.ends, e)
	return nil
}

type env struct {
	t     *testing.T
	srv   *httptest.Server
	store *hangable
	calls *callcontext.Service
	box   *outbox
}

func newEnv(t *testing.T) *env {
	bolt, err := boltstore.Open(filepath.Join(t.TempDir(), "db"), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bolt.Close() })
	g, _ := greetings.New(nil, nil)
	store := &hangable{Store: bolt}
	calls := callcontext.NewService(store, callcontext.NoLookup{}, g, time.Now, nil, callcontext.Durations{})
	box := &outbox{}
	cfg := vapi.Config{
		Numbers: map[string]vapi.Number{number: {Tenant: "default", AssistantID: assist, Mapping: agentctx.Mapping{Intent: "intent", IntentStatus: "intent_status",
			Variables: map[string]string{"name": "customer_name", "plan": "plan"}}}},
		Secrets: map[string]string{"default": secret}, Deadline: timeout, Greeter: g, Outbox: box,
	}
	srv := httptest.NewServer(vapi.Handle(zerolog.Nop(), calls, cfg))
	t.Cleanup(srv.Close)
	return &env{t: t, srv: srv, store: store, calls: calls, box: box}
}

// payload reads a documented payload from testdata, with replacements.
func payload(t *testing.T, name string, repl ...string) []byte {
	raw, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return []byte(strings.NewReplacer(repl...).Replace(string(raw)))
}

func (e *env) post(secretValue string, body []byte) (int, map[string]any) {
	e.t.Helper()
	req, _ := http.NewRequest("POST", e.srv.URL, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if secretValue != "" {
		req.Header.Set(vapi.SecretHeader, secretValue)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var m map[string]any
	json.Unmarshal(raw, &m)
	return resp.StatusCode, m
}

func vars(m map[string]any) map[string]any {
	o, _ := m["assistantOverrides"].(map[string]any)
	v, _ := o["variableValues"].(map[string]any)
	return v
}

// A Vapi assistant's call: the request starts it and gets the context as
// variable values; the report saves its end, once however often it comes;
// the next call hears the caller's name.
func TestAssistantCall(t *testing.T) {
	e := newEnv(t)
	code, ans := e.post(secret, payload(t, "assistant-request.json"))
	if v := vars(ans); code != 200 || ans["assistantId"] != assist || v["stickycalls_recommendation"] != "ignore" || v["stickycalls_call_id"] != callID || v["stickycalls_name"] != "" {
		t.Fatalf("assistant-request = %d %v, want the assistant and a new caller's values", code, ans)
	}
	for i := range 2 { // Vapi may send a report twice
		if code, ans := e.post(secret, payload(t, "end-of-call-report.json")); code != 200 {
			t.Fatalf("end-of-call-report #%d = %d %v", i+1, code, ans)
		}
	}
	call, err := e.calls.Call(context.Background(), prod, callID)
	rec := call.Record
	if err != nil || rec.Ended.IsZero() {
		t.Fatalf("the call after its report = %+v, %v; want it ended", rec, err)
	}
	cust, err := e.calls.Customer(context.Background(), prod, rec.CustomerRef)
	if err != nil || len(cust.OpenIntents) != 1 || cust.OpenIntents[0].Intent != "billing_dispute" || cust.OpenIntents[0].AttemptCount != 1 ||
		cust.Variables["name"].Value != "Ada Lovelace" || cust.Variables["plan"].Value != "gold" {
		t.Errorf("the customer after two reports = %+v, %v; want billing_dispute once, name and plan", cust, err)
	}
	// The next call from the number: the name, to ask about it.
	next := payload(t, "assistant-request.json", callID, "1f2e3d4c-5b6a-4978-8a9b-0c1d2e3f4a5b")
	if _, ans := e.post(secret, next); vars(ans)["stickycalls_name"] != "Ada Lovelace" || vars(ans)["stickycalls_recommendation"] == "ignore" {
		t.Errorf("the next call's values = %v, want the stored name", vars(ans))
	}
}

// Without the tenant's secret nothing is read or stored.
func TestSecret(t *testing.T) {
	e := newEnv(t)
	for _, s := range []string{"", "wrong"} {
		if code, _ := e.post(s, payload(t, "assistant-request.json")); code != 401 {
			t.Errorf("assistant-request with secret %q = %d, want 401", s, code)
		}
		if code, _ := e.post(s, payload(t, "end-of-call-report.json")); code != 401 {
			t.Errorf("end-of-call-report with secret %q = %d, want 401", s, code)
		}
	}
	if _, err := e.calls.Call(context.Background(), prod, callID); err == nil {
		t.Error("a call was stored from messages with a bad secret")
	}
	// An unknown number: generic values, nothing read.
	if code, ans := e.post("", payload(t, "assistant-request.json", number, "+18005559999")); code != 401 && vars(ans)["stickycalls_recommendation"] != "ignore" {
		t.Errorf("unknown number = %d %v, want generic values", code, ans)
	}
}

// With the store away the request is answered in time with generic values,
// and the report waits in the outbox.
func TestStoreAway(t *testing.T) {
	e := newEnv(t)
	e.store.mu.Lock()
	e.store.hang = true
	e.store.mu.Unlock()
	began := time.Now()
	code, ans := e.post(secret, payload(t, "assistant-request.json"))
	if took := time.Since(began); code != 200 || ans["assistantId"] != assist || vars(ans)["stickycalls_greeting"] == "" || took > 2*timeout {
		t.Errorf("assistant-request with the store away = %d %v in %v, want generic values within %v", code, ans, took, timeout)
	}
	if code, _ := e.post(secret, payload(t, "end-of-call-report.json")); code != 200 {
		t.Errorf("end-of-call-report with the store away = %d, want 200 (kept)", code)
	}
	e.box.mu.Lock()
	defer e.box.mu.Unlock()
	if len(e.box.ends) != 1 || e.box.ends[0].CallID != callID || e.box.ends[0].Intent != "billing_dispute" {
		t.Errorf("outbox = %+v, want the report's end", e.box.ends)
	}
}
