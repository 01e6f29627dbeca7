package main

import (
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stickycalls/stickycalls/context/redistest"
)

// TestRedisOutage takes Redis away from a running server and gives it back:
// meanwhile requests are refused promptly with 503 and Retry-After, never
// half-done, and /readyz says so; afterwards the server recovers by itself
// and the refused end, retried, applies once.
func TestRedisOutage(t *testing.T) {
	t.Parallel()
	r := redistest.Durable(t, "always")
	s := startServer(t, map[string]string{"STICKYCALLS_REDIS_URL": "redis://" + r.Addr() + "/0?" + redisTimeouts})

	if a := s.exchange("GET", "/readyz", ""); a.err != nil || a.status != http.StatusOK {
		t.Fatalf("/readyz with Redis up = %v, want 200", a)
	}
	if a := s.exchange("POST", "/v1/calls/start", `{"call_id":"out_1","identity_hints":{"ani":"+14155550301"}}`); a.err != nil || a.status != http.StatusOK {
		t.Fatalf("start with Redis up = %v, want 200", a)
	}
	end := `{"call_id":"out_1","customer_ref":"cust_out","intent":"billing","intent_status":"open","variables":{"name":"Ada","plan":"gold"}}`

	r.Kill()
	for _, req := range []struct{ path, body string }{
		{"/v1/calls/start", `{"call_id":"out_2","identity_hints":{"ani":"+14155550302"}}`},
		{"/v1/calls/end", end},
	} {
		// crashClient's timeout turns a hang into an error.
		a := s.exchange("POST", req.path, req.body)
		if a.err != nil {
			t.Fatalf("%s with Redis down: %v, want a prompt 503", req.path, a.err)
		}
		var body struct {
			Error     string `json:"error"`
			Message   string `json:"message"`
			RequestID string `json:"request_id"`
		}
		if err := json.Unmarshal(a.body, &body); err != nil || a.status != http.StatusServiceUnavailable ||
			body.Error != "Service Unavailable" || body.Message == "" || body.RequestID == "" {
			t.Errorf("%s with Redis down = %v, want 503 with the JSON error body", req.path, a)
		}
		if a.header.Get("Retry-After") == "" {
			t.Errorf("%s with Redis down: no Retry-After header", req.path)
		}
	}
	if a := s.exchange("GET", "/readyz", ""); a.err != nil || a.status != http.StatusServiceUnavailable {
		t.Errorf("/readyz with Redis down = %v, want 503", a)
	}

	r.Restart()
	s.waitReady(t, 20*time.Second)
	if a := s.exchange("POST", "/v1/calls/start", `{"call_id":"out_3","identity_hints":{"ani":"+14155550303"}}`); a.err != nil || a.status != http.StatusOK {
		t.Errorf("start after the restart = %v, want 200", a)
	}
	if a := s.exchange("POST", "/v1/calls/end", `{"call_id":"out_3","customer_ref":"cust_out3","intent":"billing","intent_status":"open"}`); a.err != nil || a.status != http.StatusOK {
		t.Errorf("end after the restart = %v, want 200", a)
	}

	// The refused end had written nothing, so its retry applies it, once.
	if a := s.exchange("GET", "/v1/customers/cust_out", ""); a.err != nil || a.status != http.StatusNotFound {
		t.Errorf("after the refused end cust_out = %v, want 404", a)
	}
	first := s.exchange("POST", "/v1/calls/end", end)
	if first.err != nil || first.status != http.StatusOK || first.header.Get("Idempotent-Replayed") != "" {
		t.Fatalf("retried end = %v (Idempotent-Replayed %q), want 200, not a replay", first, first.header.Get("Idempotent-Replayed"))
	}
	again := s.exchange("POST", "/v1/calls/end", end)
	if again.err != nil || again.status != http.StatusOK || again.header.Get("Idempotent-Replayed") != "true" || string(again.body) != string(first.body) {
		t.Errorf("end sent again = %v, want 200 replaying %s", again, first.body)
	}
	if state, count, got := s.stateOfRef("cust_out", "Ada"); state != custFull || count != 1 {
		t.Errorf("cust_out after the retried end = %v, want billing with attempt_count 1, name Ada and plan gold", got)
	}
}

// TestRedisHang freezes Redis (SIGSTOP: connections stay open, nothing
// answers): requests are refused with 503 once the Redis timeouts pass,
// never left hanging, and the server recovers when Redis does.
func TestRedisHang(t *testing.T) {
	t.Parallel()
	r := redistest.Durable(t, "always")
	// A short lease: a request that timed out against the frozen Redis may
	// still run when Redis wakes, and its lease then holds the call.
	s := startServer(t, map[string]string{"STICKYCALLS_REDIS_URL": "redis://" + r.Addr() + "/0?" + redisTimeouts, "STICKYCALLS_IDEMPOTENCY_LEASE": "2s"})
	if a := s.exchange("POST", "/v1/calls/start", `{"call_id":"hang_1","identity_hints":{"ani":"+14155550401"}}`); a.err != nil || a.status != http.StatusOK {
		t.Fatalf("start with Redis up = %v, want 200", a)
	}
	end := `{"call_id":"hang_1","customer_ref":"cust_hang","intent":"billing","intent_status":"open","variables":{"name":"Ada","plan":"gold"}}`

	r.Pause()
	for _, req := range []struct{ method, path, body string }{
		{"POST", "/v1/calls/start", `{"call_id":"hang_2","identity_hints":{"ani":"+14155550402"}}`},
		{"POST", "/v1/calls/end", end},
		{"GET", "/readyz", ""},
	} {
		// crashClient's timeout (5 s) turns a hang into an error.
		a := s.exchange(req.method, req.path, req.body)
		if a.err != nil || a.status != http.StatusServiceUnavailable {
			t.Errorf("%s with Redis hung = %v, want a 503 within the Redis timeouts", req.path, a)
		} else if req.method == "POST" && a.header.Get("Retry-After") == "" {
			t.Errorf("%s with Redis hung: no Retry-After header", req.path)
		}
	}
	r.Resume()
	s.waitReady(t, 20*time.Second)

	first := s.until(10*time.Second, []int{http.StatusServiceUnavailable, http.StatusConflict}, "POST", "/v1/calls/end", end)
	if first.err != nil || first.status != http.StatusOK || first.header.Get("Idempotent-Replayed") != "" {
		t.Fatalf("retried end = %v, want 200, not a replay", first)
	}
	if state, count, got := s.stateOfRef("cust_hang", "Ada"); state != custFull || count != 1 {
		t.Errorf("cust_hang after the retried end = %v, want billing with attempt_count 1", got)
	}
}

// A Redis that does not answer yet when the service starts (docker-compose
// starts both at once) is waited for: the service comes up once it
// answers, having logged each attempt. With no wait allowed it stops at
// once, saying why.
func TestRedisNotReadyAtStart(t *testing.T) {
	t.Parallel()
	r := redistest.Durable(t, "always")
	url := "redis://" + r.Addr() + "/0?" + redisTimeouts
	r.Pause()
	resumed := make(chan struct{})
	go func() {
		defer close(resumed)
		time.Sleep(1500 * time.Millisecond)
		r.Resume()
	}()
	s := startServer(t, map[string]string{"STICKYCALLS_REDIS_URL": url})
	<-resumed
	if !strings.Contains(s.out.String(), "the store does not answer yet; trying again") {
		t.Errorf("no log of the attempts while Redis was paused:\n%s", s.out.String())
	}
	if a := s.exchange("POST", "/v1/calls/start", `{"call_id":"late_1","identity_hints":{"ani":"+14155550331"}}`); a.err != nil || a.status != http.StatusOK {
		t.Errorf("start once Redis answered = %v, want 200", a)
	}

	r.Pause()
	defer r.Resume()
	began := time.Now()
	err := run(t.Context(), nil, func(k string) string {
		return map[string]string{"STICKYCALLS_REDIS_URL": url, "STICKYCALLS_STORE_STARTUP_WAIT": "1ms", "STICKYCALLS_ADDR": freeAddr(t),
			"STICKYCALLS_DATA": filepath.Join(t.TempDir(), "x.db")}[k]
	}, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "unavailable") || time.Since(began) > 5*time.Second {
		t.Errorf("start with Redis paused and no wait = %v after %v, want a prompt store-unavailable error", err, time.Since(began))
	}
}
