package voice

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/twilio/twilio-go/twiml"

	"github.com/stickycalls/stickycalls/context/callapi"
	"github.com/stickycalls/stickycalls/greetings"
)

// say speaks text in the number's greeting set.
func say(set greetings.Set, text string) twiml.Element {
	return &twiml.VoiceSay{Message: text, Voice: set.Voice, Language: set.Language}
}

// next renders a number's next action for a call. An agent reached over
// ConversationRelay speaks no welcome of its own here: see greetThen.
func (c Config) next(r *http.Request, a Action, callID, ref, recommendation string) []twiml.Element {
	switch {
	case a.Dial != "":
		return []twiml.Element{c.dial(r, a, callID, ref, 1)}
	case a.Redirect != "":
		q := url.Values{"call_id": {callID}, "customer_ref": {ref}, "recommendation": {recommendation}}
		sep := "?"
		if strings.Contains(a.Redirect, "?") {
			sep = "&"
		}
		return []twiml.Element{&twiml.VoiceRedirect{Url: a.Redirect + sep + q.Encode(), Method: "POST"}}
	case a.connects():
		if verbs := c.connect(r, a, callID, ref, recommendation, ""); verbs != nil {
			return verbs
		}
		dnis, _, _ := callapi.NormalizeANI(r.PostForm.Get("To"))
		return c.fallback(r, c.Numbers[dnis], dnis, callID, ref, recommendation)
	}
	return nil
}

// greetThen speaks text, then runs a. An agent reached over
// ConversationRelay gets text as its welcomeGreeting instead, spoken by
// Twilio's own text-to-speech as the session opens, so no <Say> repeats it.
func (c Config) greetThen(r *http.Request, dnis, text string, a Action, callID, ref, recommendation string) []twiml.Element {
	if a.Relay != nil {
		if verbs := c.connect(r, a, callID, ref, recommendation, text); verbs != nil {
			return verbs
		}
	}
	return append([]twiml.Element{c.lead(dnis, text, a)}, c.next(r, a, callID, ref, recommendation)...)
}

// dial rings a's target for the number's dial timeout, the caller hearing
// ringback until the agent answers (answerOnBridge), the agent hearing the
// whisper first unless a says not to; however it ends, Twilio then asks
// /voice/dial-status what next, the attempt in the URL.
func (c Config) dial(r *http.Request, a Action, callID, ref string, attempt int) twiml.Element {
	target, whisper := a.Dial, ""
	if a.whisper() {
		whisper = c.baseURL(r) + "/voice/whisper?" + url.Values{"call_id": {callID}}.Encode()
	}
	dnis, _, _ := callapi.NormalizeANI(r.PostForm.Get("To"))
	timeout := c.Numbers[dnis].DialTimeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	action := c.baseURL(r) + "/voice/dial-status"
	if attempt > 1 {
		action += "?attempt=" + strconv.Itoa(attempt)
	}
	var callee twiml.Element = &twiml.VoiceNumber{PhoneNumber: target, Url: whisper}
	if strings.HasPrefix(target, "sip:") {
		callee = &twiml.VoiceSip{SipUrl: sipWithHeaders(target, callID, ref), Url: whisper}
	}
	return &twiml.VoiceDial{AnswerOnBridge: "true", Timeout: strconv.Itoa(int(timeout / time.Second)),
		Action: action, Method: "POST", InnerElements: []twiml.Element{callee}}
}

// sipWithHeaders adds the call's call_id and customer_ref to a SIP URI as
// x- headers, which Twilio sends in the INVITE, so a SIP agent's desktop
// can read the context over REST without a spoken whisper.
func sipWithHeaders(uri, callID, ref string) string {
	h := url.Values{"x-call_id": {callID}}
	if ref != "" {
		h.Set("x-customer_ref", ref)
	}
	sep := "?"
	if strings.Contains(uri, "?") {
		sep = "&"
	}
	return uri + sep + h.Encode()
}

// connect connects the call to this service's relay (/voice/stream for a
// media stream, /voice/relay for ConversationRelay), which reaches the AI
// agent of the number called; when the session ends or fails Twilio asks
// /voice/after-stream what next (what the agent asked, else the number's
// fallback: with <Connect action>, verbs after <Connect> never run). The
// parameters carry the call's numbers, and the stickycalls_token binds them
// and the session to this call under the auth token of the account that
// signed the webhook, so the relay needs no store to connect. Without a
// token to give, connect returns nil: the caller gets the fallback.
func (c Config) connect(r *http.Request, a Action, callID, ref, recommendation, welcome string) []twiml.Element {
	dnis, _, _ := callapi.NormalizeANI(r.PostForm.Get("To"))
	from, withheld, ok := callapi.NormalizeANI(r.PostForm.Get("From"))
	if withheld || !ok {
		from = ""
	}
	acct, ok := c.account(r.PostForm.Get("AccountSid"))
	if !ok || acct.AuthToken == "" || callID == "" {
		return nil
	}
	base := c.baseURL(r)
	wss := "wss://" + strings.TrimPrefix(strings.TrimPrefix(base, "https://"), "http://")
	params := []twiml.Element{
		&twiml.VoiceParameter{Name: "call_id", Value: callID},
		&twiml.VoiceParameter{Name: "from", Value: from},
		&twiml.VoiceParameter{Name: "to", Value: dnis},
		&twiml.VoiceParameter{Name: "stickycalls_token", Value: streamToken(acct.AuthToken, streamCall{callID, from, dnis}, c.now().Add(streamTokenTTL))},
	}
	var session twiml.Element = &twiml.VoiceStream{Url: wss + "/voice/stream", InnerElements: params}
	if cr := a.Relay; cr != nil {
		session = relayNoun(wss+"/voice/relay", *cr, c.Greeter.SetFor(dnis), welcome, params)
	}
	return []twiml.Element{&twiml.VoiceConnect{Action: base + "/voice/after-stream", Method: "POST", InnerElements: []twiml.Element{session}}}
}

// fallback is what runs after an agent's session: the number's fallback
// action, or a goodbye. A fallback that connects to an agent again is
// refused, so a failing agent cannot loop the call.
func (c Config) fallback(r *http.Request, num Number, dnis, callID, ref, recommendation string) []twiml.Element {
	if fb := num.Fallback; !fb.connects() && fb != (Action{}) {
		return c.next(r, fb, callID, ref, recommendation)
	}
	return []twiml.Element{say(c.Greeter.SetFor(dnis), "Thank you for calling. Goodbye."), &twiml.VoiceHangup{}}
}

// writeTwiML sends verbs as a TwiML document with 200. If rendering fails
// the caller still gets a valid, empty response rather than an error page.
func writeTwiML(w http.ResponseWriter, verbs []twiml.Element) {
	doc, err := twiml.Voice(verbs)
	if err != nil {
		doc = `<?xml version="1.0" encoding="UTF-8"?><Response/>`
	}
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(doc))) // Twilio mishandles chunked TwiML
	w.WriteHeader(http.StatusOK)
	w.Write([]byte(doc))
}
