package voice_test

import (
	"encoding/json"
	"encoding/xml"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/stickycalls/stickycalls/context/callapi"
	"github.com/stickycalls/stickycalls/voice"
)

// newRelayEnv is a voice service whose number's agent is reached over
// ConversationRelay, with fallback as the number's fallback.
func newRelayEnv(t *testing.T, fallback voice.Action) *streamEnv {
	return newStreamEnv(t, func(c *voice.Config) {
		n := c.Numbers[number]
		n.Next = voice.Action{Relay: &voice.ConversationRelay{URL: n.Next.Stream, Voice: "en-US-Journey-O", TTSProvider: "Google"}}
		n.Fallback = fallback
		n.TransferTargets = []string{agent}
		c.Numbers[number] = n
	})
}

// relayNoun finds the <ConversationRelay> of a TwiML answer and returns
// it with its parameters.
func relayNoun(t *testing.T, n node) (node, map[string]string) {
	t.Helper()
	cr, ok := n.find("ConversationRelay")
	if !ok {
		t.Fatalf("no <ConversationRelay> in %+v", n)
	}
	params := map[string]string{}
	for _, p := range cr.Nodes {
		params[p.attr("name")] = p.attr("value")
	}
	return cr, params
}

// testdata reads a file of testdata/conversation_relay.
func testdata(t testing.TB, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "conversation_relay", name))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// lines is a JSON Lines file of testdata/conversation_relay.
func lines(t testing.TB, name string) []string {
	return strings.Split(testdata(t, name), "\n")
}

// twilioRelay opens the call's ConversationRelay session as Twilio does
// and sends setup with params.
func (se *streamEnv) twilioRelay(callSid, from string, params map[string]string) *websocket.Conn {
	se.t.Helper()
	h := map[string][]string{"X-Twilio-Signature": {voice.Sign(token, "wss://"+se.host+"/voice/relay", nil)}}
	c, _, err := websocket.DefaultDialer.Dial("ws://"+se.host+"/voice/relay", h)
	if err != nil {
		se.t.Fatalf("dial /voice/relay: %v", err)
	}
	se.t.Cleanup(func() { c.Close() })
	p, _ := json.Marshal(params)
	setup := strings.NewReplacer("CALL_SID", callSid, "FROM", from, "TO", number, "ACCOUNT_SID", accountSID,
		"CUSTOM_PARAMETERS", string(p)).Replace(testdata(se.t, "setup.json"))
	send(se.t, c, setup)
	return c
}

// setupParam reads one customParameter of a setup message.
func setupParam(t *testing.T, msg, name string) string {
	t.Helper()
	var f struct {
		Type             string            `json:"type"`
		CustomParameters map[string]string `json:"customParameters"`
	}
	if err := json.Unmarshal([]byte(msg), &f); err != nil || f.Type != "setup" {
		t.Fatalf("setup message %s: %v", msg, err)
	}
	return f.CustomParameters[name]
}

// The TwiML connects the caller to /voice/relay with the tier's greeting
// as the welcomeGreeting and no <Say> before it; the confirm question
// still comes first, and the session then opens with the answer's
// greeting.
func TestRelayTwiML(t *testing.T) {
	se := newRelayEnv(t, voice.Action{})
	se.remember("CA7000", "+14155557000", "John Doe", "mobile")  // reuse
	se.remember("CA7001", "+14155557001", "Jane Roe", "unknown") // confirm

	newCaller := se.incoming("CA7100", "+14155557100")
	if got, want := newCaller.verbs(), []string{"Connect", "ConversationRelay", "Parameter", "Parameter", "Parameter", "Parameter"}; !slices.Equal(got, want) {
		t.Errorf("verbs = %v, want %v: Twilio speaks the greeting, no <Say> repeats it", got, want)
	}
	if c, _ := newCaller.find("Connect"); c.attr("action") != se.srv.URL+"/voice/after-stream" {
		t.Errorf("Connect action = %q, want /voice/after-stream", c.attr("action"))
	}
	cr, params := relayNoun(t, newCaller)
	if cr.attr("url") != "wss://"+se.host+"/voice/relay" || cr.attr("voice") != "en-US-Journey-O" || cr.attr("ttsProvider") != "Google" || cr.attr("language") != "en-US" {
		t.Errorf("ConversationRelay attributes = %+v, want this service's /voice/relay, the number's voice and the set's language", cr.Attrs)
	}
	if w := cr.attr("welcomeGreeting"); w == "" || strings.Contains(w, "Connecting") || strings.Contains(w, "John") {
		t.Errorf("new caller's welcomeGreeting = %q, want the welcome", w)
	}
	if params["call_id"] != "CA7100" || params["from"] != "+14155557100" || params["to"] != number || !strings.Contains(params["stickycalls_token"], ".") {
		t.Errorf("parameters = %v, want call_id, from, to and a stickycalls_token", params)
	}

	returning, _ := relayNoun(t, se.incoming("CA7101", "+14155557000"))
	if w := returning.attr("welcomeGreeting"); !strings.Contains(w, "John") {
		t.Errorf("returning caller's welcomeGreeting = %q, want the reuse greeting with the name", w)
	}

	for i, digits := range []string{"1", "2"} {
		sid := "CA710" + string(rune('2'+i))
		if got := se.incoming(sid, "+14155557001").verbs(); len(got) == 0 || got[0] != "Gather" || slices.Contains(got, "ConversationRelay") {
			t.Fatalf("confirm tier verbs = %v, want the question first", got)
		}
		code, body := se.post("/voice/confirm", token, withDigits(incomingForm(sid, "+14155557001", number), digits))
		var n node
		if err := xml.Unmarshal([]byte(body), &n); err != nil || code != 200 {
			t.Fatalf("confirm %s: %d %s", digits, code, body)
		}
		cr, _ := relayNoun(t, n)
		w := cr.attr("welcomeGreeting")
		if named := strings.Contains(w, "Jane"); w == "" || named != (digits == "1") || slices.Contains(n.verbs(), "Say") {
			t.Errorf("after answer %s: welcomeGreeting %q, verbs %v; want the answer's greeting (the name only after yes), in the session only", digits, w, n.verbs())
		}
	}
}

// A session through the relay: setup carries the caller's context,
// Twilio's messages and the agent's flow unchanged both ways, an in-band
// end named by "type" is saved, the agent's own end reaches Twilio and
// means hang up, and the agent is told when Twilio closes the session.
func TestRelaySession(t *testing.T) {
	se := newRelayEnv(t, voice.Action{Dial: agent})
	se.remember("CA7200", "+14155557200", "John Doe", "mobile")
	_, params := relayNoun(t, se.incoming("CA7201", "+14155557200"))
	tw := se.twilioRelay("CA7201", "+14155557200", params)
	ag := se.agent()

	setup := recv(t, ag, 1)[0]
	if setupParam(t, setup, "stickycalls_token") != "" || setupParam(t, setup, "call_id") != "CA7201" {
		t.Errorf("setup = %s, want the token removed and call_id kept", setup)
	}
	var ctx callapi.StartResult
	if err := json.Unmarshal([]byte(setupParam(t, setup, "stickycalls_context")), &ctx); err != nil || ctx.CallID != "CA7201" || ctx.Match == nil {
		t.Errorf("stickycalls_context = %s (%v), want the start of CA7201 with its match", setupParam(t, setup, "stickycalls_context"), err)
	}
	if ref := setupParam(t, setup, "customer_ref"); ref == "" || ref != se.startRef("CA7200") || setupParam(t, setup, "recommendation") != "reuse" {
		t.Errorf("customer_ref %q recommendation %q, want John Doe's and reuse", ref, setupParam(t, setup, "recommendation"))
	}
	if !strings.Contains(setup, `"sessionId":"VX00000000000000000000000000000001"`) || !strings.Contains(setup, `"callType":"PSTN"`) {
		t.Errorf("setup = %s, want Twilio's other fields kept", setup)
	}

	fromTwilio := lines(t, "from-twilio.jsonl")
	send(t, tw, fromTwilio...)
	if got := recv(t, ag, len(fromTwilio)); !slices.Equal(got, fromTwilio) {
		t.Errorf("agent got %q, want Twilio's messages unchanged, in order", got)
	}
	fromAgent := lines(t, "from-agent.jsonl")
	send(t, ag, fromAgent...)
	send(t, ag, `{"type":"hello"}`)
	if got := recv(t, tw, len(fromAgent)); !slices.Equal(got, fromAgent) {
		t.Errorf("Twilio got %q, want the agent's messages unchanged, in order", got)
	}

	send(t, ag, `{"type":"stickycalls.end","end":{"intent":"refund_request","intent_status":"resolved"}}`)
	var reply struct {
		Type   string            `json:"type"`
		Result callapi.EndResult `json:"result"`
	}
	if err := json.Unmarshal([]byte(recv(t, ag, 1)[0]), &reply); err != nil || reply.Type != "stickycalls.ended" || reply.Result.CallID != "CA7201" {
		t.Errorf("in-band end answered %+v (%v), want type stickycalls.ended for CA7201", reply, err)
	}

	end := testdata(t, "end.json")
	send(t, ag, end)
	if got := recv(t, tw, 1)[0]; got != end {
		t.Errorf("Twilio got %s, want the agent's end unchanged", got)
	}
	tw.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""))
	if got := recv(t, ag, 1)[0]; got != `{"type":"stickycalls.session_ended"}` {
		t.Errorf("after Twilio closed, the agent got %s, want stickycalls.session_ended", got)
	}
	// The agent may still save the call; once it has, its socket closes.
	send(t, ag, `{"type":"stickycalls.end","end":{"intent":"refund_request","intent_status":"resolved"}}`)
	if got := recv(t, ag, 1)[0]; !strings.Contains(got, `"stickycalls.ended"`) {
		t.Errorf("a replayed end after the session answered %s, want stickycalls.ended", got)
	}
	if code := closeCode(t, ag); code != websocket.CloseNormalClosure {
		t.Errorf("agent close code = %d, want %d", code, websocket.CloseNormalClosure)
	}
	if got := se.afterStream("CA7201", "+14155557200").verbs(); !slices.Equal(got, []string{"Hangup"}) {
		t.Errorf("after the agent's end, after-stream verbs = %v, want Hangup (not the number's fallback)", got)
	}
	cust, err := se.calls.Customer(se.t.Context(), prod, se.startRef("CA7200"))
	if err != nil || len(cust.OpenIntents) != 0 {
		t.Errorf("customer after the in-band end = %+v, %v; want the refund resolved", cust, err)
	}
	if se.counter("stickycalls_voice_stream_dropped_frames_total", "reason", "event") != 1 {
		t.Errorf("dropped frames = %v, want 1 (hello)", se.counter("stickycalls_voice_stream_dropped_frames_total", "reason", "event"))
	}
}

// In-band instructions named by "type" work as on a media stream; an
// agent that goes away lets the number's fallback run.
func TestRelayAgentControl(t *testing.T) {
	tests := []struct {
		name  string
		frame string
		want  []string
	}{
		{"transfer", `{"type":"stickycalls.transfer","to":"` + agent + `"}`, []string{"Dial", "Number"}},
		{"hang up", `{"type":"stickycalls.hangup"}`, []string{"Hangup"}},
		{"crash", "", []string{"Say", "Hangup"}},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			se := newRelayEnv(t, voice.Action{})
			sid, from := "CA730"+string(rune('0'+i)), "+1415555730"+string(rune('0'+i))
			_, params := relayNoun(t, se.incoming(sid, from))
			tw := se.twilioRelay(sid, from, params)
			ag := se.agent()
			recv(t, ag, 1)
			if tc.frame == "" {
				ag.Close()
			} else {
				send(t, ag, tc.frame)
			}
			if code := closeCode(t, tw); code != websocket.CloseNormalClosure {
				t.Errorf("Twilio close code = %d, want %d", code, websocket.CloseNormalClosure)
			}
			if got := se.afterStream(sid, from).verbs(); !slices.Equal(got, tc.want) {
				t.Errorf("after-stream verbs = %v, want %v", got, tc.want)
			}
		})
	}
}

// A media stream's upgrade cannot open a ConversationRelay number's
// session, nor the other way round: each endpoint serves its own numbers.
func TestRelayWrongEndpoint(t *testing.T) {
	se := newRelayEnv(t, voice.Action{})
	_, params := relayNoun(t, se.incoming("CA7401", "+14155557401"))
	tw := se.twilio("CA7401", params) // a media stream's connected and start at /voice/stream
	if code := closeCode(t, tw); code != websocket.ClosePolicyViolation {
		t.Errorf("a stream for a ConversationRelay number closed with %d, want %d", code, websocket.ClosePolicyViolation)
	}
}

// With the store hanging, the call still connects within the deadline,
// welcomed with the fallback greeting; with the store down, the session
// still opens, its setup saying the context is missing.
func TestRelayDegraded(t *testing.T) {
	se := newRelayEnv(t, voice.Action{})
	se.store.hang.Store(true)
	cr, params := relayNoun(t, se.incoming("CA7501", "+14155557501"))
	if w := cr.attr("welcomeGreeting"); w != se.cfg.Greeter.Fallback(number).Text {
		t.Errorf("welcomeGreeting with the store hanging = %q, want the fallback greeting", w)
	}
	se.store.hang.Store(false)
	se.store.down.Store(true)
	se.twilioRelay("CA7501", "+14155557501", params)
	setup := recv(t, se.agent(), 1)[0]
	if setupParam(t, setup, "stickycalls_degraded") != "true" || setupParam(t, setup, "recommendation") != "ignore" || setupParam(t, setup, "from") != "+14155557501" {
		t.Errorf("setup with the store down = %s, want degraded, ignore and the caller's number", setup)
	}
}

// An agent that is done says goodbye and ends the session, and may close
// its socket at once, or it asks for the hang-up in-band: either way its
// last words reach Twilio before the session closes.
func TestRelayAgentLastWords(t *testing.T) {
	goodbye := `{"type":"text","token":"Goodbye!","last":true}`
	tests := []struct {
		name   string
		frames []string
		close  bool
		want   []string
	}{
		{"end, then close", []string{goodbye, `{"type":"end","handoffData":"{}"}`}, true, []string{goodbye, `{"type":"end","handoffData":"{}"}`}},
		{"hang up in-band", []string{goodbye, `{"type":"stickycalls.hangup"}`}, false, []string{goodbye}},
		{"close", []string{goodbye}, true, []string{goodbye}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			se := newRelayEnv(t, voice.Action{})
			for i := range 10 { // the loss was a race: try it more than once
				sid, from := "CA76"+tc.name[:1]+string(rune('0'+i)), "+141555576"+string(rune('0'+i))+"0"
				_, params := relayNoun(t, se.incoming(sid, from))
				tw := se.twilioRelay(sid, from, params)
				ag := se.agent()
				recv(t, ag, 1)
				send(t, ag, tc.frames...)
				if tc.close {
					ag.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""))
					ag.Close()
				}
				tw.SetReadDeadline(time.Now().Add(safety))
				var got []string
				for {
					_, msg, err := tw.ReadMessage()
					if err != nil {
						break
					}
					got = append(got, string(msg))
				}
				if !slices.Equal(got, tc.want) {
					t.Fatalf("try %d: Twilio got %q before the close, want %q", i, got, tc.want)
				}
			}
		})
	}
}
