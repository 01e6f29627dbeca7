// Package vapi gives a Vapi assistant caller memory through its server
// URL: an assistant-request is a start, answered with the assistant to run
// and the caller's context as variable values its prompt can use
// ({{stickycalls_name}}, …); an end-of-call-report is the call's end, with
// the intent and variables the assistant's structured output names. Every
// message must carry the tenant's secret (X-Vapi-Secret). It degrades as
// the voice webhooks do: whatever fails, the assistant-request is answered
// within the deadline with generic values, and a report the store cannot
// take waits in the outbox (Vapi does not retry it).
package vapi

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/rs/zerolog"

	"github.com/stickycalls/stickycalls/context/apierror"
	"github.com/stickycalls/stickycalls/context/callapi"
	"github.com/stickycalls/stickycalls/context/callcontext"
	"github.com/stickycalls/stickycalls/context/identity"
	"github.com/stickycalls/stickycalls/greetings"
	"github.com/stickycalls/stickycalls/voice/agentctx"
)

// SecretHeader carries the tenant's secret on every server message.
const SecretHeader = "X-Vapi-Secret"

// Number is how a number a Vapi assistant answers is served.
type Number struct {
	Tenant      string
	AssistantID string
	Mapping     agentctx.Mapping // the end, from the structured output
}

// Outbox keeps the ends the store could not take (see context/outbox).
type Outbox interface {
	PutEnd(tenant string, end callapi.EndRequest) error
}

// Config is what the handler needs.
type Config struct {
	Numbers  map[string]Number // by E.164
	Secrets  map[string]string // tenant → the secret its messages carry
	Deadline time.Duration     // to answer an assistant-request (0: 800 ms; Vapi waits 7.5 s)
	Greeter  *greetings.Greeter
	Outbox   Outbox // nil: a report the store refuses is answered 503
}

func (c Config) deadline() time.Duration {
	if c.Deadline <= 0 {
		return 800 * time.Millisecond
	}
	return c.Deadline
}

// message is the part of a server message this service reads.
type message struct {
	Message struct {
		Type        string `json:"type"`
		Call        call   `json:"call"`
		Customer    *party `json:"customer"`
		PhoneNumber *party `json:"phoneNumber"`
		Analysis    struct {
			StructuredData map[string]any `json:"structuredData"`
		} `json:"analysis"`
	} `json:"message"`
}

type call struct {
	ID          string `json:"id"`
	Customer    *party `json:"customer"`
	PhoneNumber *party `json:"phoneNumber"`
}

type party struct {
	Number string `json:"number"`
}

// numbers are the caller's and the called number of m, raw.
func (m message) numbers() (from, to string) {
	for _, p := range []*party{m.Message.Customer, m.Message.Call.Customer} {
		if p != nil && from == "" {
			from = p.Number
		}
	}
	for _, p := range []*party{m.Message.PhoneNumber, m.Message.Call.PhoneNumber} {
		if p != nil && to == "" {
			to = p.Number
		}
	}
	return from, to
}

// maxBody bounds a server message: an end-of-call report carries the
// transcript.
const maxBody = 4 << 20

// Handle answers POST /integrations/vapi.
func Handle(logger zerolog.Logger, calls *callcontext.Service, cfg Config) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get(SecretHeader) == "" {
			writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "Unauthorized", "message": "missing " + SecretHeader})
			return
		}
		raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
		var m message
		if err == nil {
			err = json.Unmarshal(raw, &m)
		}
		if err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "Bad Request", "message": "not a Vapi server message"})
			return
		}
		from, to := m.numbers()
		dnis, _, _ := callapi.NormalizeANI(to)
		num, known := cfg.Numbers[dnis]
		if !known {
			// No tenant, so no secret to check and nothing to read: a
			// request gets the generic values, anything else is ignored.
			if m.Message.Type == "assistant-request" {
				writeJSON(w, http.StatusOK, generic(cfg, dnis, ""))
			} else {
				writeJSON(w, http.StatusOK, struct{}{})
			}
			return
		}
		secret := cfg.Secrets[num.Tenant]
		if secret == "" || subtle.ConstantTimeCompare([]byte(r.Header.Get(SecretHeader)), []byte(secret)) != 1 {
			writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "Unauthorized", "message": "wrong " + SecretHeader})
			return
		}
		sc := callcontext.Scope{Tenant: num.Tenant, Mode: callcontext.Prod}
		switch m.Message.Type {
		case "assistant-request":
			writeJSON(w, http.StatusOK, assistant(r.Context(), logger, calls, cfg, sc, num, m.Message.Call.ID, from, dnis))
		case "end-of-call-report":
			report(w, r.Context(), logger, calls, cfg, sc, num, m, from)
		default:
			writeJSON(w, http.StatusOK, struct{}{}) // status updates, transcripts: nothing to do
		}
	})
}

// answer is the reply to an assistant-request.
type answer struct {
	AssistantID string    `json:"assistantId,omitempty"`
	Overrides   overrides `json:"assistantOverrides"`
}

type overrides struct {
	VariableValues map[string]string `json:"variableValues"`
}

// assistant starts the call within the deadline and answers with its
// context, or with generic values when anything fails.
func assistant(ctx context.Context, logger zerolog.Logger, calls *callcontext.Service, cfg Config, sc callcontext.Scope, num Number, callID, from, dnis string) answer {
	ctx, cancel := context.WithTimeout(ctx, cfg.deadline())
	defer cancel()
	ani, withheld, ok := callapi.NormalizeANI(from)
	if !ok {
		ani, withheld = "", true
	}
	if callID == "" {
		return generic(cfg, dnis, num.AssistantID)
	}
	req := callapi.StartRequest{CallID: callID, Hints: callapi.Hints{ANI: ani, Withheld: withheld, DNIS: dnis},
		Attestation: identity.AttestNone, Channel: "phone"}
	res, err := agentctx.Start(ctx, calls, sc, req)
	if err != nil {
		logger.Warn().Err(err).Str("vapi_call", callID).Msg("vapi: generic values")
		return generic(cfg, dnis, num.AssistantID)
	}
	return answer{AssistantID: num.AssistantID, Overrides: overrides{VariableValues: agentctx.Values(cfg.Greeter, res)}}
}

// generic is the answer when nothing is known: the generic greeting.
func generic(cfg Config, dnis, assistantID string) answer {
	return answer{AssistantID: assistantID, Overrides: overrides{VariableValues: agentctx.Generic(cfg.Greeter, dnis)}}
}

// report saves the end of the call from its end-of-call report: the
// intent and variables the structured output names, the caller's number as
// a hint for a call whose start was lost. Vapi sends a report once and may
// send it twice: the second is the first's replay.
func report(w http.ResponseWriter, ctx context.Context, logger zerolog.Logger, calls *callcontext.Service, cfg Config, sc callcontext.Scope, num Number, m message, from string) {
	parsed, err := num.Mapping.End(m.Message.Call.ID, from, m.Message.Analysis.StructuredData) // the §4 rules: slugs, sensitive data…
	if err != nil {
		logger.Warn().Err(err).Msg("vapi: end-of-call report refused")
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": "Bad Request", "message": err.Error()})
		return
	}
	// Vapi waits 20 s for the answer; the store gets twice the webhook
	// deadline, then the end waits in the outbox.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*cfg.deadline())
	defer cancel()
	_, err = calls.End(ctx, sc, parsed, "")
	switch {
	case err == nil:
		writeJSON(w, http.StatusOK, struct{}{})
	case errors.Is(err, callcontext.ErrUnavailable) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, callcontext.ErrInFlight):
		if cfg.Outbox != nil && cfg.Outbox.PutEnd(sc.Tenant, parsed) == nil {
			logger.Warn().Err(err).Msg("vapi: end kept in the outbox until the store is back")
			writeJSON(w, http.StatusOK, struct{}{})
			return
		}
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "Service Unavailable", "message": "store unavailable"})
	default:
		status, msg := apierror.Status(err)
		logger.Warn().Err(err).Msg("vapi: end-of-call report not saved")
		writeJSON(w, status, map[string]string{"error": http.StatusText(status), "message": msg})
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	w.Write(b)
}
