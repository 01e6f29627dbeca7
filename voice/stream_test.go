package voice_test

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"go.uber.org/goleak"

	"github.com/stickycalls/stickycalls/context/callapi"
	"github.com/stickycalls/stickycalls/context/callcontext"
	"github.com/stickycalls/stickycalls/voice"
)

// TestMain fails the package if any test leaves a goroutine behind: the
// relay must end every goroutine it starts.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const (
	accountSID = "AC11111111111111111111111111111111"
	streamSID  = "MZ00000000000000000000000000000001"
	// safety is how long a test waits for a frame before it gives up: a
	// guard against hangs, not an assertion about speed.
	safety = 10 * time.Second
)

// streamEnv is a voice service whose number streams to a fake agent.
type streamEnv struct {
	*env
	cfg      voice.Config
	reg      *prometheus.Registry
	host     string // host:port of the service
	agents   chan *websocket.Conn
	upgrades chan http.Header // the relay's upgrade requests to the agent
	agentURL string
	offset   atomic.Int64 // added to the relay's clock (stream tokens)
	later    atomic.Int64 // added to the domain service's clock (call records)
	shutdown chan struct{}
	logs     *syncBuffer
}

// newStreamEnv starts the service and a fake agent. tweak may change the
// configuration before the handlers are built.
func newStreamEnv(t *testing.T, tweak func(*voice.Config)) *streamEnv {
	t.Helper()
	se := &streamEnv{agents: make(chan *websocket.Conn, 4), upgrades: make(chan http.Header, 4), shutdown: make(chan struct{}), logs: &syncBuffer{}}
	agentURL := se.fakeAgent(t)
	se.agentURL = agentURL
	store, g := openStore(t)
	now := func() time.Time { return time.Now().Add(time.Duration(se.later.Load())) }
	calls := callcontext.NewService(store, callcontext.NoLookup{}, g, now, nil, callcontext.Durations{})
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	se.env = &env{t: t, srv: srv, store: store, calls: calls}
	se.host = strings.TrimPrefix(srv.URL, "http://")
	se.reg = prometheus.NewRegistry()
	se.cfg = voice.Config{
		PublicURL: srv.URL,
		Accounts:  []voice.Account{{Tenant: "default", AuthToken: token, PreviousAuthToken: oldToken}},
		Numbers:   map[string]voice.Number{number: {Tenant: "default", Next: voice.Action{Stream: agentURL}}},
		Deadline:  time.Second, // a loaded machine's fsync must not look like a slow store; hanging-store tests wait it out
		Greeter:   g,
		Metrics:   voice.NewMetrics(se.reg),
		Now:       func() time.Time { return time.Now().Add(time.Duration(se.offset.Load())) },
		Relay:     voice.RelayLimits{Handshake: 2 * time.Second, Idle: 5 * time.Second, Ping: 20 * time.Millisecond, Write: time.Second, Linger: time.Minute},
	}
	if tweak != nil {
		tweak(&se.cfg)
	}
	logger := zerolog.New(se.logs)
	mux.Handle("POST /voice/incoming", voice.RequireSignature(se.cfg, logger)(voice.HandleIncoming(logger, calls, se.cfg)))
	mux.Handle("POST /voice/confirm", voice.RequireSignature(se.cfg, logger)(voice.HandleConfirm(logger, calls, se.cfg)))
	mux.Handle("POST /voice/status", voice.RequireSignature(se.cfg, logger)(voice.HandleStatus(logger, calls, se.cfg)))
	mux.Handle("POST /voice/after-stream", voice.RequireSignature(se.cfg, logger)(voice.HandleAfterStream(logger, calls, se.cfg)))
	mux.Handle("GET /voice/stream", unwrapOnly(voice.HandleStream(logger, calls, se.cfg, se.shutdown)))
	mux.Handle("GET /voice/relay", unwrapOnly(voice.HandleRelay(logger, calls, se.cfg, se.shutdown)))
	return se
}

// fakeAgent starts an AI agent that hands each accepted socket to the test.
func (se *streamEnv) fakeAgent(t *testing.T) string {
	var up websocket.Upgrader
	var mu sync.Mutex
	var conns []*websocket.Conn
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case se.upgrades <- r.Header.Clone():
		default:
		}
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		mu.Lock()
		conns = append(conns, c)
		mu.Unlock()
		se.agents <- c
	}))
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
		srv.Close()
	})
	return "ws://" + strings.TrimPrefix(srv.URL, "http://")
}

// unwrapOnly hides the ResponseWriter's Hijack behind Unwrap, as httpapi's
// logging middleware does.
func unwrapOnly(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(unwrapper{w}, r)
	})
}

type unwrapper struct{ w http.ResponseWriter }

func (u unwrapper) Header() http.Header         { return u.w.Header() }
func (u unwrapper) Write(b []byte) (int, error) { return u.w.Write(b) }
func (u unwrapper) WriteHeader(status int)      { u.w.WriteHeader(status) }
func (u unwrapper) Unwrap() http.ResponseWriter { return u.w }

// call answers an incoming call and returns the <Stream> parameters.
func (se *streamEnv) call(callSid, from string) map[string]string {
	se.t.Helper()
	n := se.incoming(callSid, from)
	s, ok := n.find("Stream")
	if !ok {
		se.t.Fatalf("incoming %s: no <Stream> in %+v", callSid, n)
	}
	params := map[string]string{}
	for _, p := range s.Nodes {
		params[p.attr("name")] = p.attr("value")
	}
	return params
}

// dial opens the stream as Twilio does, signed with tok ("" for none).
func (se *streamEnv) dial(tok, signedURL string) (*websocket.Conn, *http.Response, error) {
	h := http.Header{}
	if tok != "" {
		h.Set("X-Twilio-Signature", voice.Sign(tok, signedURL, nil))
	}
	return websocket.DefaultDialer.Dial("ws://"+se.host+"/voice/stream", h)
}

// twilio opens a stream for callSid with params and sends connected and
// start.
func (se *streamEnv) twilio(callSid string, params map[string]string) *websocket.Conn {
	se.t.Helper()
	c, _, err := se.dial(token, "wss://"+se.host+"/voice/stream")
	if err != nil {
		se.t.Fatalf("dial stream: %v", err)
	}
	se.t.Cleanup(func() { c.Close() })
	send(se.t, c, connectedFrame, startFrame(callSid, params))
	return c
}

// afterStream asks what follows the call's stream, as Twilio does when
// <Connect> ends.
func (se *streamEnv) afterStream(callSid, from string) node {
	se.t.Helper()
	status, body := se.post("/voice/after-stream", token, incomingForm(callSid, from, number))
	var n node
	if err := xml.Unmarshal([]byte(body), &n); status != 200 || err != nil || n.XMLName.Local != "Response" {
		se.t.Fatalf("after-stream: %d %s (%v), want TwiML", status, body, err)
	}
	return n
}

// agent returns the next socket the relay opened to the fake agent.
func (se *streamEnv) agent() *websocket.Conn {
	se.t.Helper()
	select {
	case c := <-se.agents:
		return c
	case <-time.After(safety):
		se.t.Fatal("the relay did not dial the agent")
		return nil
	}
}

// counter reads a counter of the service's registry.
func (se *streamEnv) counter(name, label, value string) float64 {
	se.t.Helper()
	families, err := se.reg.Gather()
	if err != nil {
		se.t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == label && l.GetValue() == value {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// waitFor polls cond until it holds; it fails the test after the safety time.
func (se *streamEnv) waitFor(what string, cond func() bool) {
	se.t.Helper()
	for end := time.Now().Add(safety); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(end) {
			se.t.Fatalf("gave up waiting for %s", what)
		}
	}
}

const connectedFrame = `{"event":"connected","protocol":"Call","version":"1.0.0"}`

func startFrame(callSid string, params map[string]string) string {
	p, _ := json.Marshal(params)
	return `{"event":"start","sequenceNumber":"1","start":{"accountSid":"` + accountSID + `","streamSid":"` + streamSID +
		`","callSid":"` + callSid + `","tracks":["inbound"],"customParameters":` + string(p) +
		`,"mediaFormat":{"encoding":"audio/x-mulaw","sampleRate":8000,"channels":1}},"streamSid":"` + streamSID + `"}`
}

func send(t testing.TB, c *websocket.Conn, frames ...string) {
	t.Helper()
	for _, f := range frames {
		if err := c.WriteMessage(websocket.TextMessage, []byte(f)); err != nil {
			t.Fatalf("send %s: %v", f, err)
		}
	}
}

// recv reads n text frames.
func recv(t *testing.T, c *websocket.Conn, n int) []string {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(safety))
	var out []string
	for range n {
		_, msg, err := c.ReadMessage()
		if err != nil {
			t.Fatalf("read frame %d of %d: %v (got %q)", len(out)+1, n, err, out)
		}
		out = append(out, string(msg))
	}
	return out
}

// closeCode reads until the socket ends and returns the close code the
// peer sent, or -1 if it ended without a close frame.
func closeCode(t *testing.T, c *websocket.Conn) int {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(safety))
	for {
		_, _, err := c.ReadMessage()
		var ce *websocket.CloseError
		switch {
		case errors.As(err, &ce):
			return ce.Code
		case err != nil:
			return -1
		}
	}
}

// param reads one customParameter of a start frame.
func param(t *testing.T, frame, name string) string {
	t.Helper()
	var f struct {
		Start struct {
			CustomParameters map[string]string `json:"customParameters"`
		} `json:"start"`
	}
	if err := json.Unmarshal([]byte(frame), &f); err != nil {
		t.Fatalf("start frame %s: %v", frame, err)
	}
	return f.Start.CustomParameters[name]
}

func TestStreamTwiML(t *testing.T) {
	tests := map[string]struct {
		fallback voice.Action
		after    []string // verbs after the <Connect>'s own
	}{
		"no fallback: goodbye":    {voice.Action{}, []string{"Say", "Hangup"}},
		"dial fallback":           {voice.Action{Dial: agent}, []string{"Dial", "Number"}},
		"stream fallback refused": {voice.Action{Stream: "wss://other.example.com"}, []string{"Say", "Hangup"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			se := newStreamEnv(t, func(c *voice.Config) {
				n := c.Numbers[number]
				n.Fallback = tc.fallback
				c.Numbers[number] = n
			})
			n := se.incoming("CA8001", "+14155558001")
			want := []string{"Say", "Connect", "Stream", "Parameter", "Parameter", "Parameter", "Parameter"}
			if got := n.verbs(); !slices.Equal(got, want) {
				t.Errorf("verbs = %v, want %v (with <Connect action>, verbs after it never run)", got, want)
			}
			if c, _ := n.find("Connect"); c.attr("action") != se.srv.URL+"/voice/after-stream" {
				t.Errorf("Connect action = %q, want this service's /voice/after-stream", c.attr("action"))
			}
			if got := se.afterStream("CA8001", "+14155558001").verbs(); !slices.Equal(got, tc.after) {
				t.Errorf("after-stream verbs = %v, want %v (the fallback)", got, tc.after)
			}
			s, _ := n.find("Stream")
			if got, want := s.attr("url"), "wss://"+se.host+"/voice/stream"; got != want {
				t.Errorf("Stream url = %q, want %q", got, want)
			}
			p := se.call("CA8002", "+14155558002")
			if p["call_id"] != "CA8002" || p["from"] != "+14155558002" || p["to"] != number || !strings.Contains(p["stickycalls_token"], ".") {
				t.Errorf("Stream parameters = %v, want call_id CA8002 and a stickycalls_token", p)
			}
		})
	}
}

// Every Twilio frame reaches the agent in order, start with the caller's
// context; only media, mark and clear come back, the rest is counted.
func TestStreamRelaysInOrder(t *testing.T) {
	se := newStreamEnv(t, nil)
	params := se.call("CA9001", "+14155559001")
	tw := se.twilio("CA9001", params)
	ag := se.agent()
	media := `{"event":"media","sequenceNumber":"2","streamSid":"` + streamSID + `","media":{"track":"inbound","chunk":"1","timestamp":"5","payload":"/////w=="}}`
	dtmf := `{"event":"dtmf","sequenceNumber":"3","streamSid":"` + streamSID + `","dtmf":{"track":"inbound_track","digit":"1"}}`
	mark := `{"event":"mark","sequenceNumber":"4","streamSid":"` + streamSID + `","mark":{"name":"greeting-done"}}`
	send(t, tw, media, dtmf, mark)

	got := recv(t, ag, 5)
	if got[0] != connectedFrame || got[2] != media || got[3] != dtmf || got[4] != mark {
		t.Errorf("agent got %q, want connected, start, then media, dtmf, mark unchanged", got)
	}
	checkStart(t, se, got[1], params)

	out := []string{
		`{"event":"media","streamSid":"` + streamSID + `","media":{"payload":"f39/fw=="}}`,
		`{"event":"hello","streamSid":"` + streamSID + `"}`,
		`{"event":"mark","streamSid":"` + streamSID + `","mark":{"name":"m1"}}`,
		`not json`,
		`{"event":"stickycalls.ended"}`,
		`{"event":"clear","streamSid":"` + streamSID + `"}`,
	}
	send(t, ag, out[:3]...)
	ag.WriteMessage(websocket.BinaryMessage, []byte{1, 2, 3})
	send(t, ag, out[3:]...)
	back := recv(t, tw, 3)
	if want := []string{out[0], out[2], out[5]}; !slices.Equal(back, want) {
		t.Errorf("Twilio got %q, want %q", back, want)
	}
	dropped := se.counter("stickycalls_voice_stream_dropped_frames_total", "reason", "event") +
		se.counter("stickycalls_voice_stream_dropped_frames_total", "reason", "malformed")
	if dropped != 4 {
		t.Errorf("dropped frames = %v, want 4 (hello, stickycalls.ended, not json, binary)", dropped)
	}

	stop := `{"event":"stop","sequenceNumber":"5","streamSid":"` + streamSID + `","stop":{"accountSid":"` + accountSID + `","callSid":"CA9001"}}`
	send(t, tw, stop)
	if got := recv(t, ag, 1); got[0] != stop {
		t.Errorf("agent got %q after stop, want the stop frame", got)
	}
	ag.Close()
	se.waitFor("the stream to end", func() bool { return strings.Contains(se.logs.String(), "stream ended") })
	logs := se.logs.String()
	if !strings.Contains(logs, `"call_id":"CA9001"`) || !strings.Contains(logs, `"stream_sid":"`+streamSID+`"`) ||
		strings.Contains(logs, "4155559001") || strings.Contains(logs, "/////w==") || strings.Contains(logs, "f39/fw==") {
		t.Errorf("logs = %s, want call_id and stream_sid and no phone number or payload", logs)
	}
}

// checkStart compares the start the agent got with the one Twilio sent:
// the same but for the context parameters and the relay's token.
func checkStart(t *testing.T, se *streamEnv, got string, params map[string]string) {
	t.Helper()
	callID := params["call_id"]
	if param(t, got, "stickycalls_token") != "" || param(t, got, "call_id") != callID {
		t.Errorf("start parameters %s: want call_id kept and the token removed", got)
	}
	var ctx callapi.StartResult
	if err := json.Unmarshal([]byte(param(t, got, "stickycalls_context")), &ctx); err != nil || ctx.CallID != callID {
		t.Errorf("stickycalls_context = %q (%v), want the start response of %s", param(t, got, "stickycalls_context"), err, callID)
	}
	if ref := param(t, got, "customer_ref"); ref == "" || ref != ctx.CustomerRef || ref != se.startRef(callID) {
		t.Errorf("customer_ref = %q, want the start's %q", ref, ctx.CustomerRef)
	}
	if rec := param(t, got, "recommendation"); rec != string(ctx.Identity.Recommendation) || rec == "" {
		t.Errorf("recommendation = %q, want %q", rec, ctx.Identity.Recommendation)
	}
	var sent, relayed map[string]any
	json.Unmarshal([]byte(startFrame(callID, nil)), &sent)
	json.Unmarshal([]byte(got), &relayed)
	delete(sent["start"].(map[string]any), "customParameters")
	delete(relayed["start"].(map[string]any), "customParameters")
	if a, b := mustJSON(sent), mustJSON(relayed); a != b {
		t.Errorf("start without parameters = %s, want %s", b, a)
	}
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// agentEnd sends a stickycalls.end and returns the relay's answer.
func agentEnd(t *testing.T, ag *websocket.Conn, end string) map[string]json.RawMessage {
	t.Helper()
	send(t, ag, `{"event":"stickycalls.end","end":`+end+`}`)
	var reply map[string]json.RawMessage
	if err := json.Unmarshal([]byte(recv(t, ag, 1)[0]), &reply); err != nil {
		t.Fatal(err)
	}
	return reply
}

func TestStreamInBandEnd(t *testing.T) {
	se := newStreamEnv(t, nil)
	tw := se.twilio("CA9101", se.call("CA9101", "+14155559101"))
	ag := se.agent()
	recv(t, ag, 2) // connected, start

	bad := agentEnd(t, ag, `{"intent_status":"pending","variables":{"password":"hunter2"}}`)
	var e struct {
		Error, Message string
		Details        struct{ Issues []callapi.Issue }
	}
	json.Unmarshal(bad["error"], &e)
	if string(bad["event"]) != `"stickycalls.error"` || e.Error != "Bad Request" || len(e.Details.Issues) < 2 {
		t.Errorf("invalid end answered %s, want stickycalls.error, Bad Request, both issues", mustJSON(bad))
	}

	end := `{"variables":{"name":"Kim Lo"},"intent":"billing","intent_status":"open"}`
	for _, try := range []string{"first", "replay"} {
		ok := agentEnd(t, ag, end)
		var res callapi.EndResult
		json.Unmarshal(ok["result"], &res)
		if string(ok["event"]) != `"stickycalls.ended"` || res.CallID != "CA9101" || res.CustomerRef != se.startRef("CA9101") {
			t.Errorf("%s end answered %s, want stickycalls.ended for CA9101", try, mustJSON(ok))
		}
	}
	cust, err := se.calls.Customer(context.Background(), prod, se.startRef("CA9101"))
	if err != nil || cust.Variables["name"].Value != "Kim Lo" || len(cust.OpenIntents) != 1 {
		t.Errorf("Customer after the in-band end = %+v, %v; want name Kim Lo and one open intent", cust, err)
	}
	conflict := agentEnd(t, ag, `{"variables":{"name":"Someone Else"}}`)
	if !strings.Contains(string(conflict["error"]), `"Conflict"`) {
		t.Errorf("another body for the same call answered %s, want a Conflict error", mustJSON(conflict))
	}
	foreign := agentEnd(t, ag, `{"call_id":"CA0000"}`)
	if !strings.Contains(string(foreign["error"]), `"call_id"`) {
		t.Errorf("an end naming another call answered %s, want a call_id issue", mustJSON(foreign))
	}
	tw.Close()
	if code := closeCode(t, ag); code != websocket.CloseNormalClosure {
		t.Errorf("agent close code after Twilio went away = %d, want %d", code, websocket.CloseNormalClosure)
	}
}

// After the confirm question, the agent learns the call as it now stands:
// a yes is reuse with the customer's details, a no tells it nothing about
// the customer the caller was taken for.
func TestStreamAfterConfirm(t *testing.T) {
	for digits, want := range map[string]struct {
		recommendation string
		name           bool
	}{"1": {"reuse", true}, "2": {"ignore", false}} {
		t.Run("digits "+digits, func(t *testing.T) {
			se := newStreamEnv(t, nil)
			const ani = "+14155559901"
			se.remember("CA9900", ani, "Jane Roe", "unknown") // unknown line type: confirm
			if _, ok := se.incoming("CA9901", ani).find("Gather"); !ok {
				t.Fatal("incoming did not ask the confirm question")
			}
			code, body := se.post("/voice/confirm", token, withDigits(incomingForm("CA9901", ani, number), digits))
			var n node
			if err := xml.Unmarshal([]byte(body), &n); err != nil || code != 200 {
				t.Fatalf("confirm: %d %s", code, body)
			}
			s, _ := n.find("Stream")
			params := map[string]string{}
			for _, p := range s.Nodes {
				params[p.attr("name")] = p.attr("value")
			}
			se.twilio("CA9901", params)
			start := recv(t, se.agent(), 2)[1]
			sc := param(t, start, "stickycalls_context")
			var ctx callapi.StartResult
			json.Unmarshal([]byte(sc), &ctx)
			if param(t, start, "recommendation") != want.recommendation || string(ctx.Identity.Recommendation) != want.recommendation {
				t.Errorf("recommendation = %q, context %q; want %q", param(t, start, "recommendation"), ctx.Identity.Recommendation, want.recommendation)
			}
			if got := strings.Contains(sc, "Jane Roe"); got != want.name || (ctx.Match != nil) != want.name {
				t.Errorf("stickycalls_context = %s; want the customer's details: %v", sc, want.name)
			}
			if ref := param(t, start, "customer_ref"); ref != ctx.CustomerRef {
				t.Errorf("customer_ref = %q, context's %q; want the same", ref, ctx.CustomerRef)
			}
		})
	}
}

// Twilio's stop (also sent when a call is redirected to a human) closes
// Twilio's side and leaves the agent time to save the call, after which its
// socket is closed; it does not complete the call. Only the status callback
// does, with Twilio's duration.
func TestStreamStopThenCompleted(t *testing.T) {
	se := newStreamEnv(t, nil)
	const ani = "+14155559201"
	tw := se.twilio("CA9201", se.call("CA9201", ani))
	ag := se.agent()
	recv(t, ag, 2)
	send(t, tw, `{"event":"stop","sequenceNumber":"3","streamSid":"`+streamSID+`","stop":{"accountSid":"`+accountSID+`","callSid":"CA9201"}}`)
	if got := recv(t, ag, 1)[0]; !strings.Contains(got, `"stop"`) {
		t.Errorf("agent got %s, want stop", got)
	}
	if code := closeCode(t, tw); code != websocket.CloseNormalClosure {
		t.Errorf("Twilio close code after stop = %d, want %d", code, websocket.CloseNormalClosure)
	}
	ref := se.startRef("CA9201")
	if cust, err := se.calls.Customer(context.Background(), prod, ref); err == nil {
		t.Errorf("after stop Customer(%s) = %+v; want no completion yet (a redirect also stops the stream)", ref, cust.Links)
	}
	late := agentEnd(t, ag, `{"variables":{"name":"Al Ma"}}`)
	if string(late["event"]) != `"stickycalls.ended"` {
		t.Errorf("late end answered %s, want stickycalls.ended", mustJSON(late))
	}
	if code := closeCode(t, ag); code != websocket.CloseNormalClosure {
		t.Errorf("agent close code after the late end = %d, want %d", code, websocket.CloseNormalClosure)
	}
	// The human the call was redirected to hangs up later: Twilio's
	// completion records its status and duration.
	done := incomingForm("CA9201", ani, number)
	done.Set("CallStatus", "completed")
	done.Set("CallDuration", "342")
	if code, body := se.post("/voice/status", token, done); code != 204 {
		t.Fatalf("status completed: %d %s", code, body)
	}
	raw, err := callJSON(se.calls, "CA9201")
	var got struct {
		Status          string `json:"status"`
		CallEnd         string `json:"call_end"`
		DurationSeconds int64  `json:"duration_seconds"`
	}
	if err != nil || json.Unmarshal(raw, &got) != nil || got.Status != "completed" || got.DurationSeconds != 342 || got.CallEnd == "" {
		t.Errorf("GET /v1/calls/CA9201 after completed = %s, %v; want status completed, Twilio's 342 s and the end time", raw, err)
	}
}

func TestStreamLingerEnds(t *testing.T) {
	se := newStreamEnv(t, func(c *voice.Config) { c.Relay.Linger = 20 * time.Millisecond })
	tw := se.twilio("CA9301", se.call("CA9301", "+14155559301"))
	ag := se.agent()
	send(t, tw, `{"event":"stop","sequenceNumber":"3","streamSid":"`+streamSID+`"}`)
	recv(t, ag, 3)
	if code := closeCode(t, ag); code != websocket.CloseNormalClosure {
		t.Errorf("agent close code after the linger = %d, want %d", code, websocket.CloseNormalClosure)
	}
	se.waitFor("the completed outcome", func() bool {
		return se.counter("stickycalls_voice_streams_total", "outcome", "completed") == 1
	})
}

// An agent that hangs up mid-call, or never answers, closes Twilio's side,
// so Twilio runs the fallback after <Connect>.
func TestStreamAgentGone(t *testing.T) {
	se := newStreamEnv(t, nil)
	tw := se.twilio("CA9401", se.call("CA9401", "+14155559401"))
	ag := se.agent()
	recv(t, ag, 2)
	ag.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, "bye"), time.Now().Add(safety))
	ag.Close()
	if code := closeCode(t, tw); code != websocket.CloseNormalClosure {
		t.Errorf("Twilio close code after the agent left = %d, want %d", code, websocket.CloseNormalClosure)
	}
}

func TestStreamAgentUnreachable(t *testing.T) {
	refused := freeAddr(t)
	silent, err := net.Listen("tcp", "127.0.0.1:0") // accepts, never answers the handshake
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	for name, url := range map[string]string{"refused": "ws://" + refused, "silent": "ws://" + silent.Addr().String()} {
		t.Run(name, func(t *testing.T) {
			se := newStreamEnv(t, func(c *voice.Config) {
				c.Numbers[number] = voice.Number{Tenant: "default", Next: voice.Action{Stream: url}}
				c.Relay.Handshake = 100 * time.Millisecond
			})
			tw := se.twilio("CA9501", se.call("CA9501", "+14155559501"))
			if code := closeCode(t, tw); code != websocket.CloseTryAgainLater {
				t.Errorf("Twilio close code = %d, want %d", code, websocket.CloseTryAgainLater)
			}
		})
	}
}

func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func TestStreamSignature(t *testing.T) {
	se := newStreamEnv(t, nil)
	u := "wss://" + se.host + "/voice/stream"
	for name, tc := range map[string]struct {
		tok, url string
		want     int
	}{
		"missing":            {"", u, http.StatusForbidden},
		"wrong token":        {"another0token", u, http.StatusForbidden},
		"another path":       {token, "wss://" + se.host + "/voice/streams", http.StatusForbidden},
		"wss form":           {token, u, http.StatusSwitchingProtocols},
		"https form":         {token, "https://" + se.host + "/voice/stream", http.StatusSwitchingProtocols},
		"previous token":     {oldToken, u, http.StatusSwitchingProtocols},
		"plain http refused": {token, "http://" + se.host + "/voice/stream", http.StatusForbidden},
	} {
		c, resp, err := se.dial(tc.tok, tc.url)
		if resp == nil {
			t.Fatalf("%s: %v", name, err)
		}
		if resp.StatusCode != tc.want {
			t.Errorf("%s: status %d, want %d", name, resp.StatusCode, tc.want)
		}
		if c != nil {
			c.Close()
		}
	}
	if n := len(se.agents); n != 0 {
		t.Errorf("the agent was dialled %d times, want never", n)
	}
}

// A stream is accepted only with a fresh token for its own callSid and the
// numbers it was made for, of a streaming number.
func TestStreamRefused(t *testing.T) {
	se := newStreamEnv(t, nil)
	a := se.call("CA9601", "+14155559601")
	se.call("CA9602", "+14155559602")
	tests := []struct {
		name, callSid string
		params        map[string]string
		later, gone   time.Duration // the token's clock, the call record's clock
	}{
		{"token of another call", "CA9602", map[string]string{"call_id": "CA9602", "stickycalls_token": a["stickycalls_token"]}, 0, 0},
		{"call_id of another call", "CA9601", map[string]string{"call_id": "CA9602", "stickycalls_token": a["stickycalls_token"]}, 0, 0},
		{"no token", "CA9601", map[string]string{"call_id": "CA9601"}, 0, 0},
		{"forged token", "CA9601", map[string]string{"call_id": "CA9601", "stickycalls_token": "AAAA.99999999999"}, 0, 0},
		{"expired token", "CA9601", a, 5 * time.Hour, 0},
		{"caller's number changed", "CA9601", with(a, "from", "+14155550000"), 0, 0},
		{"number called changed", "CA9601", with(a, "to", "+18005550199"), 0, 0},
	}
	for _, tc := range tests {
		se.offset.Store(int64(tc.later))
		se.later.Store(int64(tc.gone))
		tw := se.twilio(tc.callSid, tc.params)
		if code := closeCode(t, tw); code != websocket.ClosePolicyViolation {
			t.Errorf("%s: close code %d, want %d", tc.name, code, websocket.ClosePolicyViolation)
		}
	}
	if n := len(se.agents); n != 0 {
		t.Errorf("the agent was dialled %d times, want never", n)
	}
	if got := se.counter("stickycalls_voice_streams_total", "outcome", "refused"); got != float64(len(tests)) {
		t.Errorf("refused streams = %v, want %d", got, len(tests))
	}
}

// Server shutdown sends close frames on both sides of open streams.
func TestStreamShutdown(t *testing.T) {
	se := newStreamEnv(t, nil)
	tw := se.twilio("CA9701", se.call("CA9701", "+14155559701"))
	ag := se.agent()
	recv(t, ag, 2)
	close(se.shutdown)
	if code := closeCode(t, tw); code != websocket.CloseGoingAway {
		t.Errorf("Twilio close code at shutdown = %d, want %d", code, websocket.CloseGoingAway)
	}
	if code := closeCode(t, ag); code != websocket.CloseGoingAway {
		t.Errorf("agent close code at shutdown = %d, want %d", code, websocket.CloseGoingAway)
	}
}

// An agent that stops reading fills its queue; both sides are closed.
func TestStreamSlowAgent(t *testing.T) {
	se := newStreamEnv(t, func(c *voice.Config) { c.Relay.Buffer = 4; c.Relay.Write = 200 * time.Millisecond })
	tw := se.twilio("CA9801", se.call("CA9801", "+14155559801"))
	se.agent() // never read
	big := `{"event":"media","streamSid":"` + streamSID + `","media":{"payload":"` + strings.Repeat("A", 60<<10) + `"}}`
	var wg sync.WaitGroup
	wg.Go(func() {
		for range 2000 { // far more than the socket buffers hold
			if tw.WriteMessage(websocket.TextMessage, []byte(big)) != nil {
				return
			}
		}
	})
	code := closeCode(t, tw)
	tw.Close()
	wg.Wait()
	if code != websocket.CloseInternalServerErr {
		t.Errorf("Twilio close code = %d, want %d", code, websocket.CloseInternalServerErr)
	}
	se.waitFor("the slow_agent outcome", func() bool {
		return se.counter("stickycalls_voice_streams_total", "outcome", "slow_agent") == 1
	})
}

// syncBuffer is a log sink safe for the relay's goroutines.
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
