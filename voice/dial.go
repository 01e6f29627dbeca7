package voice

import (
	"context"
	"net/http"
	"slices"

	"github.com/rs/zerolog"
	"github.com/twilio/twilio-go/twiml"

	"github.com/stickycalls/stickycalls/context/callcontext"
)

// Built-in texts of the unanswered path, for numbers that configure none.
const (
	unansweredApology = "Sorry, nobody could take your call right now. Please try again later. Goodbye."
	voicemailThanks   = "Thank you. Goodbye."
)

// HandleDialStatus answers Twilio's <Dial action> webhook, called when a
// dial ends. It records the outcome on the call (GET /v1/calls shows it as
// dial_status) and, when the agent did not answer (no-answer, busy,
// failed), runs the number's unanswered action: a message, a voicemail
// (<Record>) or one more number; a second dial that fails, like a
// voicemail that was left, ends with a goodbye. Anything else ends the
// call. Recording the outcome is best effort: whatever the store does,
// the caller gets TwiML within the deadline.
func HandleDialStatus(logger zerolog.Logger, calls *callcontext.Service, cfg Config) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), cfg.deadline())
		defer cancel()
		r.ParseForm() // the signature check has read and restored the body
		req := startRequest(r.PostForm)
		num, ok := cfg.Numbers[req.Hints.DNIS]
		set := cfg.Greeter.SetFor(req.Hints.DNIS)
		q := r.URL.Query()
		switch {
		case !ok || num.Tenant != tenantOf(r.Context()) || req.CallID == "":
			writeTwiML(w, []twiml.Element{&twiml.VoiceHangup{}})
			return
		case q.Get("step") == "recorded":
			writeTwiML(w, []twiml.Element{say(set, voicemailThanks), &twiml.VoiceHangup{}})
			return
		}
		sc := callcontext.Scope{Tenant: num.Tenant, Mode: callcontext.Prod}
		status := r.PostForm.Get("DialCallStatus")
		if err := calls.Dialled(ctx, sc, req.CallID, status); err != nil && !errorsIsNotFound(err) {
			logger.Warn().Err(err).Str("call_sid", req.CallID).Str("dial_status", status).Msg("dial status not recorded")
		}
		if !slices.Contains([]string{"no-answer", "busy", "failed"}, status) {
			writeTwiML(w, []twiml.Element{&twiml.VoiceHangup{}})
			return
		}
		cfg.Metrics.fallback("unanswered")
		u := num.Unanswered
		switch {
		case u.Dial != "" && q.Get("attempt") == "":
			ref := ""
			if call, err := calls.Call(ctx, sc, req.CallID); err == nil {
				ref = call.Record.CustomerRef
			}
			writeTwiML(w, []twiml.Element{cfg.dial(r, Action{Dial: u.Dial}, req.CallID, ref, 2)})
		case u.Voicemail != "":
			writeTwiML(w, []twiml.Element{
				say(set, u.Voicemail),
				&twiml.VoiceRecord{MaxLength: "120", PlayBeep: "true", Timeout: "5",
					Action: cfg.baseURL(r) + "/voice/dial-status?step=recorded", Method: "POST"},
				say(set, voicemailThanks), &twiml.VoiceHangup{},
			})
		default:
			writeTwiML(w, []twiml.Element{say(set, cmpOr(u.Message, unansweredApology)), &twiml.VoiceHangup{}})
		}
	})
}
