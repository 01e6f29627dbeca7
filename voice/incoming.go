package voice

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/rs/zerolog"
	"github.com/twilio/twilio-go/twiml"

	"github.com/stickycalls/stickycalls/context/callapi"
	"github.com/stickycalls/stickycalls/context/callcontext"
	"github.com/stickycalls/stickycalls/context/identity"
	"github.com/stickycalls/stickycalls/greetings"
	"github.com/stickycalls/stickycalls/voice/agentctx"
)

// attestation maps Twilio's StirVerstat to an attestation: a verified
// PASSporT gives its level, a failed one "failed", anything else none.
func attestation(verstat string) identity.Attestation {
	if rest, ok := strings.CutPrefix(verstat, "TN-Validation-Passed-"); ok && rest != "" {
		if a, ok := identity.ParseAttestation(rest[:1]); ok {
			return a
		}
	}
	if strings.HasPrefix(verstat, "TN-Validation-Failed") {
		return identity.AttestFailed
	}
	return identity.AttestNone
}

// startRequest turns an incoming-call webhook into a start.
func startRequest(f url.Values) callapi.StartRequest {
	ani, withheld, ok := callapi.NormalizeANI(f.Get("From"))
	if !ok {
		ani, withheld = "", true // client:alice, sip: and the like are never matched
	}
	dnis, _, _ := callapi.NormalizeANI(f.Get("To"))
	return callapi.StartRequest{
		CallID:      f.Get("CallSid"),
		Hints:       callapi.Hints{ANI: ani, Withheld: withheld, DNIS: dnis},
		Attestation: attestation(f.Get("StirVerstat")),
		Channel:     "phone",
	}
}

// HandleIncoming answers Twilio's "a call comes in" webhook. It always
// answers 200 with valid TwiML within the deadline: on any failure, an
// unknown number or a deadline hit the caller hears the generic greeting
// and the next action runs.
func HandleIncoming(logger zerolog.Logger, calls *callcontext.Service, cfg Config) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), cfg.deadline())
		defer cancel()
		req, num, ok := cfg.webhookCall(w, r, logger)
		if !ok {
			return
		}
		res, err := agentctx.Start(ctx, calls, callcontext.Scope{Tenant: num.Tenant, Mode: callcontext.Prod}, req)
		if err != nil {
			cfg.degrade(w, r, logger, num, req, reason(ctx, err))
			return
		}
		cfg.Metrics.tier(string(res.Greeting.Tier))
		writeTwiML(w, cfg.answer(r, num, req.Hints.DNIS, res))
	})
}

func reason(ctx context.Context, err error) string {
	switch {
	case ctx.Err() != nil:
		return "deadline"
	case errors.Is(err, callcontext.ErrUnavailable):
		return "store_unavailable"
	}
	return "start_failed"
}

// webhookCall reads a webhook's call and the number it called. When the
// number is not one of the signing tenant's, it answers with the fallback
// greeting and reports false.
func (c Config) webhookCall(w http.ResponseWriter, r *http.Request, logger zerolog.Logger) (callapi.StartRequest, Number, bool) {
	r.ParseForm() // the signature check has read and restored the body
	req := startRequest(r.PostForm)
	num, ok := c.Numbers[req.Hints.DNIS]
	if !ok || num.Tenant != tenantOf(r.Context()) || req.CallID == "" {
		c.degrade(w, r, logger, num, req, "unknown_number")
		return req, num, false
	}
	return req, num, true
}

// degrade answers with the set's fallback greeting (meant for when
// something failed or nothing was heard) and the next action.
func (c Config) degrade(w http.ResponseWriter, r *http.Request, logger zerolog.Logger, num Number, req callapi.StartRequest, why string) {
	c.Metrics.fallback(why)
	logger.Warn().Str("call_sid", req.CallID).Str("reason", why).Msg("voice fallback")
	writeTwiML(w, c.greetThen(r, req.Hints.DNIS, c.Greeter.Fallback(req.Hints.DNIS).Text, num.Next, req.CallID, "", string(identity.Ignore)))
}

// lead says text before the next action a, adding the set's connecting
// line before a dial: nothing says a question that nothing collects.
func (c Config) lead(dnis, text string, a Action) twiml.Element {
	if a.Dial != "" {
		text += " " + c.Greeter.Connecting(dnis)
	}
	return say(c.Greeter.SetFor(dnis), text)
}

// answer renders the start's tier in voice's texts (greetings.Greeter.Voice):
// reuse and ignore speak the greeting and run the next action; confirm
// asks first.
func (c Config) answer(r *http.Request, num Number, dnis string, res callapi.StartResult) []twiml.Element {
	res.DNIS = dnis
	if res.Match != nil {
		res.Name = res.Match.Variables["name"]
	}
	g := c.Greeter.Voice(&res)
	if g.Tier == identity.Confirm {
		return []twiml.Element{c.confirmGather(r, c.Greeter.SetFor(dnis), g.Text, res.Name, 1)}
	}
	return c.greetThen(r, dnis, g.Text, num.Next, res.CallID, res.CustomerRef, string(res.Identity.Recommendation))
}

// confirmGather asks the confirm question: a key or speech in the set's
// language, with the yes and no words and the name as hints, the end of
// speech found by Twilio. A second attempt says so in its action URL.
func (c Config) confirmGather(r *http.Request, set greetings.Set, question, name string, attempt int) twiml.Element {
	action := c.baseURL(r) + "/voice/confirm"
	if attempt > 1 {
		action += "?attempt=" + strconv.Itoa(attempt)
	}
	return &twiml.VoiceGather{
		Input: "dtmf speech", NumDigits: "1", Timeout: "5", SpeechTimeout: "auto", Language: set.Language,
		Hints: hints(set, name), Action: action, Method: "POST", ActionOnEmptyResult: "true",
		InnerElements: []twiml.Element{say(set, question)},
	}
}
