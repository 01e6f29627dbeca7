package voice_test

import (
	"encoding/json"
	"encoding/xml"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/stickycalls/stickycalls/context/callapi"
	"github.com/stickycalls/stickycalls/voice"
)

// dialStatus posts Twilio's <Dial action> webhook for a call and parses
// the TwiML that comes back.
func (e *env) dialStatus(path, callSid, status string) node {
	e.t.Helper()
	form := incomingForm(callSid, "+14155556666", number)
	form.Set("CallStatus", "in-progress")
	if status != "" {
		form.Set("DialCallStatus", status)
	}
	code, body := e.post(path, token, form)
	var n node
	if code != 200 || xml.Unmarshal([]byte(body), &n) != nil {
		e.t.Fatalf("%s %s: %d %s, want 200 and TwiML", path, status, code, body)
	}
	return n
}

// dialOutcome is the dial_status GET /v1/calls shows for a call.
func (e *env) dialOutcome(callID string) string {
	e.t.Helper()
	body, err := callJSON(e.calls, callID)
	if err != nil {
		e.t.Fatal(err)
	}
	var res callapi.StartResult
	json.Unmarshal(body, &res)
	return res.DialStatus
}

// A dial rings for the number's timeout with ringback until the agent
// answers, and Twilio then asks /voice/dial-status: an answered call ends
// there; one nobody answered runs the number's unanswered action. The
// outcome is kept on the call.
func TestDialOutcomes(t *testing.T) {
	e := newEnv(t, voice.Action{Dial: agent})
	e.mux.Handle("POST /voice/dial-status", e.signed(voice.HandleDialStatus(zerolog.Nop(), e.calls, e.cfg)))
	setUnanswered := func(u voice.Unanswered) {
		e.cfg.Numbers[number] = voice.Number{Tenant: "default", Next: voice.Action{Dial: agent}, DialTimeout: 20 * time.Second, Unanswered: u}
	}
	setUnanswered(voice.Unanswered{})

	d, ok := e.incoming("CAD001", "+14155556666").find("Dial")
	if !ok || d.attr("answerOnBridge") != "true" || d.attr("timeout") != "20" || !strings.HasSuffix(d.attr("action"), "/voice/dial-status") {
		t.Fatalf("Dial = %+v, want answerOnBridge, timeout 20 and the dial-status action", d)
	}
	if got := e.dialStatus("/voice/dial-status", "CAD001", "completed").verbs(); !slices.Equal(got, []string{"Hangup"}) {
		t.Errorf("after an answered dial: %v, want Hangup", got)
	}
	if got := e.dialOutcome("CAD001"); got != "completed" {
		t.Errorf("dial_status = %q, want completed", got)
	}

	tests := []struct {
		name       string
		unanswered voice.Unanswered
		status     string
		verbs      []string
		says       string
	}{
		{"apology by default", voice.Unanswered{}, "no-answer", []string{"Say", "Hangup"}, "Sorry, nobody could take your call"},
		{"a message", voice.Unanswered{Message: "We are closed."}, "busy", []string{"Say", "Hangup"}, "We are closed."},
		{"voicemail", voice.Unanswered{Voicemail: "Leave a message after the tone."}, "no-answer", []string{"Say", "Record", "Say", "Hangup"}, "Leave a message"},
		{"another number", voice.Unanswered{Dial: "+14155550001"}, "failed", []string{"Dial", "Number"}, ""},
	}
	for i, tt := range tests {
		setUnanswered(tt.unanswered)
		callSid := "CAD10" + string(rune('0'+i))
		e.incoming(callSid, "+14155556666")
		n := e.dialStatus("/voice/dial-status", callSid, tt.status)
		if got := n.verbs(); !slices.Equal(got, tt.verbs) {
			t.Errorf("%s: verbs %v, want %v", tt.name, got, tt.verbs)
		}
		if s, _ := n.find("Say"); !strings.Contains(s.Text, tt.says) {
			t.Errorf("%s: says %q, want %q", tt.name, s.Text, tt.says)
		}
		if got := e.dialOutcome(callSid); got != tt.status {
			t.Errorf("%s: dial_status = %q, want %q", tt.name, got, tt.status)
		}
		switch {
		case tt.unanswered.Voicemail != "":
			rec, _ := n.find("Record")
			if !strings.HasSuffix(rec.attr("action"), "/voice/dial-status?step=recorded") {
				t.Errorf("Record action = %q, want the recorded step", rec.attr("action"))
			}
			if got := e.dialStatus("/voice/dial-status?step=recorded", callSid, "").verbs(); !slices.Equal(got, []string{"Say", "Hangup"}) {
				t.Errorf("after the voicemail: %v, want a goodbye", got)
			}
		case tt.unanswered.Dial != "":
			d, _ := n.find("Dial")
			num, _ := d.find("Number")
			if strings.TrimSpace(num.Text) != "+14155550001" || !strings.HasSuffix(d.attr("action"), "/voice/dial-status?attempt=2") {
				t.Errorf("second dial = %+v, want +14155550001 with attempt=2", d)
			}
			// The second number tried once: its failure ends with the apology, not a loop.
			if got := e.dialStatus("/voice/dial-status?attempt=2", callSid, "no-answer").verbs(); !slices.Equal(got, []string{"Say", "Hangup"}) {
				t.Errorf("second dial unanswered: %v, want the apology", got)
			}
		}
	}

	// The store down: the caller still gets the unanswered action.
	e.incoming("CAD200", "+14155556666")
	e.store.hang.Store(true)
	if got := e.dialStatus("/voice/dial-status", "CAD200", "no-answer").verbs(); !slices.Equal(got, []string{"Dial", "Number"}) {
		t.Errorf("store hanging: %v, want the unanswered action anyway", got)
	}
}
