package voice

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/rs/zerolog"

	"github.com/stickycalls/stickycalls/context/callapi"
	"github.com/stickycalls/stickycalls/context/callcontext"
)

// RelayLimits bounds the media stream relay. Zero fields take defaults.
type RelayLimits struct {
	// Buffer and QueueBytes bound what is queued toward each socket, in
	// frames and in bytes. A sender that finds the queue full waits: the
	// relay stops reading the faster side (back-pressure), it never drops a
	// frame. Defaults 2048 frames and 512 KiB (about 30 s of audio).
	Buffer     int
	QueueBytes int
	// Stall ends the stream when a queue has been full this long without a
	// frame leaving it: its peer has stopped reading. Default 5s.
	Stall     time.Duration
	Handshake time.Duration // to read Twilio's connected and start, and to dial the agent. Default 5s
	Idle      time.Duration // a socket silent this long (no frame, no pong) is dead. Default 30s
	Ping      time.Duration // ping interval on both sockets. Default 10s
	Write     time.Duration // to write one frame. Default 5s
	Linger    time.Duration // the agent's socket stays open after Twilio's stop. Default 30s
	Store     time.Duration // each store call: the call record, the end, the lease. Default 5s
	Lease     time.Duration // the call's one-stream lease, renewed every third of it. Default 60s
}

func (l RelayLimits) withDefaults() RelayLimits {
	if l.Buffer < 4 {
		l.Buffer = 2048 // at least connected and start fit before the writer runs
	}
	if l.QueueBytes <= 0 {
		l.QueueBytes = 512 << 10
	}
	l.Stall = orDefault(l.Stall, 5*time.Second)
	l.Handshake = orDefault(l.Handshake, 5*time.Second)
	l.Idle = orDefault(l.Idle, 30*time.Second)
	l.Ping = orDefault(l.Ping, 10*time.Second)
	l.Write = orDefault(l.Write, 5*time.Second)
	l.Linger = orDefault(l.Linger, 30*time.Second)
	l.Store = orDefault(l.Store, 5*time.Second)
	l.Lease = orDefault(l.Lease, time.Minute)
	return l
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// frame is one queued write: a text message, or a close frame (code set)
// sent after everything queued before it.
type frame struct {
	data []byte
	code int
	text string
}

// side is one socket of a stream. Its pump is the only writer of data
// frames, and the relay's loop for that socket its only reader; pings and
// close frames go through WriteControl, which gorilla allows beside them.
type side struct {
	name   string // "twilio" or "agent"
	conn   *websocket.Conn
	lim    RelayLimits
	out    chan frame
	closed chan struct{} // closed once the close frame is sent (or could not be)
	gone   chan struct{} // closed by the reader when the connection is closed
	once   sync.Once
	mu     sync.Mutex
	ending bool          // no more idle extensions: the close handshake has its own deadline
	queued atomic.Int64  // bytes in out
	freed  chan struct{} // signalled (without blocking) each time the pump takes a frame
}

func newSide(name string, conn *websocket.Conn, lim RelayLimits, readLimit int64) *side {
	s := &side{name: name, conn: conn, lim: lim, out: make(chan frame, lim.Buffer),
		closed: make(chan struct{}), gone: make(chan struct{}), freed: make(chan struct{}, 1)}
	conn.SetReadLimit(readLimit)
	conn.SetPongHandler(func(string) error { s.extend(); return nil })
	return s
}

// extend gives the reader the idle time from now for its next message or
// pong, unless the side is closing.
func (s *side) extend() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.ending {
		s.conn.SetReadDeadline(time.Now().Add(s.lim.Idle))
	}
}

// read returns the next message and extends the read deadline.
func (s *side) read() (int, []byte, error) {
	typ, msg, err := s.conn.ReadMessage()
	if err == nil {
		s.extend()
	}
	return typ, msg, err
}

// drain reads and discards until the connection fails, which after shut is
// the peer's close frame or the close deadline, then closes it. Closing with
// unread data would reset the connection and could lose the close frame.
func (s *side) drain() {
	for {
		if _, _, err := s.conn.ReadMessage(); err != nil {
			break
		}
	}
	s.conn.Close()
	close(s.gone)
}

// Why send gave up.
var (
	errStalled = errors.New("peer stopped reading")
	errClosed  = errors.New("socket closing")
)

// send queues a text message, waiting while the queue is full in frames or
// bytes (a frame larger than the byte bound waits for an empty queue). It
// fails with errStalled when the queue made no progress for the stall
// time, and with errClosed once the side is closing.
func (s *side) send(b []byte) error {
	var stall *time.Timer
	for {
		if q := s.queued.Load(); q == 0 || q+int64(len(b)) <= int64(s.lim.QueueBytes) {
			select {
			case s.out <- frame{data: b}:
				s.queued.Add(int64(len(b)))
				if stall != nil {
					stall.Stop()
				}
				return nil
			default:
			}
		}
		if stall == nil {
			stall = time.NewTimer(s.lim.Stall)
			defer stall.Stop()
		}
		select {
		case <-s.freed:
			stall.Reset(s.lim.Stall) // the peer is reading: wait on
		case <-stall.C:
			return errStalled
		case <-s.closed:
			return errClosed
		}
	}
}

// taken accounts for a frame the pump took off the queue.
func (s *side) taken(f frame) {
	s.queued.Add(-int64(len(f.data)))
	select {
	case s.freed <- struct{}{}:
	default:
	}
}

// finish closes the side once what is queued has been written, or at once
// if the queue is full.
func (s *side) finish(code int, text string) {
	select {
	case s.out <- frame{code: code, text: text}:
	default:
		s.shut(code, text)
	}
}

// shut sends a close frame and gives the peer the write time to answer it,
// after which the reader's drain closes the connection; if the frame cannot
// be sent it closes the connection at once. Only the first call does
// anything; it blocks at most the write time while the pump finishes a
// write.
func (s *side) shut(code int, text string) {
	s.once.Do(func() {
		s.mu.Lock()
		s.ending = true
		s.mu.Unlock()
		err := s.conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, text), time.Now().Add(s.lim.Write))
		s.conn.SetReadDeadline(time.Now().Add(s.lim.Write))
		if err != nil {
			s.conn.Close()
		}
		close(s.closed)
	})
}

// abort closes the connection without a close frame, for a peer that has
// stopped reading: waiting to write one would hold up the other side.
func (s *side) abort() {
	s.once.Do(func() {
		s.mu.Lock()
		s.ending = true
		s.mu.Unlock()
		s.conn.Close()
		close(s.closed)
	})
}

// shutting reports whether the close frame is sent.
func (s *side) shutting() bool {
	select {
	case <-s.closed:
		return true
	default:
		return false
	}
}

// pump writes what is queued and pings, until the side is shut (nil), a
// write fails, or shutdown is closed (errShutdown).
func (s *side) pump(shutdown <-chan struct{}) error {
	ping := time.NewTicker(s.lim.Ping)
	defer ping.Stop()
	for {
		select {
		case f := <-s.out:
			s.taken(f)
			if f.code != 0 {
				s.shut(f.code, f.text)
				return nil
			}
			s.conn.SetWriteDeadline(time.Now().Add(s.lim.Write))
			if err := s.conn.WriteMessage(websocket.TextMessage, f.data); err != nil {
				return err
			}
		case <-ping.C:
			if err := s.conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(s.lim.Write)); err != nil {
				return err
			}
		case <-s.closed:
			return nil
		case <-shutdown:
			return errShutdown
		}
	}
}

// relay is one accepted stream between Twilio and the agent.
type relay struct {
	logger   zerolog.Logger // carries call_id and stream_sid
	calls    *callcontext.Service
	metrics  *Metrics
	lim      RelayLimits
	proto    *protocol
	scope    callcontext.Scope
	callID   string
	twilio   *side
	agent    *side
	shutdown <-chan struct{}
	lease    *streamLease
	number   Number      // the number called: its transfer targets
	stopped  atomic.Bool // Twilio sent stop
	// agentEnded: the agent sent its own end of the session (ConversationRelay's end).
	agentEnded atomic.Bool
	once       sync.Once
	outcome    string // set once, by the first stop
}

// run relays until both sockets are closed. Its goroutine reads Twilio;
// it starts the agent's reader and each socket's pump, and waits for all
// three before it returns. Shutting a socket ends the goroutines that use
// it, so stop ends them all.
func (rl *relay) run(ctx context.Context, first [][]byte) {
	defer context.AfterFunc(ctx, func() { rl.stop("request_ended") })()
	rl.twilio.extend()
	rl.agent.extend()
	// The renewer is waited for before the release: a renewal still in
	// flight would otherwise grant the lease again after it.
	leased := make(chan struct{})
	var renewer sync.WaitGroup
	if rl.lease.store {
		renewer.Go(func() { rl.lease.keep(leased, rl.lim) })
	}
	defer func() {
		close(leased)
		renewer.Wait()
		rl.lease.release(rl.lim)
	}()
	var wg sync.WaitGroup
	wg.Go(func() { rl.pump(rl.agent) })
	wg.Go(func() { rl.pump(rl.twilio) })
	wg.Go(func() { rl.fromAgent(ctx) })
	for _, f := range first {
		rl.forward(f)
	}
	outcome := "twilio_closed"
	if rl.fromTwilio(ctx) {
		rl.linger()
		outcome = "completed"
	}
	rl.stop(outcome)
	wg.Wait()
	rl.metrics.stream(rl.outcome)
	rl.logger.Info().Str("outcome", rl.outcome).Msg("stream ended")
}

// stop closes both sockets with a close frame, but a socket whose peer
// stopped reading at once; the first reason given is the stream's outcome.
// When the agent ended the session itself (it closed, hung up, transferred
// or sent its own end), Twilio's socket closes after what is queued for
// it, so the agent's last words and its end still reach the caller.
func (rl *relay) stop(outcome string) {
	rl.once.Do(func() { rl.outcome = outcome })
	code := websocket.CloseNormalClosure
	switch rl.outcome {
	case "shutdown", "request_ended":
		code = websocket.CloseGoingAway
	case "slow_agent":
		code = websocket.CloseInternalServerErr
		rl.agent.abort()
	case "slow_twilio":
		code = websocket.CloseInternalServerErr
		rl.twilio.abort()
	}
	switch rl.outcome {
	case "agent_closed", "agent_end", "agent_hangup", "agent_transfer":
		rl.twilio.finish(code, rl.outcome)
	default:
		rl.twilio.shut(code, rl.outcome)
	}
	rl.agent.shut(code, rl.outcome)
}

// pump runs a side's writer and stops the relay when it fails: a socket
// that cannot be written to is as good as closed, and one that accepted
// nothing for the write time has stopped reading.
func (rl *relay) pump(s *side) {
	var timeout net.Error
	switch err := s.pump(rl.shutdown); {
	case errors.Is(err, errShutdown):
		rl.stop("shutdown")
	case errors.As(err, &timeout) && timeout.Timeout():
		rl.stop("slow_" + s.name)
	case err != nil && s == rl.twilio && rl.proto.closeEnds:
		// Twilio closing a ConversationRelay session is how it ends, and
		// a ping may meet the closed socket first: the reader, unblocked
		// here, ends the session as Twilio's close.
		s.conn.Close()
	case err != nil:
		rl.stop(s.name + "_closed")
	}
}

// send queues msg toward s, and ends the stream if s's peer has stopped
// reading. It reports whether msg was queued.
func (rl *relay) send(s *side, msg []byte) bool {
	switch err := s.send(msg); {
	case errors.Is(err, errStalled):
		rl.stop("slow_" + s.name)
		return false
	case err != nil:
		return false
	}
	return true
}

// fromTwilio forwards Twilio's frames to the agent in order until the
// session ends: a media stream's stop, after which Twilio's socket is
// closed (only the status callback completes the call: Twilio also stops a
// redirected call's stream), or Twilio closing a ConversationRelay
// session, which the agent is told of with stickycalls.session_ended. It
// reads until the socket is closed, and reports whether the session ended
// so, rather than failing.
func (rl *relay) fromTwilio(ctx context.Context) bool {
	defer rl.twilio.drain()
	for {
		typ, msg, err := rl.twilio.read()
		if err != nil {
			if rl.proto.closeEnds && !rl.twilio.shutting() && !rl.stopped.Load() {
				rl.stopped.Store(true)
				rl.forward(rl.notice("stickycalls.session_ended"))
			}
			return rl.stopped.Load()
		}
		if typ != websocket.TextMessage || rl.stopped.Load() || rl.twilio.shutting() {
			continue // after stop, or our close frame, nothing more goes to the agent
		}
		// A frame that is not JSON is still forwarded.
		if rl.proto.stop == "" || kindOf(msg) != rl.proto.stop {
			rl.forward(msg)
			continue
		}
		rl.stopped.Store(true) // before the agent can see stop and answer it
		if rl.forward(msg) {
			rl.twilio.finish(websocket.CloseNormalClosure, "stream stopped")
		}
	}
}

// notice is a frame of the relay's own for the agent, of kind.
func (rl *relay) notice(kind string) []byte {
	b, _ := marshal(map[string]string{rl.proto.key: kind}) // strings only: it cannot fail
	return b
}

// forward queues a frame for the agent, waiting while the agent is behind.
func (rl *relay) forward(msg []byte) bool { return rl.send(rl.agent, msg) }

// linger keeps the agent's socket open after Twilio's stop, so the agent
// can still save the call, then closes it after what is queued.
func (rl *relay) linger() {
	t := time.NewTimer(rl.lim.Linger)
	defer t.Stop()
	select {
	case <-rl.agent.gone:
		return
	case <-t.C:
	}
	rl.agent.finish(websocket.CloseNormalClosure, "call ended")
	<-rl.agent.gone // the pump shuts it, or stops the relay if it fails
}

// fromAgent handles the agent's frames until its socket is closed. An
// agent that goes away before Twilio's stop ends the stream, so Twilio
// runs the TwiML fallback.
func (rl *relay) fromAgent(ctx context.Context) {
	defer rl.agent.drain()
	for {
		typ, msg, err := rl.agent.read()
		if err != nil {
			if !rl.stopped.Load() {
				outcome := "agent_closed"
				if rl.agentEnded.Load() {
					outcome = "agent_end" // its own end, passed on, then its socket closed: as it should
				}
				rl.stop(outcome)
			}
			return
		}
		if !rl.agent.shutting() {
			rl.fromAgentFrame(ctx, typ, msg)
		}
	}
}

// fromAgentFrame forwards what Twilio takes from an agent (media, mark
// and clear on a stream; text, play, sendDigits, language and end on
// ConversationRelay) unchanged, answers stickycalls.end, .hangup and
// .transfer (named by "event" or "type"), and drops and counts the rest.
func (rl *relay) fromAgentFrame(ctx context.Context, typ int, msg []byte) {
	var f struct {
		Event string          `json:"event"`
		Type  string          `json:"type"`
		End   json.RawMessage `json:"end"`
		To    string          `json:"to"`
	}
	if typ != websocket.TextMessage || json.Unmarshal(msg, &f) != nil {
		rl.metrics.drop("malformed")
		return
	}
	switch kind := cmp.Or(f.Event, f.Type); {
	case rl.proto.toTwilio(kind):
		if rl.stopped.Load() {
			rl.metrics.drop("closed")
			return
		}
		if kind == rl.proto.hangup {
			rl.hangingUp(ctx)
			rl.agentEnded.Store(true)
		}
		rl.send(rl.twilio, msg) // while Twilio is behind, the agent is not read
	case kind == "stickycalls.end":
		rl.end(ctx, f.End)
	case kind == "stickycalls.hangup", kind == "stickycalls.transfer":
		rl.instruct(ctx, kind == "stickycalls.hangup", f.To)
	default:
		rl.metrics.drop("event")
	}
}

// hangingUp stores the hang-up that the agent's own end of a
// ConversationRelay session means, before the end reaches Twilio, so that
// /voice/after-stream hangs up rather than run the number's fallback. (An
// agent that wants a transfer asks with stickycalls.transfer, which ends
// the session itself.) It waits at most a second: a store too slow to
// take it leaves the fallback to run.
func (rl *relay) hangingUp(ctx context.Context) {
	sctx, cancel := context.WithTimeout(ctx, min(rl.lim.Store, time.Second))
	defer cancel()
	if err := rl.calls.Instruct(sctx, rl.scope, rl.callID, callcontext.AgentAction{Hangup: true}); err != nil {
		rl.logger.Warn().AnErr("err", err).Msg("the agent's end not stored; the fallback will run")
	}
}

// instruct takes the agent's wish for the end of its stream: it stores it
// on the call's record, then ends the stream, so that Twilio asks
// /voice/after-stream, which follows it on whichever instance answers. A
// transfer target that is invalid, or not one the number allows, is
// answered with stickycalls.error and the stream goes on. When the
// instruction cannot be stored the stream still ends, and the number's
// fallback runs.
func (rl *relay) instruct(ctx context.Context, hangup bool, to string) {
	a := callcontext.AgentAction{Hangup: hangup}
	if !hangup {
		target, err := callcontext.Transfer(to)
		if err == nil && !rl.number.allows(target) {
			err = &callapi.ValidationError{Issues: []callapi.Issue{{Path: []string{"to"}, Message: "not one of the number's transfer targets"}}}
		}
		if err != nil {
			reply, _ := endReply(rl.proto.key, nil, err)
			rl.send(rl.agent, reply)
			return
		}
		a.TransferTo = target
	}
	sctx, cancel := context.WithTimeout(ctx, rl.lim.Store)
	defer cancel()
	if err := rl.calls.Instruct(sctx, rl.scope, rl.callID, a); err != nil {
		rl.logger.Warn().AnErr("err", err).Msg("agent instruction not stored; the fallback will run")
	}
	outcome := "agent_hangup"
	if !hangup {
		outcome = "agent_transfer"
	}
	rl.stop(outcome)
}

func (m *Metrics) drop(reason string) {
	if m != nil {
		m.dropped.WithLabelValues(reason).Inc()
	}
}

func (m *Metrics) stream(outcome string) {
	if m != nil {
		m.streams.WithLabelValues(outcome).Inc()
	}
}
