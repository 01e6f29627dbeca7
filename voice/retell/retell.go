// Package retell gives a Retell agent caller memory through two webhooks
// of the number and the agent: the inbound webhook (call_inbound) starts
// the call and answers the caller's context as dynamic variables, with the
// call's id in its metadata; the agent's webhook then completes the call
// (call_ended) and saves its end (call_analyzed), found through that
// metadata. Every request must carry a valid X-Retell-Signature under the
// tenant's Retell API key, at most five minutes old.
package retell

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"regexp"
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

// SignatureHeader carries Retell's signature: "v=<unix ms>,d=<hex
// HMAC-SHA256 of the body and the timestamp, under the API key>".
const SignatureHeader = "X-Retell-Signature"

// replayWindow is how old (or early) a signature may be.
const replayWindow = 5 * time.Minute

// Number is how a number a Retell agent answers is served.
type Number struct {
	Tenant  string
	AgentID string           // override_agent_id; "" keeps the number's agent
	Mapping agentctx.Mapping // the end, from call_analysis.custom_analysis_data
}

// Outbox keeps what the store could not take (see context/outbox).
type Outbox interface {
	Put(tenant string, c callcontext.Completion) error
	PutEnd(tenant string, end callapi.EndRequest) error
}

// Config is what the handlers need.
type Config struct {
	Numbers  map[string]Number
	Keys     map[string]string // tenant → Retell API key
	Deadline time.Duration     // to answer call_inbound (0: 800 ms; Retell waits 10 s)
	Greeter  *greetings.Greeter
	Outbox   Outbox
	Now      func() time.Time // nil: time.Now
}

func (c Config) deadline() time.Duration {
	if c.Deadline <= 0 {
		return 800 * time.Millisecond
	}
	return c.Deadline
}

func (c Config) now() time.Time {
	if c.Now == nil {
		return time.Now()
	}
	return c.Now()
}

var signature = regexp.MustCompile(`^v=(\d+),d=([0-9a-fA-F]+)$`)

// Verify reports whether header signs body under key at now, as Retell's
// SDK verifies: HMAC-SHA256(key, body + timestamp), within five minutes.
func Verify(body []byte, key, header string, now time.Time) bool {
	m := signature.FindStringSubmatch(header)
	if m == nil || key == "" {
		return false
	}
	ms, err := strconv.ParseInt(m[1], 10, 64)
	if err != nil || now.Sub(time.UnixMilli(ms)).Abs() > replayWindow {
		return false
	}
	mac := hmac.New(sha256.New, []byte(key))
	mac.Write(body)
	mac.Write([]byte(m[1]))
	got, err := hex.DecodeString(m[2])
	return err == nil && hmac.Equal(got, mac.Sum(nil))
}

// Sign is Retell's signature of body under key at t (for tests and tools).
func Sign(body []byte, key string, t time.Time) string {
	ts := strconv.FormatInt(t.UnixMilli(), 10)
	mac := hmac.New(sha256.New, []byte(key))
	mac.Write(body)
	mac.Write([]byte(ts))
	return "v=" + ts + ",d=" + hex.EncodeToString(mac.Sum(nil))
}

// maxBody bounds a webhook: call_analyzed carries the transcript.
const maxBody = 4 << 20

// read reads and checks a webhook: its number's configuration and its
// signature. It answers the request itself when it reports false.
func (c Config) read(w http.ResponseWriter, r *http.Request, v any, to func() string) (Number, bool, bool) {
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err == nil {
		err = json.Unmarshal(raw, v)
	}
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "Bad Request", "message": "not a Retell webhook"})
		return Number{}, false, false
	}
	dnis, _, _ := callapi.NormalizeANI(to())
	num, known := c.Numbers[dnis]
	if !known {
		return num, false, true // no tenant: nothing to read or write
	}
	if !Verify(raw, c.Keys[num.Tenant], r.Header.Get(SignatureHeader), c.now()) {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "Unauthorized", "message": "bad or stale " + SignatureHeader})
		return num, false, false
	}
	return num, true, true
}

// inbound is the inbound webhook's body.
type inbound struct {
	Event       string `json:"event"`
	CallInbound struct {
		AgentID    string `json:"agent_id"`
		FromNumber string `json:"from_number"`
		ToNumber   string `json:"to_number"`
	} `json:"call_inbound"`
}

// inboundAnswer is the reply to call_inbound.
type inboundAnswer struct {
	CallInbound struct {
		OverrideAgentID  string            `json:"override_agent_id,omitempty"`
		DynamicVariables map[string]string `json:"dynamic_variables"`
		Metadata         map[string]string `json:"metadata,omitempty"`
	} `json:"call_inbound"`
}

// HandleInbound answers POST /integrations/retell/inbound: the call's
// start, within the deadline, or generic values when anything fails.
// call_inbound carries no call id: the id is made from the tenant, the
// numbers and the two-minute span the call came in, so a retried webhook
// replays the first start rather than making a second (callIDFor).
func HandleInbound(logger zerolog.Logger, calls *callcontext.Service, cfg Config) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var in inbound
		num, ok, answered := cfg.read(w, r, &in, func() string { return in.CallInbound.ToNumber })
		if !answered {
			return
		}
		dnis, _, _ := callapi.NormalizeANI(in.CallInbound.ToNumber)
		var a inboundAnswer
		a.CallInbound.DynamicVariables = agentctx.Generic(cfg.Greeter, dnis)
		if !ok {
			writeJSON(w, http.StatusOK, a)
			return
		}
		a.CallInbound.OverrideAgentID = num.AgentID
		ctx, cancel := context.WithTimeout(r.Context(), cfg.deadline())
		defer cancel()
		ani, withheld, valid := callapi.NormalizeANI(in.CallInbound.FromNumber)
		if !valid {
			ani, withheld = "", true
		}
		sc := callcontext.Scope{Tenant: num.Tenant, Mode: callcontext.Prod}
		callID := callIDFor(ctx, calls, sc, in.CallInbound.FromNumber, dnis, cfg.now())
		a.CallInbound.Metadata = map[string]string{"stickycalls_call_id": callID}
		req := callapi.StartRequest{CallID: callID, Hints: callapi.Hints{ANI: ani, Withheld: withheld, DNIS: dnis},
			Attestation: identity.AttestNone, Channel: "phone"}
		res, err := agentctx.Start(ctx, calls, sc, req)
		if err != nil {
			logger.Warn().Err(err).Msg("retell: generic values")
			a.CallInbound.DynamicVariables["stickycalls_call_id"] = callID // the end still finds the call
			writeJSON(w, http.StatusOK, a)
			return
		}
		a.CallInbound.DynamicVariables = agentctx.Values(cfg.Greeter, res)
		writeJSON(w, http.StatusOK, a)
	})
}

// Retell waits 10 s for the inbound webhook's answer and retries it up to
// 3 times, so a retry comes within retryWindow of the first request.
const (
	idSpan      = 2 * time.Minute
	retryWindow = time.Minute
)

// callIDFor is the call_id of a call_inbound that came at now: its
// span's (callIDOf), or early in a span the previous span's, when that
// call started within retryWindow: the first request came before the
// span's edge and this is its retry. A failed read keeps the span's id.
func callIDFor(ctx context.Context, calls *callcontext.Service, sc callcontext.Scope, from, to string, now time.Time) string {
	id := callIDOf(sc.Tenant, from, to, now)
	if now.Sub(now.Truncate(idSpan)) >= retryWindow {
		return id
	}
	prev := callIDOf(sc.Tenant, from, to, now.Add(-retryWindow))
	if v, err := calls.Call(ctx, sc, prev); err == nil && v.Started && now.Sub(v.Record.Started) < retryWindow {
		return prev
	}
	return id
}

// callIDOf is the call_id of a call_inbound in now's span.
func callIDOf(tenant, from, to string, now time.Time) string {
	span := now.UTC().Truncate(idSpan).Unix()
	sum := sha256.Sum256([]byte(tenant + "\x00" + from + "\x00" + to + "\x00" + strconv.FormatInt(span, 10)))
	return "retell_" + hex.EncodeToString(sum[:12])
}

// event is the agent webhook's body.
type event struct {
	Event string `json:"event"`
	Call  struct {
		CallID       string            `json:"call_id"`
		FromNumber   string            `json:"from_number"`
		ToNumber     string            `json:"to_number"`
		Metadata     map[string]any    `json:"metadata"`
		DurationMS   *int64            `json:"duration_ms"`
		Variables    map[string]string `json:"retell_llm_dynamic_variables"`
		CallAnalysis struct {
			Custom map[string]any `json:"custom_analysis_data"`
		} `json:"call_analysis"`
	} `json:"call"`
}

// HandleEvents answers POST /integrations/retell/events: call_ended
// completes the call (as /voice/status does), call_analyzed saves its end;
// both find the call through the metadata the inbound webhook set, and wait
// in the outbox when the store is away. Other events are ignored.
func HandleEvents(logger zerolog.Logger, calls *callcontext.Service, cfg Config) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var ev event
		num, ok, answered := cfg.read(w, r, &ev, func() string { return ev.Call.ToNumber })
		if !answered {
			return
		}
		callID, _ := ev.Call.Metadata["stickycalls_call_id"].(string)
		if !ok || callID == "" {
			writeJSON(w, http.StatusOK, struct{}{}) // not a call this service started
			return
		}
		sc := callcontext.Scope{Tenant: num.Tenant, Mode: callcontext.Prod}
		ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 2*cfg.deadline())
		defer cancel()
		var err error
		keep := func() error { return nil }
		switch ev.Event {
		case "call_ended":
			c := callcontext.Completion{CallID: callID, Status: callcontext.StatusCompleted, Duration: -1, At: cfg.now()}
			if ev.Call.DurationMS != nil {
				c.Duration = *ev.Call.DurationMS / 1000
			}
			err = calls.Complete(ctx, sc, c)
			keep = func() error { return cfg.Outbox.Put(sc.Tenant, c) }
		case "call_analyzed":
			end, perr := num.Mapping.End(callID, ev.Call.FromNumber, ev.Call.CallAnalysis.Custom)
			if perr != nil {
				logger.Warn().Err(perr).Msg("retell: call_analyzed refused")
				writeJSON(w, http.StatusBadRequest, map[string]string{"error": "Bad Request", "message": perr.Error()})
				return
			}
			_, err = calls.End(ctx, sc, end, "")
			keep = func() error { return cfg.Outbox.PutEnd(sc.Tenant, end) }
		}
		switch {
		case err == nil, errors.Is(err, callcontext.ErrNotFound):
			writeJSON(w, http.StatusOK, struct{}{})
		case cfg.Outbox != nil && (errors.Is(err, callcontext.ErrUnavailable) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, callcontext.ErrInFlight)) && keep() == nil:
			logger.Warn().Err(err).Str("event", ev.Event).Msg("retell: kept in the outbox until the store is back")
			writeJSON(w, http.StatusOK, struct{}{})
		default:
			status, msg := apierror.Status(err)
			logger.Warn().Err(err).Str("event", ev.Event).Msg("retell: not saved")
			writeJSON(w, status, map[string]string{"error": http.StatusText(status), "message": msg})
		}
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	w.Write(b)
}
