package main

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// An operator estimates the live wrong-person rate from /metrics: starts
// by tier, and agents' corrections of a reuse.
func TestRecognitionMetrics(t *testing.T) {
	s := startServer(t, nil)
	hints := `"identity_hints":{"ani":"+14155550191"},"telco":{"line_type":"mobile","attestation":"A"}`
	for _, step := range []struct{ path, body string }{
		{"/v1/calls/start", `{"call_id":"m1",` + hints + `}`},
		{"/v1/calls/end", `{"call_id":"m1","customer_ref":"cust_ann","variables":{"name":"Ann"}}`},
		{"/v1/calls/start", `{"call_id":"m2",` + hints + `}`},
		{"/v1/calls/end", `{"call_id":"m2","customer_ref":"cust_bob"}`}, // not Ann: the agent corrects the reuse
		{"/v1/calls/end", `{"call_id":"m2","customer_ref":"cust_bob"}`}, // a replay counts nothing
	} {
		if status, _, body := s.do("POST", step.path, step.body); status != 200 {
			t.Fatalf("POST %s %s: %d %v", step.path, step.body, status, body)
		}
	}
	resp, err := http.Get(s.base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	for _, want := range []string{
		`stickycalls_starts_total{tier="ignore"} 1`,
		`stickycalls_starts_total{tier="reuse"} 1`,
		`stickycalls_agent_corrections_total{tier="reuse"} 1`,
		`stickycalls_agent_corrections_total{tier="confirm"} 0`,
		`stickycalls_confirm_answers_total{answer="no"} 0`,
	} {
		if !strings.Contains(string(raw), want+"\n") {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}
