package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stickycalls/stickycalls/context/redistest"
	"github.com/stickycalls/stickycalls/voice/vapi"
)

// vapiConfigFile writes a configuration whose number a Vapi assistant
// answers, for tenant default with the secret in VAPI_SECRET.
func vapiConfigFile(t *testing.T) string {
	t.Helper()
	file := filepath.Join(t.TempDir(), "config.yaml")
	yaml := `tenants:
  default:
    vapi: {secret_env: VAPI_SECRET}
numbers:
  "+18005550177":
    vapi:
      assistant_id: asst_support
      intent: intent
      intent_status: intent_status
      variables: {name: customer_name, plan: plan}
`
	if err := os.WriteFile(file, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return file
}

// postVapi sends a documented Vapi payload to the server's server URL.
func postVapi(t *testing.T, base, secret, name string) int {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "..", "voice", "vapi", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("POST", base+"/integrations/vapi", bytes.NewReader(raw))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(vapi.SecretHeader, secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// Through the real server, on Redis frozen when the report comes: the
// assistant-request started the call, the report is answered 200 and kept,
// and once Redis is back the call has its end.
func TestVapiReportWhileRedisPaused(t *testing.T) {
	t.Parallel()
	r := redistest.Durable(t, "always")
	// The end sent while Redis was frozen may run when Redis wakes and hold
	// the call's end lease: a short one keeps the test short.
	env := map[string]string{"STICKYCALLS_CONFIG": vapiConfigFile(t), "VAPI_SECRET": "s3cret", "STICKYCALLS_IDEMPOTENCY_LEASE": "3s",
		"STICKYCALLS_REDIS_URL": "redis://" + r.Addr() + "/0?" + redisTimeouts}
	s := startServer(t, env)
	s.key = createKey(t, env, "prod")
	if code := postVapi(t, s.base, "wrong", "assistant-request.json"); code != 401 {
		t.Errorf("a bad secret = %d, want 401", code)
	}
	if code := postVapi(t, s.base, "s3cret", "assistant-request.json"); code != 200 {
		t.Fatalf("assistant-request = %d", code)
	}
	r.Pause()
	code := postVapi(t, s.base, "s3cret", "end-of-call-report.json")
	r.Resume()
	if code != 200 {
		t.Fatalf("end-of-call-report with Redis frozen = %d, want 200: kept in the outbox", code)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, _, got := s.do("GET", "/v1/calls/0d3f2a8e-9c1b-4d5e-8f7a-6b2c1d0e9f8a", "")
		if c == 200 && got["status"] == "ended" {
			ref, _ := got["customer_ref"].(string)
			if c, _, cust := s.do("GET", "/v1/customers/"+ref, ""); c != 200 || !strings.Contains(stringOf(cust), "billing_dispute") {
				t.Errorf("the customer = %d %v, want the report's intent", c, cust)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the call 15 s after Redis came back = %d %v, want ended", c, got)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func stringOf(v any) string {
	b, _ := jsonMarshal(v)
	return string(b)
}

var jsonMarshal = json.Marshal
