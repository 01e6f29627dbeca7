package voice

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strconv"

	"github.com/rs/zerolog"
	"github.com/twilio/twilio-go/twiml"

	"github.com/stickycalls/stickycalls/context/callapi"
	"github.com/stickycalls/stickycalls/context/callcontext"
	"github.com/stickycalls/stickycalls/context/identity"
)

// HandleConfirm takes the answer to the confirm question (see classify):
// yes continues as reuse; no as a new caller's call, and the call is then
// not linked to the guessed customer; an unclear answer is asked once more
// (the attempt travels in the signed action URL, so any instance may take
// it), then continues as no answer, with the fallback greeting.
func HandleConfirm(logger zerolog.Logger, calls *callcontext.Service, cfg Config) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), cfg.deadline())
		defer cancel()
		req, num, ok := cfg.webhookCall(w, r, logger)
		if !ok {
			return
		}
		sc := callcontext.Scope{Tenant: num.Tenant, Mode: callcontext.Prod}
		set := cfg.Greeter.SetFor(req.Hints.DNIS)
		asked, err := askedAbout(ctx, calls, sc, req.CallID)
		if err != nil {
			cfg.degrade(w, r, logger, num, req, reason(ctx, err))
			return
		}
		conf, cerr := strconv.ParseFloat(r.PostForm.Get("Confidence"), 64)
		answer := classify(r.PostForm.Get("Digits"), r.PostForm.Get("SpeechResult"), conf, cerr == nil, set, asked.Name)
		if answer == callcontext.AnswerNone && r.URL.Query().Get("attempt") == "" && asked.Greeting.Tier == identity.Confirm {
			cfg.Metrics.fallback("asked_again")
			writeTwiML(w, []twiml.Element{cfg.confirmGather(r, set, cfg.Greeter.Confirm(req.Hints.DNIS, asked.Name).Text, asked.Name, 2)})
			return
		}
		res, err := calls.Confirm(ctx, sc, req.CallID, answer)
		if err != nil {
			cfg.degrade(w, r, logger, num, req, reason(ctx, err))
			return
		}
		// The call now stands as the answer left it: a "yes" hears the
		// reuse greeting, a "no" one short line (not a second hello), no
		// answer the fallback text.
		var text string
		switch {
		case answer == callcontext.AnswerNone:
			cfg.Metrics.fallback("no_input")
			text = cfg.Greeter.Fallback(req.Hints.DNIS).Text
		case answer == callcontext.AnswerNo && asked.Greeting.Tier == identity.Confirm:
			text = cfg.Greeter.Declined(req.Hints.DNIS)
		default:
			res.DNIS = req.Hints.DNIS
			text = cfg.Greeter.Voice(&res).Text
		}
		writeTwiML(w, cfg.greetThen(r, req.Hints.DNIS, text, num.Next, res.CallID, res.CustomerRef, string(res.Identity.Recommendation)))
	})
}

// askedAbout is the call's start as the confirm question asked it: the
// greeting spoken and the stored name it asked about.
func askedAbout(ctx context.Context, calls *callcontext.Service, sc callcontext.Scope, callID string) (callapi.StartResult, error) {
	call, err := calls.Call(ctx, sc, callID)
	if err == nil && !call.Started {
		err = callcontext.ErrNotFound
	}
	return call.Start, err
}

// HandleStatus takes Twilio's status callback: a final status completes
// the call (see callcontext.Service.Complete) as of the callback's
// arrival. It answers 204 once the completion is stored, in the store or,
// when the store fails or is too slow, in the local outbox, which applies
// it when the store is back; 503 (which Twilio retries only with #rp=… in
// the URL) only when neither could keep it.
func HandleStatus(logger zerolog.Logger, calls *callcontext.Service, cfg Config) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		req := startRequest(r.PostForm)
		status := r.PostForm.Get("CallStatus")
		num, ok := cfg.Numbers[req.Hints.DNIS]
		if !ok || num.Tenant != tenantOf(r.Context()) || !final(status) || req.CallID == "" {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), cfg.deadline())
		defer cancel()
		c := callcontext.Completion{CallID: req.CallID, Status: status, Duration: callDuration(r.PostForm), At: cfg.now()}
		err := calls.Complete(ctx, callcontext.Scope{Tenant: num.Tenant, Mode: callcontext.Prod}, c)
		switch {
		case err == nil, errorsIsNotFound(err):
			w.WriteHeader(http.StatusNoContent)
			return
		case cfg.Outbox != nil:
			perr := cfg.Outbox.Put(num.Tenant, c)
			if perr == nil {
				logger.Warn().Err(err).Str("call_sid", req.CallID).Msg("completion kept in the outbox until the store is back")
				w.WriteHeader(http.StatusNoContent)
				return
			}
			err = errors.Join(err, perr)
		}
		logger.Error().Err(err).Str("call_sid", req.CallID).Msg("complete call")
		w.Header().Set("Retry-After", "1")
		w.WriteHeader(http.StatusServiceUnavailable)
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
