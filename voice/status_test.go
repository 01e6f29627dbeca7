package voice_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"testing"

	"github.com/stickycalls/stickycalls/context/callapi"
	"github.com/stickycalls/stickycalls/context/callcontext"
	"github.com/stickycalls/stickycalls/voice"
)

var prod = callcontext.Scope{Tenant: "default", Mode: callcontext.Prod}

// callJSON is a call as GET /v1/calls/{call_id} answers it.
func callJSON(calls *callcontext.Service, callID string) ([]byte, error) {
	call, err := calls.Call(context.Background(), prod, callID)
	if err != nil {
		return nil, err
	}
	return call.JSON()
}

// startRef reads the customer_ref a call's start answered.
func (e *env) startRef(callID string) string {
	e.t.Helper()
	body, err := callJSON(e.calls, callID)
	if err != nil {
		e.t.Fatalf("read call %s: %v", callID, err)
	}
	var res callapi.StartResult
	if err := json.Unmarshal(body, &res); err != nil {
		e.t.Fatal(err)
	}
	return res.CustomerRef
}

func (e *env) status(callSid, from, status string) {
	e.t.Helper()
	form := incomingForm(callSid, from, number)
	form.Set("CallStatus", status)
	form.Set("CallDuration", "30")
	if code, body := e.post("/voice/status", token, form); code != 204 {
		e.t.Fatalf("status %s: %d %s, want 204", status, code, body)
	}
}

func (e *env) end(body string) (callapi.EndResult, error) {
	e.t.Helper()
	req, err := callapi.ParseEnd([]byte(body))
	if err != nil {
		e.t.Fatal(err)
	}
	rep, err := e.calls.End(context.Background(), prod, req, "")
	var res callapi.EndResult
	if err == nil {
		err = json.Unmarshal(rep.Body, &res)
	}
	return res, err
}

// A new caller's completed call links the ANI to a new customer, so the
// caller is recognized next time though no agent saved anything; twice is
// once; a later end for the same call still saves.
func TestStatusCompletesNewCaller(t *testing.T) {
	e := newEnv(t, voice.Action{Dial: agent})
	e.incoming("CA5001", "+14155555555")
	ref := e.startRef("CA5001")
	e.status("CA5001", "+14155555555", "completed")
	e.status("CA5001", "+14155555555", "completed")
	cust, err := e.calls.Customer(context.Background(), prod, ref)
	if err != nil || len(cust.Links.ANIs) != 1 || cust.Links.ANIs[0].ANI != "+14155555555" {
		t.Fatalf("after completion Customer(%s) = %+v, %v; want the ANI linked", ref, cust.Links, err)
	}
	res, err := e.end(`{"call_id":"CA5001","variables":{"name":"Sam Poe"},"intent":"billing","intent_status":"open"}`)
	if err != nil || res.CustomerRef != ref || res.VariablesUpdated != 1 {
		t.Fatalf("end after completion = %+v, %v; want saved to %s", res, err, ref)
	}
	cust, _ = e.calls.Customer(context.Background(), prod, ref)
	if len(cust.OpenIntents) != 1 || cust.OpenIntents[0].AttemptCount != 1 {
		t.Errorf("open intents = %+v, want billing counted once", cust.OpenIntents)
	}
	n := e.incoming("CA5002", "+14155555555")
	if g, ok := n.find("Gather"); !ok || !strings.Contains(g.Nodes[0].Text, "Sam Poe") {
		t.Errorf("next call TwiML = %+v, want the confirm question for Sam Poe", n)
	}
}

// An unrecognized call on a known line does not make another customer.
func TestStatusKnownLineNoNewCustomer(t *testing.T) {
	e := newEnv(t, voice.Action{Dial: agent})
	e.remember("CA6000", "+14155556666", "Ann Lee", "voip") // voip: 0.25+0.05 → confirm
	e.incoming("CA6001", "+14155556666")
	e.post("/voice/confirm", token, withDigits(incomingForm("CA6001", "+14155556666", number), "2"))
	e.status("CA6001", "+14155556666", "completed")
	// Had the completion linked the ANI to a new customer, the line would
	// now be shared by two.
	req, _ := callapi.ParseStart([]byte(`{"call_id":"REST6002","identity_hints":{"ani":"+14155556666"}}`))
	rep, err := e.calls.Start(context.Background(), prod, req, "")
	if err != nil {
		t.Fatal(err)
	}
	var res callapi.StartResult
	json.Unmarshal(rep.Body, &res)
	if len(res.Identity.Candidates) != 0 || strings.Contains(strings.Join(res.Identity.Sources, ","), "shared") {
		t.Errorf("after a denied call the line has sources %v candidates %v, want one customer only", res.Identity.Sources, res.Identity.Candidates)
	}
}

func withDigits(f map[string][]string, d string) map[string][]string {
	f["Digits"] = []string{d}
	return f
}

func TestConfirm(t *testing.T) {
	e := newEnv(t, voice.Action{Dial: agent})
	e.remember("CA7000", "+14155557777", "Jane Roe", "unknown")
	e.mux.Handle("POST /voice/whisper", e.signed(voice.HandleWhisper(e.calls, e.cfg)))

	e.incoming("CA7001", "+14155557777")
	code, body := e.post("/voice/confirm", token, withDigits(incomingForm("CA7001", "+14155557777", number), "1"))
	if code != 200 || !strings.Contains(body, "Welcome back, Jane Roe") || !strings.Contains(body, "<Dial") {
		t.Errorf("confirm yes: %d %s, want the personal greeting and the dial", code, body)
	}

	whisper := url.Values{"CallSid": {"CA7001"}, "AccountSid": {"AC" + strings.Repeat("1", 32)}}
	if _, w := e.post("/voice/whisper?call_id=CA7001", token, whisper); !strings.Contains(w, "Returning caller, Jane Roe.") {
		t.Errorf("whisper after a yes = %s, want a returning caller", w)
	}

	e.incoming("CA7002", "+14155557777")
	form := incomingForm("CA7002", "+14155557777", number)
	form.Set("SpeechResult", "No, this is her brother.")
	code, body = e.post("/voice/confirm", token, form)
	if code != 200 || strings.Contains(body, "Jane") || !strings.Contains(body, "<Dial") {
		t.Errorf("confirm no: %d %s, want the generic greeting and the dial", code, body)
	}
	// One short line, not a second hello, and nothing asked before the dial.
	if !strings.Contains(body, "<Say language=\"en-US\">Sorry about that. Connecting you now.</Say><Dial") {
		t.Errorf("confirm no: %s, want one short line and the connecting line", body)
	}
	// After a "no", every reader of the call sees a new caller's call.
	stored, err := callJSON(e.calls, "CA7002")
	if err != nil || strings.Contains(string(stored), "Jane") || strings.Contains(string(stored), e.startRef("CA7001")) {
		t.Errorf("GET /v1/calls/CA7002 after a no = %s, %v; want nothing of the guessed customer", stored, err)
	}

	e.incoming("CA7003", "+14155557777")
	code, body = e.post("/voice/confirm", token, incomingForm("CA7003", "+14155557777", number))
	if code != 200 || !strings.Contains(body, "<Gather") || !strings.Contains(body, "/voice/confirm?attempt=2") || !strings.Contains(body, "Jane Roe") {
		t.Errorf("confirm with no input: %d %s, want the question asked once more", code, body)
	}
	code, body = e.post("/voice/confirm?attempt=2", token, incomingForm("CA7003", "+14155557777", number))
	if code != 200 || strings.Contains(body, "Jane") || strings.Contains(body, "your name") || !strings.Contains(body, "Thanks for calling") {
		t.Errorf("confirm with no input, asked again: %d %s, want the fallback greeting", code, body)
	}
	// The agent's wrap-up without a customer_ref saves to a new customer,
	// not to the guessed one.
	res, err := e.end(`{"call_id":"CA7002","variables":{"name":"Jim Roe"}}`)
	if err != nil || res.CustomerRef == e.startRef("CA7001") || !res.Billable {
		t.Errorf("end after a no = %+v, %v; want a new customer", res, err)
	}
}

func TestWhisper(t *testing.T) {
	e := newEnv(t, voice.Action{Dial: agent})
	e.mux.Handle("POST /voice/whisper", e.signed(voice.HandleWhisper(e.calls, e.cfg)))
	e.remember("CAW000", "+14155550777", "Ana Diaz", "mobile")
	e.incoming("CAW001", "+14155550777")
	code, body := e.post("/voice/whisper?call_id=CAW001", token, url.Values{"CallSid": {"CAW001"}, "AccountSid": {"AC" + strings.Repeat("1", 32)}})
	if code != 200 || !strings.Contains(body, "Returning caller, Ana Diaz.") || !strings.Contains(body, "refund request, 1 calls") {
		t.Errorf("whisper: %d %s, want the name and the open issue for the agent", code, body)
	}
	if strings.Contains(body, "0.") {
		t.Errorf("whisper %s speaks a confidence number", body)
	}
}

// A completion that only refreshed a customer's link does not take it away
// when the agent's end names another customer: the outcome does not depend
// on which of the two arrives first.
func TestCompletionThenEndKeepsEarlierLink(t *testing.T) {
	e := newEnv(t, voice.Action{Dial: agent})
	e.remember("CAX000", "+14155550888", "Al Ames", "mobile")
	ref := e.startRef("CAX000")
	e.incoming("CAX001", "+14155550888") // recognized: reuse
	e.status("CAX001", "+14155550888", "completed")
	if _, err := e.end(`{"call_id":"CAX001","customer_ref":"cust_other","variables":{"name":"Bo Ames"}}`); err != nil {
		t.Fatal(err)
	}
	cust, err := e.calls.Customer(context.Background(), prod, ref)
	if err != nil || len(cust.Links.ANIs) != 1 {
		t.Errorf("after completion then an end to another customer, %s links = %+v, %v; want its line kept", ref, cust.Links, err)
	}
}

// A "no" heard on the phone disputes the guessed customer's number when the
// call completes; silence does not (docs/SCORING.md).
func TestConfirmAnswersTeachTheLink(t *testing.T) {
	e := newEnv(t, voice.Action{Dial: agent})
	e.remember("CAD000", "+14155550999", "Dee Fox", "unknown")
	ref := e.startRef("CAD000")
	answer := func(sid, speech string) {
		e.incoming(sid, "+14155550999")
		form := incomingForm(sid, "+14155550999", number)
		if speech != "" {
			form.Set("SpeechResult", speech)
		}
		e.post("/voice/confirm", token, form)
		e.post("/voice/confirm?attempt=2", token, form) // an unclear answer is asked once more
		e.status(sid, "+14155550999", "completed")
	}
	disputes := func() int {
		t.Helper()
		cust, err := e.calls.Customer(context.Background(), prod, ref)
		if err != nil || len(cust.Links.ANIs) != 1 {
			t.Fatalf("customer %s = %+v, %v; want its number linked", ref, cust.Links, err)
		}
		return cust.Links.ANIs[0].Disputes
	}
	answer("CAD001", "")
	if n := disputes(); n != 0 {
		t.Errorf("after silence: %d disputes, want 0", n)
	}
	answer("CAD002", "No.")
	answer("CAD002", "No.") // Twilio's retries count once
	if n := disputes(); n != 1 {
		t.Errorf("after a no: %d disputes, want 1", n)
	}
}

// Mishearings: a filler before yes, "that's right", "mm-hmm" and "this is"
// with the stored name are yes; a low-confidence transcription is asked
// once more, then taken as no answer.
func TestConfirmSpokenAnswers(t *testing.T) {
	e := newEnv(t, voice.Action{Dial: agent})
	e.remember("CAS000", "+14155550998", "John Doe", "unknown")
	for i, speech := range []string{"Uh, yes.", "That's right.", "Mm-hmm.", "This is John."} {
		sid := fmt.Sprintf("CAS00%d", i+1)
		e.incoming(sid, "+14155550998")
		form := incomingForm(sid, "+14155550998", number)
		form.Set("SpeechResult", speech)
		form.Set("Confidence", "0.83")
		if _, body := e.post("/voice/confirm", token, form); !strings.Contains(body, "Welcome back, John Doe") {
			t.Errorf("%q: %s, want the reuse greeting", speech, body)
		}
	}
	e.incoming("CAS009", "+14155550998")
	form := incomingForm("CAS009", "+14155550998", number)
	form.Set("SpeechResult", "yes")
	form.Set("Confidence", "0.21")
	if _, body := e.post("/voice/confirm", token, form); !strings.Contains(body, "attempt=2") {
		t.Errorf("a yes heard at 0.21: %s, want the question asked again", body)
	}
	if _, body := e.post("/voice/confirm?attempt=2", token, form); strings.Contains(body, "John") || !strings.Contains(body, "Thanks for calling") {
		t.Errorf("a yes heard at 0.21 twice: %s, want the fallback greeting", body)
	}
}
