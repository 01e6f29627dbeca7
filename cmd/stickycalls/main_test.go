package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stickycalls/stickycalls/httpapi/apitest"
)

// syncBuffer is a bytes.Buffer that run may write while the test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// server is a running service under test.
type server struct {
	t    *testing.T
	base string
	key  string
	out  *syncBuffer
}

var keyLine = regexp.MustCompile(`(?m)^\s+(sk_test_[A-Za-z0-9]+)$`)

// startServer runs the program on a free port with env added to the
// defaults, waits for /healthz and reads the printed first key.
func startServer(t *testing.T, env map[string]string) *server {
	t.Helper()
	s := launch(t, env)
	m := keyLine.FindStringSubmatch(s.out.String())
	if m == nil {
		t.Fatalf("no test key printed on first start:\n%s", s.out.String())
	}
	s.key = m[1]
	return s
}

// launch runs the program on a free port with env added to the defaults
// and waits for /healthz.
func launch(t *testing.T, env map[string]string) *server {
	t.Helper()
	addr := freeAddr(t)
	full := map[string]string{"STICKYCALLS_ADDR": addr, "STICKYCALLS_DATA": filepath.Join(t.TempDir(), "stickycalls.db")}
	for k, v := range env {
		full[k] = v
	}
	out := &syncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- run(ctx, nil, func(k string) string { return full[k] }, out, io.Discard) }()
	t.Cleanup(func() {
		cancel()
		if err := <-errc; err != nil {
			t.Errorf("run returned %v", err)
		}
	})
	s := &server{t: t, base: "http://" + full["STICKYCALLS_ADDR"], out: out}
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(s.base + "/healthz")
		if err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("server did not come up: %v\n%s", err, out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return s
}

// do sends a request and decodes a JSON answer into a map.
func (s *server) do(method, path, body string, headers ...string) (int, http.Header, map[string]any) {
	s.t.Helper()
	req, err := http.NewRequest(method, s.base+path, strings.NewReader(body))
	if err != nil {
		s.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+s.key)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		s.t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	apitest.Check(s.t, req, resp, raw)
	var m map[string]any
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &m); err != nil {
			s.t.Fatalf("%s %s: body is not JSON: %v\n%s", method, path, err, raw)
		}
	}
	return resp.StatusCode, resp.Header, m
}

func TestHealthCommand(t *testing.T) {
	s := startServer(t, nil)
	if err := run(context.Background(), []string{"health", "--url", s.base + "/readyz"}, func(string) string { return "" }, io.Discard, io.Discard); err != nil {
		t.Errorf("health against a running server = %v, want nil", err)
	}
	if err := run(context.Background(), []string{"health", "--url", s.base + "/nope"}, func(string) string { return "" }, io.Discard, io.Discard); err == nil {
		t.Error("health against a 404 = nil, want an error")
	}
}

// The guide's own integration test, as its client code sends it.
func TestGuideIntegration(t *testing.T) {
	s := startServer(t, nil)

	status, _, res := s.do("POST", "/v1/calls/start", `{"call_id":"test_new_001","identity_hints":{"ani":"+19999999999"}}`)
	if status != 200 || res["match"] != nil || res["confidence"] != nil || res["billable"] != true {
		t.Fatalf("new caller: %d match=%v confidence=%v billable=%v, want 200 nil nil true", status, res["match"], res["confidence"], res["billable"])
	}

	s.do("POST", "/v1/calls/start", `{"call_id":"test_001","identity_hints":{"ani":"+14155551234"}}`)
	status, _, res = s.do("POST", "/v1/calls/end", `{"call_id":"test_001","customer_ref":"cust_test","variables":{"name":"Test"},"intent":"test","intent_is_open":false}`)
	if status != 200 || res["customer_ref"] != "cust_test" {
		t.Fatalf("end: %d %v, want 200 with customer_ref cust_test", status, res)
	}

	status, _, res = s.do("POST", "/v1/calls/start", `{"call_id":"test_002","identity_hints":{"ani":"+14155551234"}}`)
	match, _ := res["match"].(map[string]any)
	conf, _ := res["confidence"].(float64)
	if status != 200 || match == nil || match["customer_ref"] != "cust_test" || conf <= 0 || res["billable"] != false {
		t.Fatalf("returning caller: %d match=%v confidence=%v billable=%v, want cust_test, > 0, false", status, match, res["confidence"], res["billable"])
	}
	if vars, _ := match["variables"].(map[string]any); vars["name"] != "Test" {
		t.Errorf("match.variables = %v, want name Test", match["variables"])
	}
}

// The docs' flow: a mobile caller with a CRM id is recognized at 0.9 with
// the open intent and its count.
func TestDocsFlow(t *testing.T) {
	s := startServer(t, nil)
	start := func(id string) map[string]any {
		_, _, res := s.do("POST", "/v1/calls/start", fmt.Sprintf(`{"call_id":%q,"identity_hints":{"ani":"+14155550123","external_ids":{"crm_id":"crm_12345"}},"telco":{"line_type":"mobile"}}`, id))
		return res
	}
	first := start("call_1")
	if id := first["identity"].(map[string]any); id["recommendation"] != "ignore" {
		t.Fatalf("first call identity = %v, want ignore", id)
	}
	ref := first["customer_ref"].(string)
	for _, id := range []string{"call_1", "call_2"} {
		if id == "call_2" {
			start(id)
		}
		status, _, res := s.do("POST", "/v1/calls/end", fmt.Sprintf(`{"call_id":%q,"intent":"refund_request","intent_status":"open","variables":{"name":"John Doe"}}`, id))
		if status != 200 {
			t.Fatalf("end %s: %d %v", id, status, res)
		}
	}
	res := start("call_3")
	id := res["identity"].(map[string]any)
	// Both earlier calls were today, so recency adds 0.05 to the documented 0.9.
	if id["confidence"] != 0.95 || id["level"] != "very_high" || id["recommendation"] != "reuse" || res["customer_ref"] != ref {
		t.Errorf("identity = %v, customer_ref %v; want 0.95 very_high reuse for %s", id, res["customer_ref"], ref)
	}
	intents := res["open_intents"].([]any)
	if len(intents) != 1 || intents[0].(map[string]any)["attempt_count"] != 2.0 {
		t.Errorf("open_intents = %v, want refund_request with attempt_count 2", intents)
	}
	greeting := res["greeting"].(map[string]any)
	if !strings.Contains(greeting["text"].(string), "John Doe") {
		t.Errorf("greeting = %v, want it to name John Doe", greeting)
	}
}

// Fifty identical ends at once count one attempt; every answer is the
// first response or a 409.
func TestConcurrentEndsOneEffect(t *testing.T) {
	s := startServer(t, nil)
	s.do("POST", "/v1/calls/start", `{"call_id":"c1","identity_hints":{"ani":"+14155550999"}}`)
	body := `{"call_id":"c1","customer_ref":"cust_many","intent":"billing","intent_status":"open"}`
	var wg sync.WaitGroup
	type answer struct {
		status int
		body   string
	}
	answers := make(chan answer, 50)
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest("POST", s.base+"/v1/calls/end", strings.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+s.key)
			req.Header.Set("Content-Type", "application/json")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			raw, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				t.Error(err)
				return
			}
			apitest.Check(t, req, resp, raw)
			answers <- answer{resp.StatusCode, string(raw)}
		}()
	}
	wg.Wait()
	close(answers)
	var first string
	for a := range answers {
		switch a.status {
		case 200:
			if first == "" {
				first = a.body
			} else if a.body != first {
				t.Errorf("200 bodies differ:\n%s\n%s", first, a.body)
			}
		case 409:
		default:
			t.Errorf("concurrent end: status %d %s, want 200 or 409", a.status, a.body)
		}
	}
	_, _, cust := s.do("GET", "/v1/customers/cust_many", "")
	intents := cust["open_intents"].([]any)
	if len(intents) != 1 || intents[0].(map[string]any)["attempt_count"] != 1.0 {
		t.Errorf("after 50 identical ends open_intents = %v, want one with attempt_count 1", intents)
	}
}
