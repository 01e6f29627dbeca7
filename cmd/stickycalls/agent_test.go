package main

import (
	"bufio"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/stickycalls/stickycalls/context/redistest"
	"github.com/stickycalls/stickycalls/voice"
)

// python is the interpreter that has Debian's python3-websockets (a
// pyenv shim first on the PATH may not).
func python(t *testing.T) string {
	t.Helper()
	for _, p := range []string{"/usr/bin/python3", "python3"} {
		if exec.Command(p, "-c", "import websockets").Run() == nil {
			return p
		}
	}
	t.Fatal("no python3 with the websockets module: apt-get install -y python3-websockets (.ci/run does)")
	return ""
}

// The README's agent (examples/agent.py) against the real server: it gets
// the caller's context, sends a sentence of 2,000 audio frames at once,
// which reach Twilio whole and in order, saves the call in-band and hangs
// up, after which the after-stream answer hangs up too.
func TestReadmeAgent(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	example, err := os.ReadFile("../../examples/agent.py")
	if err != nil {
		t.Fatal(err)
	}
	code := strings.TrimSpace(string(example[strings.Index(string(example), "import asyncio"):]))
	if !strings.Contains(string(readme), code) {
		t.Error("README.md does not show examples/agent.py as it is")
	}
	agentAddr := freeAddr(t)
	port := agentAddr[strings.LastIndex(agentAddr, ":")+1:]
	ctx, cancel := context.WithCancel(t.Context())
	cmd := exec.CommandContext(ctx, python(t), "examples/agent.py", port)
	cmd.Dir = "../.."
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); cmd.Wait() })
	lines := make(chan string, 16)
	go func() {
		defer close(lines)
		for sc := bufio.NewScanner(out); sc.Scan(); {
			lines <- sc.Text()
		}
	}()
	expectLine(t, lines, "listening")

	const tok, number, from = "readme0agent0token", "+18005550100", "+14155557001"
	dir := t.TempDir()
	config := filepath.Join(dir, "config.yaml")
	yaml := "numbers:\n  \"" + number + "\":\n    next: {stream: \"ws://" + agentAddr + "\"}\n"
	if err := os.WriteFile(config, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	public := "http://" + addr
	startServer(t, map[string]string{"STICKYCALLS_ADDR": addr, "STICKYCALLS_CONFIG": config, "TWILIO_AUTH_TOKEN": tok, "STICKYCALLS_PUBLIC_URL": public})
	c := &caller{http: &http.Client{Timeout: 5 * time.Second}, base: public, public: public, token: tok, out: io.Discard}
	form := url.Values{"CallSid": {"CA" + strings.Repeat("7", 32)}, "AccountSid": {"AC" + strings.Repeat("0", 32)},
		"From": {from}, "To": {number}, "CallStatus": {"ringing"}, "Direction": {"inbound"}}
	twiml, err := c.post(ctx, "/voice/incoming", form)
	if err != nil {
		t.Fatal(err)
	}
	params := streamParams(t, twiml)

	h := http.Header{"X-Twilio-Signature": {voice.Sign(tok, "wss://"+addr+"/voice/stream", nil)}}
	tw, _, err := websocket.DefaultDialer.Dial("ws://"+addr+"/voice/stream", h)
	if err != nil {
		t.Fatal(err)
	}
	defer tw.Close()
	p, _ := json.Marshal(params)
	start := `{"event":"start","sequenceNumber":"1","streamSid":"MZ1","start":{"accountSid":"` + form.Get("AccountSid") +
		`","streamSid":"MZ1","callSid":"` + form.Get("CallSid") + `","tracks":["inbound"],"customParameters":` + string(p) + `}}`
	for _, f := range []string{`{"event":"connected","protocol":"Call","version":"1.0.0"}`, start} {
		if err := tw.WriteMessage(websocket.TextMessage, []byte(f)); err != nil {
			t.Fatal(err)
		}
	}
	expectLine(t, lines, "caller: new caller ignore")
	tw.SetReadDeadline(time.Now().Add(20 * time.Second))
	media := 0
	for {
		_, msg, err := tw.ReadMessage()
		var ce *websocket.CloseError
		if errors.As(err, &ce) {
			if ce.Code != websocket.CloseNormalClosure {
				t.Errorf("Twilio's socket closed with %d, want %d", ce.Code, websocket.CloseNormalClosure)
			}
			break
		}
		if err != nil {
			t.Fatalf("after %d media frames: %v", media, err)
		}
		var f struct{ Event string }
		if json.Unmarshal(msg, &f) == nil && f.Event == "media" {
			media++
		}
	}
	if media != 2000 {
		t.Errorf("Twilio got %d of the agent's 2000 media frames", media)
	}
	expectLine(t, lines, "saved: cust_")
	after, err := c.post(ctx, "/voice/after-stream", form)
	if err != nil || !strings.Contains(after, "<Hangup") {
		t.Errorf("after-stream = %s, %v; want <Hangup/> as the agent asked", after, err)
	}
}

// expectLine waits for a line of the agent's output that starts with want.
func expectLine(t *testing.T, lines <-chan string, want string) {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("the agent exited before printing %q", want)
			}
			if strings.HasPrefix(l, want) {
				return
			}
		case <-deadline:
			t.Fatalf("the agent did not print %q", want)
		}
	}
}

// streamParams reads the <Parameter>s of the TwiML's <Stream>.
func streamParams(t *testing.T, twiml string) map[string]string {
	t.Helper()
	var doc struct {
		Connect struct {
			Stream struct {
				Params []struct {
					Name  string `xml:"name,attr"`
					Value string `xml:"value,attr"`
				} `xml:"Parameter"`
			} `xml:"Stream"`
		} `xml:"Connect"`
	}
	if err := xml.Unmarshal([]byte(twiml), &doc); err != nil || len(doc.Connect.Stream.Params) == 0 {
		t.Fatalf("no <Stream> parameters in %s (%v)", twiml, err)
	}
	out := map[string]string{}
	for _, p := range doc.Connect.Stream.Params {
		out[p.Name] = p.Value
	}
	return out
}

// With Redis hung (SIGSTOP) after the call was answered, a signed stream
// still reaches the number's agent through the real server: the relay needs
// no store to connect, and tells the agent the context is missing.
func TestStreamRedisPaused(t *testing.T) {
	t.Parallel()
	r := redistest.Durable(t, "always")
	agents := make(chan *websocket.Conn, 1)
	var up websocket.Upgrader
	fake := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if c, err := up.Upgrade(w, req, nil); err == nil {
			agents <- c
		}
	}))
	defer fake.Close()

	const tok, number = "paused0redis0token", "+18005550100"
	config := filepath.Join(t.TempDir(), "config.yaml")
	yaml := "numbers:\n  \"" + number + "\":\n    next: {stream: \"ws://" + strings.TrimPrefix(fake.URL, "http://") + "\"}\n"
	if err := os.WriteFile(config, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	public := "http://" + addr
	startServer(t, map[string]string{"STICKYCALLS_ADDR": addr, "STICKYCALLS_CONFIG": config, "TWILIO_AUTH_TOKEN": tok,
		"STICKYCALLS_PUBLIC_URL": public, "STICKYCALLS_REDIS_URL": "redis://" + r.Addr() + "/0?" + redisTimeouts})
	c := &caller{http: &http.Client{Timeout: 5 * time.Second}, base: public, public: public, token: tok, out: io.Discard}
	form := url.Values{"CallSid": {"CA" + strings.Repeat("8", 32)}, "AccountSid": {"AC" + strings.Repeat("0", 32)},
		"From": {"+14155557002"}, "To": {number}, "CallStatus": {"ringing"}, "Direction": {"inbound"}}
	twiml, err := c.post(t.Context(), "/voice/incoming", form)
	if err != nil {
		t.Fatal(err)
	}
	params := streamParams(t, twiml)

	r.Pause()
	defer r.Resume()
	h := http.Header{"X-Twilio-Signature": {voice.Sign(tok, "wss://"+addr+"/voice/stream", nil)}}
	tw, _, err := websocket.DefaultDialer.Dial("ws://"+addr+"/voice/stream", h)
	if err != nil {
		t.Fatal(err)
	}
	defer tw.Close()
	p, _ := json.Marshal(params)
	start := `{"event":"start","sequenceNumber":"1","streamSid":"MZ2","start":{"accountSid":"` + form.Get("AccountSid") +
		`","streamSid":"MZ2","callSid":"` + form.Get("CallSid") + `","tracks":["inbound"],"customParameters":` + string(p) + `}}`
	for _, f := range []string{`{"event":"connected","protocol":"Call","version":"1.0.0"}`, start} {
		if err := tw.WriteMessage(websocket.TextMessage, []byte(f)); err != nil {
			t.Fatal(err)
		}
	}
	var ag *websocket.Conn
	select {
	case ag = <-agents:
	case <-time.After(15 * time.Second):
		t.Fatal("with Redis paused the relay did not reach the agent")
	}
	defer ag.Close()
	ag.SetReadDeadline(time.Now().Add(10 * time.Second))
	var got struct {
		Start struct {
			CustomParameters map[string]string `json:"customParameters"`
		} `json:"start"`
	}
	for got.Start.CustomParameters == nil {
		_, msg, err := ag.ReadMessage()
		if err != nil {
			t.Fatalf("agent read: %v", err)
		}
		json.Unmarshal(msg, &got)
	}
	if p := got.Start.CustomParameters; p["stickycalls_degraded"] != "true" || p["recommendation"] != "ignore" || p["from"] != "+14155557002" {
		t.Errorf("start.customParameters with Redis paused = %v, want degraded, ignore and the caller's number", p)
	}
}

// Behind a load balancer each step of a streamed call may reach another
// instance: two servers on one Redis. A second stream of the call on the
// other instance is refused (the lease is in the store), and the agent's
// hang-up, taken by the instance that relays the stream, is followed by
// the other instance's after-stream answer.
func TestStreamTwoInstances(t *testing.T) {
	t.Parallel()
	r := redistest.Durable(t, "always")
	agents := make(chan *websocket.Conn, 2)
	var up websocket.Upgrader
	fake := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if c, err := up.Upgrade(w, req, nil); err == nil {
			agents <- c
		}
	}))
	defer fake.Close()
	const tok, number = "two0instances0token", "+18005550100"
	config := filepath.Join(t.TempDir(), "config.yaml")
	yaml := "numbers:\n  \"" + number + "\":\n    next: {stream: \"ws://" + strings.TrimPrefix(fake.URL, "http://") + "\"}\n    fallback: {dial: \"+14155550000\"}\n"
	if err := os.WriteFile(config, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	// One public URL, as behind a load balancer: both instances check
	// signatures against it.
	public := "https://calls.example.com"
	var addrs [2]string
	for i := range addrs {
		addrs[i] = freeAddr(t)
		launch(t, map[string]string{"STICKYCALLS_ADDR": addrs[i], "STICKYCALLS_CONFIG": config, "TWILIO_AUTH_TOKEN": tok,
			"STICKYCALLS_PUBLIC_URL": public, "STICKYCALLS_REDIS_URL": "redis://" + r.Addr() + "/0?" + redisTimeouts})
	}
	instance := func(i int) *caller {
		return &caller{http: &http.Client{Timeout: 5 * time.Second}, base: "http://" + addrs[i], public: public, token: tok, out: io.Discard}
	}
	form := url.Values{"CallSid": {"CA" + strings.Repeat("9", 32)}, "AccountSid": {"AC" + strings.Repeat("0", 32)},
		"From": {"+14155557003"}, "To": {number}, "CallStatus": {"ringing"}, "Direction": {"inbound"}}
	twiml, err := instance(0).post(t.Context(), "/voice/incoming", form)
	if err != nil {
		t.Fatal(err)
	}
	p, _ := json.Marshal(streamParams(t, twiml))
	start := `{"event":"start","sequenceNumber":"1","streamSid":"MZ3","start":{"accountSid":"` + form.Get("AccountSid") +
		`","streamSid":"MZ3","callSid":"` + form.Get("CallSid") + `","tracks":["inbound"],"customParameters":` + string(p) + `}}`
	stream := func(i int) *websocket.Conn {
		h := http.Header{"X-Twilio-Signature": {voice.Sign(tok, "wss://calls.example.com/voice/stream", nil)}}
		tw, _, err := websocket.DefaultDialer.Dial("ws://"+addrs[i]+"/voice/stream", h)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { tw.Close() })
		for _, f := range []string{`{"event":"connected","protocol":"Call","version":"1.0.0"}`, start} {
			if err := tw.WriteMessage(websocket.TextMessage, []byte(f)); err != nil {
				t.Fatal(err)
			}
		}
		return tw
	}
	closeCode := func(c *websocket.Conn) int {
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		for {
			_, _, err := c.ReadMessage()
			var ce *websocket.CloseError
			if errors.As(err, &ce) {
				return ce.Code
			}
			if err != nil {
				return -1
			}
		}
	}

	first := stream(1)
	var ag *websocket.Conn
	select {
	case ag = <-agents:
	case <-time.After(10 * time.Second):
		t.Fatal("the first stream did not reach the agent")
	}
	defer ag.Close()
	if code := closeCode(stream(0)); code != websocket.ClosePolicyViolation {
		t.Errorf("a second stream of the call on the other instance closed with %d, want %d", code, websocket.ClosePolicyViolation)
	}
	if err := ag.WriteMessage(websocket.TextMessage, []byte(`{"event":"stickycalls.hangup"}`)); err != nil {
		t.Fatal(err)
	}
	if code := closeCode(first); code != websocket.CloseNormalClosure {
		t.Errorf("the stream after the agent's hang-up closed with %d, want %d", code, websocket.CloseNormalClosure)
	}
	after, err := instance(0).post(t.Context(), "/voice/after-stream", form)
	if err != nil || !strings.Contains(after, "<Hangup") || strings.Contains(after, "<Dial") {
		t.Errorf("the other instance's after-stream = %s, %v; want <Hangup/> as the agent asked", after, err)
	}
}
