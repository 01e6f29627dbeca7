package main

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/stickycalls/stickycalls/context/redistest"
)

// Clients that send headers and stall their body give their connections
// back within the read deadline, and /healthz keeps answering meanwhile.
func TestStalledBodiesAreCut(t *testing.T) {
	t.Parallel()
	s := startServer(t, map[string]string{"STICKYCALLS_READ_TIMEOUT": "1s"})
	addr := strings.TrimPrefix(s.base, "http://")
	const n = 200
	conns := make([]net.Conn, 0, n)
	for range n {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		req := "POST /v1/calls/start HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + s.key +
			"\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"call_id\":"
		if _, err := c.Write([]byte(req)); err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	sent := time.Now()
	var slowest time.Duration
	for range 5 {
		began := time.Now()
		resp, err := (&http.Client{Timeout: 5 * time.Second}).Get(s.base + "/healthz")
		if err != nil {
			t.Fatalf("/healthz with %d stalled bodies: %v", n, err)
		}
		resp.Body.Close()
		slowest = max(slowest, time.Since(began))
	}
	t.Logf("/healthz with %d stalled bodies: slowest of 5 in %v", n, slowest)
	var wg sync.WaitGroup
	var mu sync.Mutex
	open := 0
	for _, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.SetReadDeadline(sent.Add(5 * time.Second))
			r := bufio.NewReader(c)
			for {
				if _, err := r.ReadByte(); err != nil {
					if ne, ok := err.(net.Error); ok && ne.Timeout() {
						mu.Lock()
						open++
						mu.Unlock()
					}
					return
				}
			}
		}()
	}
	wg.Wait()
	if open > 0 {
		t.Errorf("%d of %d connections with a stalled body still open 5 s after sending, want all closed after the 1 s read deadline", open, n)
	}
}

// Past STICKYCALLS_MAX_CONNECTIONS new connections wait, with a warning in
// the log; media streams, once upgraded, do not count.
func TestConnectionLimit(t *testing.T) {
	t.Parallel()
	agentAddr, agents := fakeAgent(t)
	const tok, number = "limit0token", "+18005550100"
	addr := freeAddr(t)
	public := "http://" + addr
	s := startServer(t, map[string]string{"STICKYCALLS_ADDR": addr, "STICKYCALLS_MAX_CONNECTIONS": "4", "STICKYCALLS_READ_TIMEOUT": "2s",
		"STICKYCALLS_CONFIG": streamingConfig(t, number, agentAddr), "TWILIO_AUTH_TOKEN": tok, "STICKYCALLS_PUBLIC_URL": public})
	healthz := func() error {
		c := &http.Client{Timeout: 500 * time.Millisecond, Transport: &http.Transport{DisableKeepAlives: true}}
		resp, err := c.Get(s.base + "/healthz")
		if err == nil {
			resp.Body.Close()
		}
		return err
	}
	for i := range 6 {
		call := newTwilioCall(t, tok, public, "CA"+strings.Repeat(string(rune('a'+i)), 32), "+1415555700"+string(rune('0'+i)), number)
		call.stream(addr, call.post(addr, "/voice/incoming"))
		nextAgent(t, agents)
	}
	http.DefaultClient.CloseIdleConnections()
	if err := healthz(); err != nil {
		t.Fatalf("/healthz with 6 media streams open and a limit of 4 connections: %v, want an answer: streams do not count", err)
	}

	idle := make([]net.Conn, 0, 4)
	for range 4 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		idle = append(idle, c)
	}
	time.Sleep(100 * time.Millisecond)
	if err := healthz(); err == nil {
		t.Error("/healthz answered with the 4 connections of the limit taken, want it to wait")
	}
	if !strings.Contains(s.out.String(), "connection limit reached") {
		t.Error("no log line says the connection limit was reached")
	}
	for _, c := range idle {
		c.Close()
	}
	deadline := time.Now().Add(5 * time.Second)
	for healthz() != nil {
		if time.Now().After(deadline) {
			t.Fatal("/healthz still waiting 5 s after the idle connections closed")
		}
	}
}

// A start and an end whose client goes away right after sending are
// finished anyway: the client's retry is a replay, not a 409 from a lease
// left behind, and the request is logged as 499, not as a server error.
func TestClientGoneWriteFinishes(t *testing.T) {
	t.Parallel()
	r := redistest.Durable(t, "always")
	s := startServer(t, map[string]string{"STICKYCALLS_REDIS_URL": "redis://" + r.Addr() + "/0?dial_timeout=1s&read_timeout=5s&write_timeout=5s"})
	admin := redis.NewClient(&redis.Options{Addr: r.Addr()})
	defer admin.Close()
	addr := strings.TrimPrefix(s.base, "http://")
	for _, req := range []struct{ path, body string }{
		{"/v1/calls/start", `{"call_id":"gone_1","identity_hints":{"ani":"+14155550801"}}`},
		{"/v1/calls/end", `{"call_id":"gone_1","customer_ref":"cust_gone","intent":"billing","intent_status":"open"}`},
	} {
		// Redis holds every command for a while, so the client is gone
		// long before the write can finish.
		if err := admin.ClientPause(t.Context(), 1500*time.Millisecond).Err(); err != nil {
			t.Fatal(err)
		}
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
			req.path, s.key, len(req.body), req.body)
		time.Sleep(200 * time.Millisecond)
		c.Close()
		time.Sleep(2 * time.Second) // the pause ends; the write finishes without its client
		code, h, m := s.do("POST", req.path, req.body)
		if code != 200 || h.Get("Idempotent-Replayed") != "true" {
			t.Errorf("retry of %s after its client went away = %d %v (Idempotent-Replayed %q), want the replay of the finished write", req.path, code, m, h.Get("Idempotent-Replayed"))
		}
		if !regexp.MustCompile(`"route":"POST ` + req.path + `","status":499`).MatchString(s.out.String()) {
			t.Errorf("no log line with status 499 for %s whose client went away:\n%s", req.path, s.out.String())
		}
	}
	if strings.Contains(s.out.String(), `"status":500`) {
		t.Errorf("a request whose client went away was logged as a server error:\n%s", s.out.String())
	}
}
