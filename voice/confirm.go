package voice

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"

	"github.com/rs/zerolog"
	"github.com/twilio/twilio-go/twiml"

	"github.com/stickycalls/stickycalls/context/callcontext"
)

// yesWords is what a caller says for yes.
var yesWords = regexp.MustCompile(`(?i)^\s*(yes|yeah|yep|yup|correct|right|that's me|that is me|it is|speaking|sure|si|oui)\b`)

// saidYes reports whether the caller pressed 1 or said yes.
func saidYes(digits, speech string) bool {
	return digits == "1" || (digits == "" && yesWords.MatchString(strings.TrimSpace(speech)))
}

// answerOf is what the caller answered: yes, anything else heard (no), or
// nothing.
func answerOf(digits, speech string) callcontext.Answer {
	switch {
	case saidYes(digits, speech):
		return callcontext.AnswerYes
	case digits == "" && strings.TrimSpace(speech) == "":
		return callcontext.AnswerNone
	}
	return callcontext.AnswerNo
}

// HandleConfirm takes the answer to the confirm question: yes continues as
// reuse, anything else (silence included) as a new caller, and the call is
// then not linked to the guessed customer.
func HandleConfirm(logger zerolog.Logger, calls *callcontext.Service, cfg Config) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), cfg.deadline())
		defer cancel()
		req, num, ok := cfg.webhookCall(w, r, logger)
		if !ok {
			return
		}
		answer := answerOf(r.PostForm.Get("Digits"), r.PostForm.Get("SpeechResult"))
		res, err := calls.Confirm(ctx, callcontext.Scope{Tenant: num.Tenant, Mode: callcontext.Prod}, req.CallID, answer)
		if err != nil {
			cfg.degrade(w, r, logger, num, req, reason(ctx, err))
			return
		}
		// The call now stands as the answer left it: a "yes" hears the
		// reuse greeting, a "no" a new caller's, silence the fallback text.
		text := res.Greeting.Text
		if answer == callcontext.AnswerNone {
			cfg.Metrics.fallback("no_input")
			text = cfg.Greeter.Fallback(req.Hints.DNIS).Text
		}
		verbs := []twiml.Element{say(cfg.Greeter.SetFor(req.Hints.DNIS), text)}
		verbs = append(verbs, cfg.next(r, num.Next, res.CallID, res.CustomerRef, string(res.Identity.Recommendation))...)
		writeTwiML(w, verbs)
	})
}

// HandleStatus takes Twilio's status callback: a final status completes
// the call (see callcontext.Service.Complete). It answers 204 once the
// completion is stored, and 503 when it could not be, so Twilio retries.
func HandleStatus(logger zerolog.Logger, calls *callcontext.Service, cfg Config) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		req := startRequest(r.PostForm)
		status := r.PostForm.Get("CallStatus")
		num, ok := cfg.Numbers[req.Hints.DNIS]
		if !ok || num.Tenant != tenantOf(r.Context()) || !final(status) {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		err := calls.Complete(r.Context(), callcontext.Scope{Tenant: num.Tenant, Mode: callcontext.Prod}, req.CallID, status, callDuration(r.PostForm))
		switch {
		case err == nil, errorsIsNotFound(err):
			w.WriteHeader(http.StatusNoContent)
		default:
			logger.Error().Err(err).Str("call_sid", req.CallID).Msg("complete call")
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	})
}

// callDuration is Twilio's CallDuration in seconds, or -1 when it is absent
// or not a number (the service then measures it from the start).
func callDuration(f url.Values) int64 {
	d, err := strconv.ParseInt(f.Get("CallDuration"), 10, 64)
	if err != nil || d < 0 {
		return -1
	}
	return d
}

func final(status string) bool {
	switch status {
	case callcontext.StatusCompleted, "busy", "failed", "no-answer", "canceled":
		return true
	}
	return false
}
