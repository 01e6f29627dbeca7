package voice

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gorilla/websocket"
	"github.com/rs/zerolog"

	"github.com/stickycalls/stickycalls/context/apierror"
	"github.com/stickycalls/stickycalls/context/callapi"
	"github.com/stickycalls/stickycalls/context/callcontext"
	"github.com/stickycalls/stickycalls/context/identity"
)

// Read limits of the two sockets. Twilio's frames are small; an agent's
// stickycalls.end may carry a §4 body of up to 512 KiB.
const (
	twilioReadLimit = 64 << 10
	agentReadLimit  = 512<<10 + 4<<10
)

// Why a stream was refused, as logged and counted.
var (
	errNoStart      = errors.New("no start frame")
	errBadToken     = errors.New("invalid or expired stickycalls_token")
	errNoNumber     = errors.New("the number called does not connect to an agent of the account's tenant this way")
	errNoAgent      = errors.New("agent unreachable")
	errShutdown     = errors.New("server shutting down")
	errCallMismatch = errors.New("call_id parameter is not the stream's callSid")
	errDuplicate    = errors.New("the call already has a live stream")
)

// twilioStart is the part of Twilio's start frame the relay reads. Each
// frame is decoded into a fresh value: reused pointers would keep the
// fields of an earlier frame.
type twilioStart struct {
	Event     string `json:"event"`
	StreamSID string `json:"streamSid"`
	Start     *struct {
		AccountSID       string            `json:"accountSid"`
		CallSID          string            `json:"callSid"`
		StreamSID        string            `json:"streamSid"`
		CustomParameters map[string]string `json:"customParameters"`
	} `json:"start"`
}

// HandleStream relays a Twilio Media Stream to the AI agent of the call's
// number (API.md §8). The upgrade needs a valid X-Twilio-Signature, else
// 403; the start frame needs a stickycalls_token for its callSid and a call
// record of a streaming number, else the Twilio socket is closed so the
// TwiML fallback runs. Closing shutdown sends a close frame on every open
// stream. The handler returns only once every goroutine of its stream has
// ended.
func HandleStream(logger zerolog.Logger, calls *callcontext.Service, cfg Config, shutdown <-chan struct{}) http.Handler {
	return handleSessions(mediaStreams, logger, calls, cfg, shutdown)
}

// HandleRelay relays a ConversationRelay session to the AI agent of the
// call's number (API.md §8) as HandleStream relays a media stream: the
// setup message gets the caller's context, text flows both ways unchanged,
// and the agent's own end hangs up.
func HandleRelay(logger zerolog.Logger, calls *callcontext.Service, cfg Config, shutdown <-chan struct{}) http.Handler {
	return handleSessions(conversationRelay, logger, calls, cfg, shutdown)
}

// handleSessions accepts Twilio's signed upgrades of proto and relays each
// session to its number's agent.
func handleSessions(proto *protocol, logger zerolog.Logger, calls *callcontext.Service, cfg Config, shutdown <-chan struct{}) http.Handler {
	lim := cfg.Relay.withDefaults()
	leases := newLocalLeases()
	up := websocket.Upgrader{HandshakeTimeout: lim.Handshake, CheckOrigin: func(r *http.Request) bool {
		return r.Header.Get("Origin") == "" // Twilio is a server; a browser page must not reach the relay
	}}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		signers := cfg.streamSigners(r)
		if len(signers) == 0 {
			forbid(w)
			return
		}
		conn, err := up.Upgrade(hijacker(w), r, nil)
		if err != nil {
			return // Upgrade has answered
		}
		if cfg.Streams != nil {
			cfg.Streams.Add(1)
			defer cfg.Streams.Done()
		}
		defer cfg.Metrics.streamOpened()()
		tw := newSide("twilio", conn, lim, twilioReadLimit)
		o := opener{logger: logger, calls: calls, cfg: cfg, lim: lim, proto: proto, signers: signers, shutdown: shutdown, leases: leases}
		first, sess, err := o.readOpening(tw)
		var rl *relay
		if err == nil {
			rl, err = o.open(r.Context(), tw, first, sess)
		}
		if err != nil {
			o.refuse(tw, sess, err)
			return
		}
		rl.run(r.Context(), first)
	})
}

// streamSigners lists the accounts whose current or previous auth token
// signed the upgrade. Twilio signs the <Stream> URL with no parameters; it
// is unverified whether it signs the wss:// or the https:// form, so both
// are accepted.
func (c Config) streamSigners(r *http.Request) []Account {
	sig := r.Header.Get("X-Twilio-Signature")
	host := c.baseURL(r)
	if i := strings.Index(host, "://"); i >= 0 {
		host = host[i+3:]
	}
	var out []Account
	for _, a := range c.Accounts {
		for _, scheme := range []string{"wss://", "https://"} {
			if signed(scheme+host+r.URL.RequestURI(), url.Values{}, sig, a) {
				out = append(out, a)
				break
			}
		}
	}
	return out
}

// hijacker lets gorilla reach the connection through middleware whose
// ResponseWriter only offers Unwrap: Upgrade asserts http.Hijacker
// directly, while http.ResponseController follows Unwrap.
func hijacker(w http.ResponseWriter) http.ResponseWriter {
	if _, ok := w.(http.Hijacker); ok {
		return w
	}
	return unwrapHijacker{w}
}

type unwrapHijacker struct{ http.ResponseWriter }

func (u unwrapHijacker) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return http.NewResponseController(u.ResponseWriter).Hijack()
}

// opener is what accepting a stream needs.
type opener struct {
	logger   zerolog.Logger
	calls    *callcontext.Service
	cfg      Config
	lim      RelayLimits
	proto    *protocol
	signers  []Account
	shutdown <-chan struct{}
	leases   *localLeases
}

// open checks that the session belongs to the call its opening claims,
// adds the caller's context to the opening (the last of first), and dials
// the agent.
func (o opener) open(ctx context.Context, tw *side, first [][]byte, sess session) (*relay, error) {
	acct, call, num, err := o.verify(sess)
	if err != nil {
		return nil, err
	}
	// The store is asked for the lease and the context within one second
	// in all: a slow or dead store must not keep the caller waiting.
	sctx, cancel := context.WithTimeout(ctx, min(o.lim.Store, time.Second))
	defer cancel()
	sc := callcontext.Scope{Tenant: acct.Tenant, Mode: callcontext.Prod}
	lease, _, err := leaseStream(sctx, o.calls, o.leases, sc, call.CallSID, o.lim)
	if err != nil {
		return nil, err
	}
	opened := false
	defer func() {
		if !opened {
			lease.release(o.lim)
		}
	}()
	params := map[string]string{"from": call.From, "to": call.To}
	if ctx, ok := o.context(sctx, acct, call); ok {
		params["customer_ref"], params["recommendation"] = ctx.Start.CustomerRef, string(ctx.Start.Identity.Recommendation)
		params["stickycalls_context"] = ctx.json
	} else {
		params["stickycalls_degraded"], params["recommendation"] = "true", string(identity.Ignore)
		params["stickycalls_context"] = degradedContext(call)
	}
	if first[len(first)-1], err = o.proto.inject(first[len(first)-1], params); err != nil {
		return nil, err
	}
	select {
	case <-o.shutdown:
		return nil, errShutdown
	default:
	}
	agent, err := o.dial(ctx, num, acct)
	if err != nil {
		return nil, err
	}
	opened = true
	return &relay{logger: o.sessionLogger(sess), calls: o.calls, metrics: o.cfg.Metrics, lim: o.lim, proto: o.proto,
		scope: sc, callID: sess.CallSID, twilio: tw, agent: agent, shutdown: o.shutdown, lease: lease, number: num}, nil
}

// sessionLogger is the logger of a session, with its protocol, call_id
// and session id as far as they are known.
func (o opener) sessionLogger(sess session) zerolog.Logger {
	l := o.logger.With().Str("protocol", o.proto.name).Str(o.proto.idName, sess.ID)
	if sess.CallSID != "" {
		l = l.Str("call_id", sess.CallSID)
	}
	return l.Logger()
}

// readOpening reads Twilio's frames up to and including the one that
// opens the session (a media stream sends connected first) within the
// handshake time.
func (o opener) readOpening(tw *side) ([][]byte, session, error) {
	tw.conn.SetReadDeadline(time.Now().Add(o.lim.Handshake))
	var first [][]byte
	for len(first) < 3 {
		typ, msg, err := tw.conn.ReadMessage()
		if err != nil {
			return nil, session{}, errNoStart
		}
		if typ != websocket.TextMessage {
			continue
		}
		first = append(first, msg)
		if sess, ok := o.proto.opening(msg); ok {
			return first, sess, nil
		}
	}
	return nil, session{}, errNoStart
}

// verify checks that a session belongs to a call this service answered:
// its token was made for its callSid and numbers by the account that
// signed the upgrade, and the number called connects to an agent of that
// account's tenant over the session's protocol. It needs no store: it
// returns the call and its number.
func (o opener) verify(s session) (Account, streamCall, Number, error) {
	p := s.Params
	call := streamCall{CallSID: s.CallSID, From: p["from"], To: p["to"]}
	acct, ok := o.cfg.account(s.AccountSID)
	if !ok || !containsAccount(o.signers, acct) || !validStreamToken(p["stickycalls_token"], call, acct, o.cfg.now()) {
		return Account{}, call, Number{}, errBadToken
	}
	if p["call_id"] != s.CallSID {
		return Account{}, call, Number{}, errCallMismatch
	}
	num, known := o.cfg.Numbers[call.To]
	if !known || num.Tenant != acct.Tenant || num.Next.agentURL(o.proto) == "" {
		return Account{}, call, Number{}, errNoNumber
	}
	return acct, call, num, nil
}

// callContext is the context an agent gets: the call's start as it now
// stands, and that start as JSON.
type callContext struct {
	Start callapi.StartResult
	json  string
}

// context reads the call's start, the context the agent gets. It is not
// needed to connect: with the store down or slow the session goes on
// degraded (ok false).
func (o opener) context(ctx context.Context, acct Account, sc streamCall) (callContext, bool) {
	call, err := o.calls.Call(ctx, callcontext.Scope{Tenant: acct.Tenant, Mode: callcontext.Prod}, sc.CallSID)
	var body []byte
	if err == nil && call.Started {
		body, err = call.JSON()
	}
	if err != nil || !call.Started {
		o.cfg.Metrics.fallback("stream_degraded")
		o.logger.Warn().AnErr("err", err).Str("call_id", sc.CallSID).Msg("stream without stored context")
		return callContext{}, false
	}
	return callContext{call.Start, string(body)}, true
}

func containsAccount(list []Account, a Account) bool {
	for _, b := range list {
		if b.Tenant == a.Tenant && b.AccountSID == a.AccountSID {
			return true
		}
	}
	return false
}

// dial opens the number's agent socket within the handshake time. The
// upgrade is signed as Twilio signs a stream's (X-Twilio-Signature over the
// agent URL with no parameters, under the account's auth token), so an
// agent that checks Twilio's signature accepts the relay unchanged; it also
// carries the number's static agent headers.
func (o opener) dial(ctx context.Context, num Number, acct Account) (*side, error) {
	d := websocket.Dialer{Proxy: http.ProxyFromEnvironment, HandshakeTimeout: o.lim.Handshake}
	ctx, cancel := context.WithTimeout(ctx, o.lim.Handshake)
	defer cancel()
	h := http.Header{}
	for name, v := range num.AgentHeaders {
		h.Set(name, v)
	}
	agentURL := num.Next.agentURL(o.proto)
	h.Set("X-Twilio-Signature", Sign(acct.AuthToken, agentURL, nil))
	conn, resp, err := d.DialContext(ctx, agentURL, h)
	if resp != nil && resp.Body != nil {
		resp.Body.Close()
	}
	if err != nil {
		return nil, errors.Join(errNoAgent, err)
	}
	return newSide("agent", conn, o.lim, agentReadLimit), nil
}

// refuse closes Twilio's socket with a close frame, so the TwiML after
// <Connect> runs, and logs why without any payload.
func (o opener) refuse(tw *side, sess session, err error) {
	code, outcome := websocket.ClosePolicyViolation, "refused"
	switch {
	case errors.Is(err, errNoAgent):
		code, outcome = websocket.CloseTryAgainLater, "agent_unreachable"
	case errors.Is(err, errShutdown):
		code, outcome = websocket.CloseGoingAway, "shutdown"
	case errors.Is(err, errDuplicate):
		outcome = "duplicate"
	}
	o.cfg.Metrics.stream(outcome)
	logger := o.sessionLogger(sess)
	logger.Warn().AnErr("err", err).Str("outcome", outcome).Msg("stream refused")
	tw.shut(code, outcome)
	tw.drain()
}

// degradedContext is the stickycalls_context of a stream whose stored
// start could not be read: valid JSON in the start answer's shape, saying
// so, with nothing remembered (the agent may save the call later over REST
// with identity_hints built from the from and to parameters).
func degradedContext(call streamCall) string {
	b, _ := marshal(map[string]any{
		"call_id": call.CallSID, "degraded": true, "customer_ref": nil,
		"identity":     map[string]any{"confidence": 0, "level": identity.Low, "recommendation": identity.Ignore, "sources": []string{}, "candidates": []string{}},
		"open_intents": []string{}, "variables": map[string]string{}, "match": nil, "confidence": nil,
	})
	return string(b)
}

// withContext adds params (the caller's context) to a media stream's
// start.customParameters and removes the stickycalls_token, which is for
// the relay only. Other fields of start keep their values, though not their
// order or spacing.
func withContext(frame []byte, add map[string]string) ([]byte, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(frame, &top); err != nil {
		return nil, err
	}
	start, err := withParams(top["start"], add)
	if err != nil {
		return nil, err
	}
	top["start"] = start
	return marshal(top)
}

// withParams adds params to the customParameters of the JSON object obj
// and removes the stickycalls_token: a ConversationRelay setup, or a
// stream's start.
func withParams(obj []byte, add map[string]string) ([]byte, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(obj, &m); err != nil {
		return nil, err
	}
	if m == nil {
		return nil, errors.New("not a JSON object")
	}
	params := map[string]string{}
	if raw, ok := m["customParameters"]; ok {
		if err := json.Unmarshal(raw, &params); err != nil || params == nil {
			params = map[string]string{}
		}
	}
	delete(params, "stickycalls_token")
	for k, v := range add {
		params[k] = v
	}
	var err error
	if m["customParameters"], err = marshal(params); err != nil {
		return nil, err
	}
	return marshal(m)
}

// marshal encodes v without escaping <, > and &, so values pass unchanged.
func marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// end saves an in-band stickycalls.end as POST /v1/calls/end would, with
// the stream's call_id (which also serves as the idempotency key), and
// answers the agent with stickycalls.ended or stickycalls.error. Once the
// call is saved after Twilio's stop, the agent's socket has nothing left to
// wait for and is closed.
func (rl *relay) end(ctx context.Context, raw json.RawMessage) {
	body, err := rl.save(ctx, raw)
	reply, err := endReply(rl.proto.key, body, err)
	if status, _ := apierror.Of(err); err != nil && status >= 500 {
		rl.logger.Error().Err(err).Msg("in-band end") // the agent gets no cause
	}
	if !rl.send(rl.agent, reply) {
		return
	}
	if err == nil && rl.stopped.Load() {
		rl.agent.finish(websocket.CloseNormalClosure, "call ended")
	}
}

// endReply is the frame answering an end that returned body and err, its
// kind named by key, and err again (or the error of encoding body).
func endReply(key string, body []byte, err error) ([]byte, error) {
	if err == nil {
		var reply []byte
		reply, err = marshal(map[string]any{key: "stickycalls.ended", "result": json.RawMessage(body)})
		if err == nil {
			return reply, nil
		}
	}
	_, e := apierror.Of(err)
	e.RequestID = ""                                                          // a frame answers no HTTP request
	reply, _ := marshal(map[string]any{key: "stickycalls.error", "error": e}) // strings only: it cannot fail
	return reply, err
}

// save validates and stores an in-band end body and returns the §4 response.
func (rl *relay) save(ctx context.Context, raw json.RawMessage) ([]byte, error) {
	body, err := withCallID(raw, rl.callID)
	if err != nil {
		return nil, err
	}
	req, err := callapi.ParseEnd(body)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, rl.lim.Store)
	defer cancel()
	rep, err := rl.calls.End(ctx, rl.scope, req, "")
	return rep.Body, err
}

// withCallID turns the end object of a stickycalls.end into a §4 body. The
// call is the stream's: a different call_id is refused.
func withCallID(raw json.RawMessage, callID string) ([]byte, error) {
	m := map[string]json.RawMessage{}
	if len(raw) > 0 && string(raw) != "null" {
		if err := json.Unmarshal(raw, &m); err != nil || m == nil {
			return nil, invalid("must be a JSON object", "end")
		}
	}
	if id, ok := m["call_id"]; ok {
		var s string
		if json.Unmarshal(id, &s) != nil || s != callID {
			return nil, invalid("is the stream's call; leave it out", "call_id")
		}
	}
	m["call_id"], _ = json.Marshal(callID)
	return marshal(m)
}

func invalid(msg string, path ...string) error {
	return &callapi.ValidationError{Issues: []callapi.Issue{{Path: path, Message: msg}}}
}
