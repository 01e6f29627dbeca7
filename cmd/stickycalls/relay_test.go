package main

import (
	"encoding/json"
	"encoding/xml"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/stickycalls/stickycalls/voice"
)

// relayNoun reads the <ConversationRelay> of a TwiML answer: its
// welcomeGreeting and its parameters.
func relayNoun(t *testing.T, twiml string) (welcome string, params map[string]string) {
	t.Helper()
	var doc struct {
		Say     []string `xml:"Say"`
		Connect struct {
			Relay struct {
				Welcome string `xml:"welcomeGreeting,attr"`
				Params  []struct {
					Name  string `xml:"name,attr"`
					Value string `xml:"value,attr"`
				} `xml:"Parameter"`
			} `xml:"ConversationRelay"`
		} `xml:"Connect"`
	}
	if err := xml.Unmarshal([]byte(twiml), &doc); err != nil || len(doc.Connect.Relay.Params) == 0 || len(doc.Say) > 0 {
		t.Fatalf("want a <ConversationRelay> with parameters and no <Say>, got %s (%v)", twiml, err)
	}
	params = map[string]string{}
	for _, p := range doc.Connect.Relay.Params {
		params[p.Name] = p.Value
	}
	return doc.Connect.Relay.Welcome, params
}

// relayMessage reads a file of voice's ConversationRelay testdata.
func relayMessage(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "voice", "testdata", "conversation_relay", name))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// Through the real server, a ConversationRelay call: the agent's setup
// carries the context, text flows both ways, the agent saves the call
// in-band and ends the session, after which the call hangs up; the next
// call from the number is greeted by name.
func TestConversationRelayThroughServer(t *testing.T) {
	t.Parallel()
	agentAddr, agents := fakeAgent(t)
	const tok, number, from = "conversation0relay0token", "+18005550100", "+14155557010"
	file := filepath.Join(t.TempDir(), "config.yaml")
	yaml := "numbers:\n  \"" + number + "\":\n    next: {conversation_relay: {url: \"ws://" + agentAddr + "\", voice: en-US-Journey-O}}\n" +
		"    fallback: {dial: \"+14155550000\"}\n"
	if err := os.WriteFile(file, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	public := "http://" + addr
	launch(t, map[string]string{"STICKYCALLS_ADDR": addr, "STICKYCALLS_CONFIG": file, "TWILIO_AUTH_TOKEN": tok, "STICKYCALLS_PUBLIC_URL": public})

	call := newTwilioCall(t, tok, public, "CA"+strings.Repeat("7", 32), from, number)
	welcome, params := relayNoun(t, call.post(addr, "/voice/incoming"))
	if welcome == "" {
		t.Error("no welcomeGreeting: the caller would hear silence")
	}
	tw, _, err := websocket.DefaultDialer.Dial("ws://"+addr+"/voice/relay", http.Header{"X-Twilio-Signature": {voice.Sign(tok, "wss://"+addr+"/voice/relay", nil)}})
	if err != nil {
		t.Fatal(err)
	}
	defer tw.Close()
	p, _ := json.Marshal(params)
	setup := strings.NewReplacer("CALL_SID", call.form.Get("CallSid"), "FROM", from, "TO", number,
		"ACCOUNT_SID", call.form.Get("AccountSid"), "CUSTOM_PARAMETERS", string(p)).Replace(relayMessage(t, "setup.json"))
	write := func(c *websocket.Conn, msg string) {
		t.Helper()
		if err := c.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
			t.Fatal(err)
		}
	}
	read := func(c *websocket.Conn) string {
		t.Helper()
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, msg, err := c.ReadMessage()
		if err != nil {
			t.Fatal(err)
		}
		return string(msg)
	}
	write(tw, setup)
	ag := nextAgent(t, agents)
	var got struct {
		Type             string            `json:"type"`
		CustomParameters map[string]string `json:"customParameters"`
	}
	json.Unmarshal([]byte(read(ag)), &got)
	if cp := got.CustomParameters; got.Type != "setup" || cp["recommendation"] != "ignore" || !strings.Contains(cp["stickycalls_context"], call.form.Get("CallSid")) || cp["stickycalls_token"] != "" {
		t.Errorf("the agent's setup = %+v, want the new caller's context and no token", got)
	}
	text := strings.Split(relayMessage(t, "from-agent.jsonl"), "\n")[0]
	write(ag, text)
	if m := read(tw); m != text {
		t.Errorf("Twilio got %s, want the agent's text", m)
	}
	prompt := strings.Split(relayMessage(t, "from-twilio.jsonl"), "\n")[0]
	write(tw, prompt)
	if m := read(ag); m != prompt {
		t.Errorf("the agent got %s, want the caller's prompt", m)
	}
	write(ag, `{"type":"stickycalls.end","end":{"variables":{"name":"Grace Hopper"},"intent":"refund_request","intent_status":"open"}}`)
	if m := read(ag); !strings.Contains(m, `"type":"stickycalls.ended"`) {
		t.Errorf("in-band end answered %s", m)
	}
	write(ag, relayMessage(t, "end.json"))
	if m := read(tw); !strings.Contains(m, `"type":"end"`) {
		t.Errorf("Twilio got %s, want the agent's end", m)
	}
	tw.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""))
	if m := read(ag); m != `{"type":"stickycalls.session_ended"}` {
		t.Errorf("the agent got %s after Twilio closed, want stickycalls.session_ended", m)
	}
	if after := call.post(addr, "/voice/after-stream"); !strings.Contains(after, "<Hangup") || strings.Contains(after, "<Dial") {
		t.Errorf("after the agent's end, after-stream = %s, want <Hangup/>", after)
	}
	call.form.Set("CallStatus", "completed")
	call.form.Set("CallDuration", "95")
	call.post(addr, "/voice/status")

	next := newTwilioCall(t, tok, public, "CA"+strings.Repeat("6", 32), from, number)
	if twiml := next.post(addr, "/voice/incoming"); !strings.Contains(twiml, "Grace") {
		t.Errorf("the next call from the number = %s, want the caller's name asked about or greeted", twiml)
	}
}
