package voice

import (
	"context"
	"net/http"

	"github.com/rs/zerolog"
	"github.com/twilio/twilio-go/twiml"

	"github.com/stickycalls/stickycalls/context/callcontext"
	"github.com/stickycalls/stickycalls/context/identity"
)

// HandleAfterStream answers Twilio's <Connect action> webhook, called when
// a media stream ends: what the AI agent asked in-band (a hang-up, or a
// transfer to a target the number allows), else (the agent crashed,
// refused or said nothing, or the store cannot tell) the number's
// fallback. It always answers TwiML within the deadline.
func HandleAfterStream(logger zerolog.Logger, calls *callcontext.Service, cfg Config) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), cfg.deadline())
		defer cancel()
		req, num, ok := cfg.webhookCall(w, r, logger)
		if !ok {
			return
		}
		ref, tier := "", string(identity.Ignore)
		call, err := calls.Call(ctx, callcontext.Scope{Tenant: num.Tenant, Mode: callcontext.Prod}, req.CallID)
		rec := call.Record
		if err == nil {
			ref, tier = rec.CustomerRef, string(rec.Recommendation)
		} else {
			cfg.Metrics.fallback(reason(ctx, err))
		}
		switch a := callcontext.ParseAgentAction(rec.AgentAction); {
		case a.Hangup:
			writeTwiML(w, []twiml.Element{&twiml.VoiceHangup{}})
		case a.TransferTo != "" && num.allows(a.TransferTo):
			writeTwiML(w, cfg.next(r, Action{Dial: a.TransferTo}, req.CallID, ref, tier))
		default:
			writeTwiML(w, cfg.fallback(r, num, req.Hints.DNIS, req.CallID, ref, tier))
		}
	})
}
