package voice_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/twilio/twilio-go/client"

	"github.com/stickycalls/stickycalls/voice"
)

// agentMedia is the agent's n-th 20 ms frame of μ-law audio (160 bytes),
// numbered in its payload so that order can be checked.
func agentMedia(n int) string {
	audio := []byte(fmt.Sprintf("%08d", n) + strings.Repeat("\xff", 152))
	return `{"event":"media","streamSid":"` + streamSID + `","media":{"payload":"` + base64.StdEncoding.EncodeToString(audio) + `"}}`
}

func mediaNumber(t *testing.T, frame string) int {
	t.Helper()
	var f struct {
		Media struct{ Payload string } `json:"media"`
	}
	json.Unmarshal([]byte(frame), &f)
	audio, err := base64.StdEncoding.DecodeString(f.Media.Payload)
	var n int
	if err != nil || len(audio) < 8 {
		t.Fatalf("frame %q is not an agent media frame", frame)
	}
	fmt.Sscanf(string(audio[:8]), "%d", &n)
	return n
}

// A whole spoken sentence sent at once (5,000 frames of TTS in a few
// milliseconds) reaches Twilio complete and in order, and nobody is cut off:
// the relay stops reading the agent while Twilio's side is behind.
func TestStreamAgentBurst(t *testing.T) {
	for name, tweak := range map[string]func(*voice.Config){
		"default limits": nil,
		// A queue of 8 frames or 4 KiB: the burst can only get through by
		// waiting on Twilio.
		"small queue": func(c *voice.Config) { c.Relay.Buffer, c.Relay.QueueBytes = 8, 4<<10 },
	} {
		t.Run(name, func(t *testing.T) {
			se := newStreamEnv(t, tweak)
			tw := se.twilio("CA9901", se.call("CA9901", "+14155559901"))
			ag := se.agent()
			recv(t, ag, 2)
			const n = 5000
			var wg sync.WaitGroup
			wg.Go(func() {
				for i := range n {
					if ag.WriteMessage(websocket.TextMessage, []byte(agentMedia(i))) != nil {
						return
					}
				}
			})
			time.Sleep(200 * time.Millisecond) // Twilio's side falls behind the burst
			for i, f := range recv(t, tw, n) {
				if got := mediaNumber(t, f); got != i {
					t.Fatalf("Twilio's frame %d is the agent's frame %d, want every frame in order", i, got)
				}
			}
			wg.Wait()
			send(t, ag, agentMedia(n)) // the stream is still open both ways
			if got := mediaNumber(t, recv(t, tw, 1)[0]); got != n {
				t.Errorf("frame after the burst = %d, want %d", got, n)
			}
			for _, reason := range []string{"slow_twilio", "slow_agent"} {
				if got := se.counter("stickycalls_voice_streams_total", "outcome", reason); got != 0 {
					t.Errorf("streams ended %s = %v, want 0", reason, got)
				}
			}
		})
	}
}

// A Twilio socket that accepts nothing for the write time ends the stream:
// the agent is told (1011) and the outcome is counted.
func TestStreamSlowTwilio(t *testing.T) {
	se := newStreamEnv(t, func(c *voice.Config) { c.Relay.Write = 200 * time.Millisecond; c.Relay.Stall = 300 * time.Millisecond })
	se.twilio("CA9902", se.call("CA9902", "+14155559902")) // never read again
	ag := se.agent()
	recv(t, ag, 2)
	big := `{"event":"media","streamSid":"` + streamSID + `","media":{"payload":"` + strings.Repeat("A", 60<<10) + `"}}`
	var wg sync.WaitGroup
	wg.Go(func() {
		for range 2000 { // far more than the socket buffers hold
			if ag.WriteMessage(websocket.TextMessage, []byte(big)) != nil {
				return
			}
		}
	})
	code := closeCode(t, ag)
	ag.Close()
	wg.Wait()
	if code != websocket.CloseInternalServerErr {
		t.Errorf("agent close code = %d, want %d", code, websocket.CloseInternalServerErr)
	}
	se.waitFor("the slow_twilio outcome", func() bool {
		return se.counter("stickycalls_voice_streams_total", "outcome", "slow_twilio") == 1
	})
}

// The relay's upgrade to the agent is signed as Twilio signs a stream's, so
// an agent built on Twilio's samples, which validate X-Twilio-Signature with
// twilio-go, accepts it; a signature under another token does not validate.
func TestStreamSignsAgentUpgrade(t *testing.T) {
	se := newStreamEnv(t, func(c *voice.Config) {
		n := c.Numbers[number]
		n.AgentHeaders = map[string]string{"Authorization": "Bearer agent-secret", "X-Twilio-Signature": "forged"}
		c.Numbers[number] = n
	})
	se.twilio("CA9903", se.call("CA9903", "+14155559903"))
	se.agent()
	var h http.Header
	select {
	case h = <-se.upgrades:
	case <-time.After(safety):
		t.Fatal("no upgrade reached the agent")
	}
	sig := h.Get("X-Twilio-Signature")
	valid, other := client.NewRequestValidator(token), client.NewRequestValidator("another0token")
	if !valid.Validate(se.agentURL, map[string]string{}, sig) {
		t.Errorf("twilio-go rejects the upgrade's signature %q for %s", sig, se.agentURL)
	}
	if other.Validate(se.agentURL, map[string]string{}, sig) {
		t.Error("the signature validates under another token")
	}
	if got := h.Get("Authorization"); got != "Bearer agent-secret" {
		t.Errorf("the number's agent header Authorization = %q, want it sent", got)
	}
}

// with copies params with key set to value.
func with(params map[string]string, key, value string) map[string]string {
	out := map[string]string{key: value}
	for k, v := range params {
		if k != key {
			out[k] = v
		}
	}
	return out
}

// With the store down, a signed stream still reaches the number's agent:
// everything needed to connect travels in the signed parameters. The agent
// is told the context is missing, and an in-band end answers a retryable
// error.
func TestStreamDegraded(t *testing.T) {
	se := newStreamEnv(t, nil)
	params := se.call("CA9501", "+14155559501")
	se.store.down.Store(true)
	se.twilio("CA9501", params)
	ag := se.agent()
	start := recv(t, ag, 2)[1]
	for name, want := range map[string]string{
		"stickycalls_degraded": "true", "recommendation": "ignore", "customer_ref": "",
		"from": "+14155559501", "to": number, "stickycalls_token": "",
	} {
		if got := param(t, start, name); got != want {
			t.Errorf("start.customParameters[%s] = %q, want %q", name, got, want)
		}
	}
	var ctx struct {
		CallID   string `json:"call_id"`
		Degraded bool   `json:"degraded"`
		Identity struct {
			Recommendation string `json:"recommendation"`
		} `json:"identity"`
	}
	if err := json.Unmarshal([]byte(param(t, start, "stickycalls_context")), &ctx); err != nil || !ctx.Degraded || ctx.CallID != "CA9501" || ctx.Identity.Recommendation != "ignore" {
		t.Errorf("stickycalls_context = %s (%v), want valid JSON saying it is degraded", param(t, start, "stickycalls_context"), err)
	}
	reply := agentEnd(t, ag, `{"variables":{"name":"Di"}}`)
	var e struct {
		Error struct {
			Error string `json:"error"`
		} `json:"error"`
	}
	json.Unmarshal([]byte(mustJSON(reply)), &e)
	if string(reply["event"]) != `"stickycalls.error"` || e.Error.Error != "Service Unavailable" {
		t.Errorf("in-band end with the store down = %s, want stickycalls.error with a 503 body", mustJSON(reply))
	}
	if got := se.counter("stickycalls_voice_fallbacks_total", "reason", "stream_degraded"); got != 1 {
		t.Errorf("degraded streams counted = %v, want 1", got)
	}
}

// One live stream per call: a second upgrade with the same token is
// refused (1008) and counted while the first is open, through the store's
// lease and with the store down through the process's; once the first
// stream ends, the call may stream again.
func TestStreamOnePerCall(t *testing.T) {
	for _, down := range []bool{false, true} {
		t.Run(map[bool]string{false: "store up", true: "store down"}[down], func(t *testing.T) {
			se := newStreamEnv(t, nil)
			params := se.call("CA9904", "+14155559904")
			se.store.down.Store(down)
			se.twilio("CA9904", params)
			ag := se.agent()
			second := se.twilio("CA9904", params)
			if code := closeCode(t, second); code != websocket.ClosePolicyViolation {
				t.Errorf("second stream close code = %d, want %d", code, websocket.ClosePolicyViolation)
			}
			if got := se.counter("stickycalls_voice_streams_total", "outcome", "duplicate"); got != 1 {
				t.Errorf("duplicate streams counted = %v, want 1", got)
			}
			ag.Close() // the agent goes away: the first stream ends
			se.waitFor("the first stream's end", func() bool {
				return se.counter("stickycalls_voice_streams_total", "outcome", "agent_closed") == 1
			})
			se.twilio("CA9904", params)
			se.agent() // the call streams again
		})
	}
}

// The agent decides what happens when its stream ends: a hang-up, a
// transfer (to a target the number allows), or, when it says nothing (it
// crashed or went away), the number's fallback. An invalid or forbidden
// target is answered in-band and the stream goes on.
func TestStreamAgentControl(t *testing.T) {
	const human, other = "+14155550100", "+14155550199"
	tests := []struct {
		name   string
		frames []string // the agent's, after start
		want   []string // verbs of the after-stream answer
		dial   string
	}{
		{"hang up", []string{`{"event":"stickycalls.hangup"}`}, []string{"Hangup"}, ""},
		{"transfer", []string{`{"event":"stickycalls.transfer","to":"+1 (415) 555-0100"}`}, []string{"Dial", "Number"}, human},
		{"transfer to SIP", []string{`{"event":"stickycalls.transfer","to":"sip:desk@pbx.example.com"}`}, []string{"Dial", "Sip"}, "sip:desk@pbx.example.com"},
		{"crash", nil, []string{"Dial", "Number"}, agent},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			se := newStreamEnv(t, func(c *voice.Config) {
				n := c.Numbers[number]
				n.Fallback = voice.Action{Dial: agent}
				n.TransferTargets = []string{human, "sip:desk@pbx.example.com"}
				c.Numbers[number] = n
			})
			sid, from := fmt.Sprintf("CA98%02d", i), fmt.Sprintf("+141555598%02d", i)
			tw := se.twilio(sid, se.call(sid, from))
			ag := se.agent()
			recv(t, ag, 2)
			send(t, ag, tc.frames...)
			if tc.frames == nil {
				ag.Close()
			}
			if code := closeCode(t, tw); code != websocket.CloseNormalClosure && tc.frames != nil {
				t.Errorf("Twilio close code = %d, want %d", code, websocket.CloseNormalClosure)
			}
			n := se.afterStream(sid, from)
			if got := n.verbs(); !slices.Equal(got, tc.want) {
				t.Fatalf("after-stream verbs = %v, want %v", got, tc.want)
			}
			if tc.dial != "" {
				d, _ := n.find("Dial")
				if target := strings.TrimSpace(d.Nodes[0].Text); target != tc.dial && !strings.HasPrefix(target, tc.dial+"?x-call_id="+sid) {
					t.Errorf("dialled %q, want %q", target, tc.dial)
				}
			}
		})
	}
	t.Run("a target the number does not allow", func(t *testing.T) {
		se := newStreamEnv(t, func(c *voice.Config) {
			n := c.Numbers[number]
			n.TransferTargets = []string{human}
			c.Numbers[number] = n
		})
		tw := se.twilio("CA9890", se.call("CA9890", "+14155559890"))
		ag := se.agent()
		recv(t, ag, 2)
		for _, to := range []string{other, "not a number"} {
			send(t, ag, `{"event":"stickycalls.transfer","to":"`+to+`"}`)
			if reply := recv(t, ag, 1)[0]; !strings.Contains(reply, `"stickycalls.error"`) || !strings.Contains(reply, `"to"`) {
				t.Errorf("transfer to %q answered %s, want a stickycalls.error on to", to, reply)
			}
		}
		send(t, ag, agentMedia(1)) // the stream goes on
		if got := mediaNumber(t, recv(t, tw, 1)[0]); got != 1 {
			t.Errorf("Twilio got frame %d, want 1", got)
		}
	})
}
