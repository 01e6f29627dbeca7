package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stickycalls/stickycalls/context/redistest"
)

// dialConfig writes a configuration file whose number dials an agent, with
// more YAML lines for the number.
func dialConfig(t *testing.T, number string, more ...string) string {
	t.Helper()
	file := filepath.Join(t.TempDir(), "config.yaml")
	yaml := "numbers:\n  \"" + number + "\":\n    next: {dial: \"+14155550000\"}\n"
	for _, l := range more {
		yaml += "    " + l + "\n"
	}
	if err := os.WriteFile(file, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return file
}

// metric reads one sample of the server's /metrics, such as
// "stickycalls_outbox_depth"; -1 when absent.
func (s *server) metric(name string) float64 {
	s.t.Helper()
	resp, err := http.Get(s.base + "/metrics")
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + ` (\S+)$`).FindSubmatch(body)
	if m == nil {
		return -1
	}
	var v float64
	if _, err := fmt.Sscan(string(m[1]), &v); err != nil {
		s.t.Fatal(err)
	}
	return v
}

// With Redis frozen (SIGSTOP), Twilio's completed callback still gets 204
// within the webhook deadline: the completion waits in the local outbox and
// is applied once Redis is back, as of the time the callback arrived.
func TestStatusOutboxRedisPaused(t *testing.T) {
	t.Parallel()
	r := redistest.Durable(t, "always")
	const tok, number, from = "outbox0token", "+18005550100", "+14155557020"
	addr := freeAddr(t)
	public := "http://" + addr
	env := map[string]string{"STICKYCALLS_ADDR": addr, "STICKYCALLS_CONFIG": dialConfig(t, number), "TWILIO_AUTH_TOKEN": tok,
		"STICKYCALLS_PUBLIC_URL": public, "STICKYCALLS_REDIS_URL": "redis://" + r.Addr() + "/0?" + redisTimeouts}
	s := startServer(t, env)
	s.key = createKey(t, env, "prod")
	sid := "CA" + strings.Repeat("7", 32)
	call := newTwilioCall(t, tok, public, sid, from, number)
	call.post(addr, "/voice/incoming")

	r.Pause()
	arrived := time.Now().UTC()
	call.form.Set("CallStatus", "completed")
	call.form.Set("CallDuration", "42")
	call.post(addr, "/voice/status") // fails the test on anything but 2xx
	if took := time.Since(arrived); took > 3*time.Second {
		t.Errorf("status callback with Redis frozen took %v, want the webhook deadline", took)
	}
	if d := s.metric("stickycalls_outbox_depth"); d != 1 {
		t.Errorf("stickycalls_outbox_depth = %v with Redis frozen, want 1", d)
	}
	time.Sleep(1500 * time.Millisecond) // the outbox tries, and fails, meanwhile
	r.Resume()

	deadline := time.Now().Add(10 * time.Second)
	var got map[string]any
	for {
		var code int
		code, _, got = s.do("GET", "/v1/calls/"+sid, "")
		if code == 200 && got["status"] == "completed" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET /v1/calls/%s 10 s after Redis resumed = %d %v, want completed", sid, code, got)
		}
		time.Sleep(100 * time.Millisecond)
	}
	end, _ := time.Parse(time.RFC3339, got["call_end"].(string))
	if end.Before(arrived.Truncate(time.Second)) || end.After(arrived.Add(2*time.Second)) || got["duration_seconds"] != 42.0 {
		t.Errorf("completion = call_end %v, duration %v; want the callback's arrival %v and Twilio's 42 s", got["call_end"], got["duration_seconds"], arrived)
	}
	ref, _ := got["customer_ref"].(string)
	if code, _, c := s.do("GET", "/v1/customers/"+ref, ""); code != 200 {
		t.Errorf("GET /v1/customers/%s = %d %v, want the new caller's customer, linked by the completion", ref, code, c)
	}
	// The entry leaves the outbox, and the gauge drops, just after the
	// completion it held is applied: wait for it.
	for deadline := time.Now().Add(10 * time.Second); s.metric("stickycalls_outbox_depth") != 0; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("stickycalls_outbox_depth = %v 10 s after applying, want 0", s.metric("stickycalls_outbox_depth"))
		}
	}
}

// Behind a load balancer each webhook of a call may reach another
// instance: two servers on one Redis take one call's webhooks in turn (the
// confirm question, asked again on the other instance, answered on the
// first; the dial's outcome; the completion) and end up as one would.
func TestVoiceTwoInstancesAlternate(t *testing.T) {
	t.Parallel()
	r := redistest.Durable(t, "always")
	const tok, number, from = "alternate0token", "+18005550100", "+14155557030"
	public := "https://calls.example.com"
	env := map[string]string{"STICKYCALLS_CONFIG": dialConfig(t, number, `unanswered: {message: "We will call you back."}`), "TWILIO_AUTH_TOKEN": tok,
		"STICKYCALLS_PUBLIC_URL": public, "STICKYCALLS_REDIS_URL": "redis://" + r.Addr() + "/0?" + redisTimeouts}
	var addrs [2]string
	var servers [2]*server
	for i := range addrs {
		addrs[i] = freeAddr(t)
		e := map[string]string{"STICKYCALLS_ADDR": addrs[i]}
		for k, v := range env {
			e[k] = v
		}
		servers[i] = launch(t, e)
	}
	a := servers[0]
	a.key = createKey(t, env, "prod")
	// A caller remembered by name on a line of unknown type: the next call
	// is asked to confirm.
	if code, _, m := a.do("POST", "/v1/calls/start", `{"call_id":"alt_1","identity_hints":{"ani":"`+from+`"},"telco":{"line_type":"unknown"}}`); code != 200 {
		t.Fatalf("start = %d %v", code, m)
	}
	if code, _, m := a.do("POST", "/v1/calls/end", `{"call_id":"alt_1","variables":{"name":"Ada"}}`); code != 200 {
		t.Fatalf("end = %d %v", code, m)
	}

	sid := "CA" + strings.Repeat("6", 32)
	call := newTwilioCall(t, tok, public, sid, from, number)
	if twiml := call.post(addrs[0], "/voice/incoming"); !strings.Contains(twiml, "<Gather") || !strings.Contains(twiml, "Ada") {
		t.Fatalf("incoming on A = %s, want the confirm question", twiml)
	}
	call.form.Set("SpeechResult", "Sorry, what?")
	call.form.Set("Confidence", "0.9")
	if twiml := call.post(addrs[1], "/voice/confirm"); !strings.Contains(twiml, "/voice/confirm?attempt=2") {
		t.Fatalf("unclear answer on B = %s, want the question asked again", twiml)
	}
	call.form.Set("SpeechResult", "Yes, this is Ada.")
	if twiml := call.post(addrs[0], "/voice/confirm?attempt=2"); !strings.Contains(twiml, "Welcome back, Ada!") || !strings.Contains(twiml, "/voice/dial-status") {
		t.Fatalf("yes on A = %s, want the reuse greeting and the dial", twiml)
	}
	call.form.Del("SpeechResult")
	call.form.Del("Confidence")
	call.form.Set("DialCallStatus", "no-answer")
	if twiml := call.post(addrs[1], "/voice/dial-status"); !strings.Contains(twiml, "We will call you back.") {
		t.Errorf("no-answer on B = %s, want the number's unanswered message", twiml)
	}
	call.form.Del("DialCallStatus")
	call.form.Set("CallStatus", "completed")
	call.form.Set("CallDuration", "35")
	call.post(addrs[0], "/voice/status")

	code, _, got := a.do("GET", "/v1/calls/"+sid, "")
	id, _ := got["identity"].(map[string]any)
	if code != 200 || got["status"] != "completed" || got["dial_status"] != "no-answer" || id["recommendation"] != "reuse" {
		t.Errorf("GET /v1/calls/%s = %d %v; want completed, dial_status no-answer, reuse", sid, code, got)
	}
}
