package voice

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/twilio/twilio-go/twiml"

	"github.com/stickycalls/stickycalls/context/callapi"
	"github.com/stickycalls/stickycalls/context/callcontext"
	"github.com/stickycalls/stickycalls/context/identity"
)

func errorsIsNotFound(err error) bool { return errors.Is(err, callcontext.ErrNotFound) }

// HandleWhisper tells the agent who is calling before the bridge. Only the
// agent hears it, so it says more than the caller's greeting, but never a
// confidence number.
func HandleWhisper(calls *callcontext.Service, cfg Config) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tenant := tenantOf(r.Context())
		call, err := calls.Call(r.Context(), callcontext.Scope{Tenant: tenant, Mode: callcontext.Prod}, r.URL.Query().Get("call_id"))
		text := "New caller."
		if err == nil && call.Started {
			text = whisper(call.Start)
		}
		writeTwiML(w, []twiml.Element{&twiml.VoiceSay{Message: text}})
	})
}

func whisper(res callapi.StartResult) string {
	if res.Match == nil {
		return "New caller."
	}
	var b strings.Builder
	name := res.Match.Variables["name"]
	switch res.Identity.Recommendation {
	case identity.Reuse:
		b.WriteString("Returning caller")
	default:
		b.WriteString("Possibly a returning caller, not confirmed")
	}
	if name != "" {
		b.WriteString(", " + name)
	}
	b.WriteString(".")
	for _, in := range res.OpenIntents {
		fmt.Fprintf(&b, " Open issue: %s, %d calls.", strings.ReplaceAll(in.Intent, "_", " "), in.AttemptCount)
	}
	return b.String()
}
