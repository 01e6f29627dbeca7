package voice

import (
	"encoding/json"
	"testing"
)

// Any media frame or ConversationRelay setup from Twilio, and any stickycalls.end object from an
// agent: a frame rewritten or a clear refusal, never a panic.
func FuzzMediaFrame(f *testing.F) {
	f.Add([]byte(`{"event":"start","sequenceNumber":"1","start":{"callSid":"CA1","customParameters":{"stickycalls_token":"t","from":"+1"}},"streamSid":"MZ1"}`))
	f.Add([]byte(`{"event":"start","start":{"customParameters":null}}`))
	f.Add([]byte(`{"event":"media","media":{"payload":"AAAA"}}`))
	f.Add([]byte(`{"call_id":"CA1","variables":{"name":"Ada"}}`))
	f.Add([]byte(`{"start":[]}`))
	f.Add([]byte(`{"type":"setup","callSid":"CA1","customParameters":{"stickycalls_token":"t"}}`))
	f.Add([]byte(`{"type":"setup","customParameters":[1]}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, frame []byte) {
		out, err := withContext(frame, map[string]string{"customer_ref": "cust_1"})
		if err == nil {
			var top struct {
				Start struct {
					CustomParameters map[string]string `json:"customParameters"`
				} `json:"start"`
			}
			if json.Unmarshal(out, &top) != nil || top.Start.CustomParameters["customer_ref"] != "cust_1" {
				t.Errorf("withContext(%q) = %s: want JSON with the context added", frame, out)
			}
			if _, ok := top.Start.CustomParameters["stickycalls_token"]; ok {
				t.Errorf("withContext(%q) = %s: the relay's token reached the agent", frame, out)
			}
		}
		if out, err := withParams(frame, map[string]string{"customer_ref": "cust_1"}); err == nil {
			var setup struct {
				CustomParameters map[string]string `json:"customParameters"`
			}
			if json.Unmarshal(out, &setup) != nil || setup.CustomParameters["customer_ref"] != "cust_1" {
				t.Errorf("withParams(%q) = %s: want JSON with the context added", frame, out)
			}
			if _, ok := setup.CustomParameters["stickycalls_token"]; ok {
				t.Errorf("withParams(%q) = %s: the relay's token reached the agent", frame, out)
			}
		}
		body, err := withCallID(frame, "CA1")
		if err == nil {
			var m map[string]any
			if json.Unmarshal(body, &m) != nil || m["call_id"] != "CA1" {
				t.Errorf("withCallID(%q) = %s: want an object for call CA1", frame, body)
			}
		}
	})
}
