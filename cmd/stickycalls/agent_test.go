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

	const tok, number = "readme0agent0token", "+18005550100"
	addr := freeAddr(t)
	public := "http://" + addr
	startServer(t, map[string]string{"STICKYCALLS_ADDR": addr, "STICKYCALLS_CONFIG": streamingConfig(t, number, agentAddr),
		"TWILIO_AUTH_TOKEN": tok, "STICKYCALLS_PUBLIC_URL": public})
	call := newTwilioCall(t, tok, public, "CA"+strings.Repeat("7", 32), "+14155557001", number)
	tw := call.stream(addr, call.post(addr, "/voice/incoming"))
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
	if after := call.post(addr, "/voice/after-stream"); !strings.Contains(after, "<Hangup") {
		t.Errorf("after-stream = %s, want <Hangup/> as the agent asked", after)
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
	agentAddr, agents := fakeAgent(t)
	const tok, number = "paused0redis0token", "+18005550100"
	addr := freeAddr(t)
	public := "http://" + addr
	startServer(t, map[string]string{"STICKYCALLS_ADDR": addr, "STICKYCALLS_CONFIG": streamingConfig(t, number, agentAddr), "TWILIO_AUTH_TOKEN": tok,
		"STICKYCALLS_PUBLIC_URL": public, "STICKYCALLS_REDIS_URL": "redis://" + r.Addr() + "/0?" + redisTimeouts})
	call := newTwilioCall(t, tok, public, "CA"+strings.Repeat("8", 32), "+14155557002", number)
	twiml := call.post(addr, "/voice/incoming")

	r.Pause()
	defer r.Resume()
	call.stream(addr, twiml)
	ag := nextAgent(t, agents)
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
	agentAddr, agents := fakeAgent(t)
	const tok, number = "two0instances0token", "+18005550100"
	config := streamingConfig(t, number, agentAddr, `fallback: {dial: "+14155550000"}`)
	// One public URL, as behind a load balancer: both instances check
	// signatures against it.
	public := "https://calls.example.com"
	var addrs [2]string
	for i := range addrs {
		addrs[i] = freeAddr(t)
		launch(t, map[string]string{"STICKYCALLS_ADDR": addrs[i], "STICKYCALLS_CONFIG": config, "TWILIO_AUTH_TOKEN": tok,
			"STICKYCALLS_PUBLIC_URL": public, "STICKYCALLS_REDIS_URL": "redis://" + r.Addr() + "/0?" + redisTimeouts})
	}
	call := newTwilioCall(t, tok, public, "CA"+strings.Repeat("9", 32), "+14155557003", number)
	twiml := call.post(addrs[0], "/voice/incoming")

	first := call.stream(addrs[1], twiml)
	ag := nextAgent(t, agents)
	if code := closedWith(call.stream(addrs[0], twiml)); code != websocket.ClosePolicyViolation {
		t.Errorf("a second stream of the call on the other instance closed with %d, want %d", code, websocket.ClosePolicyViolation)
	}
	if err := ag.WriteMessage(websocket.TextMessage, []byte(`{"event":"stickycalls.hangup"}`)); err != nil {
		t.Fatal(err)
	}
	if code := closedWith(first); code != websocket.CloseNormalClosure {
		t.Errorf("the stream after the agent's hang-up closed with %d, want %d", code, websocket.CloseNormalClosure)
	}
	if after := call.post(addrs[0], "/voice/after-stream"); !strings.Contains(after, "<Hangup") || strings.Contains(after, "<Dial") {
		t.Errorf("the other instance's after-stream = %s, want <Hangup/> as the agent asked", after)
	}
}

// fakeAgent is an AI agent on a free port that hands each accepted socket
// to the test.
func fakeAgent(t *testing.T) (addr string, agents <-chan *websocket.Conn) {
	t.Helper()
	ch := make(chan *websocket.Conn, 4)
	var up websocket.Upgrader
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if c, err := up.Upgrade(w, req, nil); err == nil {
			ch <- c
		}
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://"), ch
}

// streamingConfig writes a configuration file whose number streams to the
// agent at agentAddr, with more YAML lines for the number.
func streamingConfig(t *testing.T, number, agentAddr string, more ...string) string {
	t.Helper()
	file := filepath.Join(t.TempDir(), "config.yaml")
	yaml := "numbers:\n  \"" + number + "\":\n    next: {stream: \"ws://" + agentAddr + "\"}\n"
	for _, l := range more {
		yaml += "    " + l + "\n"
	}
	if err := os.WriteFile(file, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return file
}

// twilioCall is a call Twilio sends to one of the servers under test.
type twilioCall struct {
	t      *testing.T
	token  string
	public string // the URL signatures are made for
	form   url.Values
}

func newTwilioCall(t *testing.T, token, public, sid, from, to string) *twilioCall {
	return &twilioCall{t: t, token: token, public: public, form: url.Values{"CallSid": {sid}, "AccountSid": {"AC" + strings.Repeat("0", 32)},
		"From": {from}, "To": {to}, "CallStatus": {"ringing"}, "Direction": {"inbound"}}}
}

// post sends a signed webhook to the server at addr and returns its TwiML.
func (tc *twilioCall) post(addr, path string) string {
	tc.t.Helper()
	c := &caller{http: &http.Client{Timeout: 5 * time.Second}, base: "http://" + addr, public: tc.public, token: tc.token, out: io.Discard}
	twiml, err := c.post(tc.t.Context(), path, tc.form)
	if err != nil {
		tc.t.Fatal(err)
	}
	return twiml
}

// stream opens the call's media stream at addr, as Twilio does, with the
// <Stream> parameters of twiml, and sends connected and start.
func (tc *twilioCall) stream(addr, twiml string) *websocket.Conn {
	tc.t.Helper()
	wss := "wss://" + strings.TrimPrefix(strings.TrimPrefix(tc.public, "https://"), "http://") + "/voice/stream"
	tw, _, err := websocket.DefaultDialer.Dial("ws://"+addr+"/voice/stream", http.Header{"X-Twilio-Signature": {voice.Sign(tc.token, wss, nil)}})
	if err != nil {
		tc.t.Fatal(err)
	}
	tc.t.Cleanup(func() { tw.Close() })
	p, _ := json.Marshal(streamParams(tc.t, twiml))
	sid := tc.form.Get("CallSid")
	start := `{"event":"start","sequenceNumber":"1","streamSid":"MZ` + sid + `","start":{"accountSid":"` + tc.form.Get("AccountSid") +
		`","streamSid":"MZ` + sid + `","callSid":"` + sid + `","tracks":["inbound"],"customParameters":` + string(p) + `}}`
	for _, f := range []string{`{"event":"connected","protocol":"Call","version":"1.0.0"}`, start} {
		if err := tw.WriteMessage(websocket.TextMessage, []byte(f)); err != nil {
			tc.t.Fatal(err)
		}
	}
	return tw
}

// nextAgent waits for the relay's next socket to the fake agent.
func nextAgent(t *testing.T, agents <-chan *websocket.Conn) *websocket.Conn {
	t.Helper()
	select {
	case ag := <-agents:
		t.Cleanup(func() { ag.Close() })
		return ag
	case <-time.After(15 * time.Second):
		t.Fatal("the relay did not reach the agent")
		return nil
	}
}

// closedWith reads c until its close frame and returns the close code, -1
// for a connection that ended otherwise.
func closedWith(c *websocket.Conn) int {
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

// Behind ngrok or any TLS proxy, with no public URL configured, a webhook
// signed for the public https URL is accepted: the URL is rebuilt from the
// proxy's headers. Startup warns how URLs are rebuilt, and a refusal logs
// the URL it checked, without the query's values.
func TestWebhookBehindProxy(t *testing.T) {
	const tok, number = "proxy0token", "+18005550100"
	config := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(config, []byte("numbers:\n  \""+number+"\":\n    next: {dial: \"+14155550000\"}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	s := startServer(t, map[string]string{"STICKYCALLS_ADDR": addr, "STICKYCALLS_CONFIG": config, "TWILIO_AUTH_TOKEN": tok})
	if !strings.Contains(s.out.String(), "STICKYCALLS_PUBLIC_URL is not set") {
		t.Error("no startup warning about the public URL")
	}
	form := newTwilioCall(t, tok, "", "CA"+strings.Repeat("6", 32), "+14155557006", number).form
	post := func(target string, headers map[string]string) int {
		req, _ := http.NewRequest("POST", "http://"+addr+"/voice/incoming?src=proxy", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("X-Twilio-Signature", voice.Sign(tok, target, form))
		for k, v := range headers {
			if k == "Host" {
				req.Host = v
			} else {
				req.Header.Set(k, v)
			}
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	public := "https://public.example/voice/incoming?src=proxy"
	for name, h := range map[string]map[string]string{
		"X-Forwarded-Proto and Host":  {"Host": "public.example", "X-Forwarded-Proto": "https"},
		"X-Forwarded-Proto and -Host": {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "public.example"},
		"Forwarded":                   {"Forwarded": `for=203.0.113.7;proto=https;host="public.example"`},
	} {
		if code := post(public, h); code != http.StatusOK {
			t.Errorf("%s: status %d, want 200", name, code)
		}
	}
	if code := post(public, nil); code != http.StatusForbidden {
		t.Errorf("no proxy headers: status %d, want 403 (the request came over http to another host)", code)
	}
	logs := s.out.String()
	if !strings.Contains(logs, `"url":"http://`+addr+`/voice/incoming?src="`) || strings.Contains(logs, "src=proxy") {
		t.Errorf("the refusal's log does not show the URL checked without its query values:\n%s", logs)
	}
}
