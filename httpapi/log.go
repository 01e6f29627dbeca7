package httpapi

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net"
	"net/http"
	"time"

	"github.com/rs/zerolog"

	"github.com/stickycalls/stickycalls/context/callcontext"
)

// logFields collects what a request's one log line says. Handlers fill it
// in as they learn things; nothing in it is a phone number in clear.
type logFields struct {
	requestID string
	scope     callcontext.Scope
	callID    string
	ani       phone
	err       error
}

type fieldsKey struct{}

func fieldsOf(ctx context.Context) *logFields {
	f, _ := ctx.Value(fieldsKey{}).(*logFields)
	if f == nil {
		return &logFields{} // a handler used outside logRequests
	}
	return f
}

func requestID(ctx context.Context) string                { return fieldsOf(ctx).requestID }
func noteScope(ctx context.Context, sc callcontext.Scope) { fieldsOf(ctx).scope = sc }
func noteError(ctx context.Context, err error)            { fieldsOf(ctx).err = err }

func noteCall(ctx context.Context, callID, ani string) {
	f := fieldsOf(ctx)
	f.callID, f.ani = callID, phone(ani)
}

// idHash is how a log names an id a client chose (which may be anything,
// a phone number included): the first 12 hex digits of its SHA-256, enough
// to follow one call through the logs and to match it against an id one
// already knows.
func idHash(id string) string {
	sum := sha256.Sum256([]byte(id))
	return hex.EncodeToString(sum[:6])
}

func newRequestID() string {
	var b [10]byte
	rand.Read(b[:])
	return "req_" + hex.EncodeToString(b[:])
}

// statusWriter remembers the status a handler wrote.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection (WebSockets).
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Hijack hands the connection to a WebSocket upgrade and records the 101
// for the request's log line.
func (w *statusWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, rw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err == nil && w.status == 0 {
		w.status = http.StatusSwitchingProtocols
	}
	return c, rw, err
}

// logRequests gives each request an id and writes one log line for it,
// and turns a panic into a 500 that carries no internals.
func logRequests(logger zerolog.Logger, m *metrics, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		f := &logFields{requestID: newRequestID()}
		w.Header().Set("X-Request-Id", f.requestID)
		sw := &statusWriter{ResponseWriter: w}
		r = r.WithContext(context.WithValue(r.Context(), fieldsKey{}, f))
		defer func() {
			p := recover()
			if p != nil && p != http.ErrAbortHandler {
				f.err = panicError{p}
				if sw.status == 0 {
					writeError(sw, r, f.err)
				}
			}
			d := time.Since(start)
			status := sw.status
			// A client gone before the answer is a 499, unless the answer
			// was a server error of its own (a store outage stays a 503).
			if r.Context().Err() != nil && (status < 500 || errors.Is(f.err, context.Canceled)) {
				status = statusClientClosed
			}
			m.observe(r, status, d)
			logLine(logger, r, f, status, d)
			if p == http.ErrAbortHandler {
				panic(p) // logged first: an aborted answer (a cut export) is seen
			}
		}()
		next.ServeHTTP(sw, r)
	})
}

// statusClientClosed is logged and counted for a request whose client went
// away before the answer (nginx's 499): never a server error.
const statusClientClosed = 499

type panicError struct{ v any }

func (p panicError) Error() string { return "panic in handler" }

func logLine(logger zerolog.Logger, r *http.Request, f *logFields, status int, d time.Duration) {
	ev := logger.Info()
	if status >= 500 {
		ev = logger.Error().AnErr("err", f.err)
	}
	// The route, never the raw path: a path may hold a client's id, or
	// anything at all when no route matched.
	route := r.Pattern
	if route == "" {
		route = "unmatched"
	}
	ev = ev.Str("request_id", f.requestID).Str("method", r.Method).Str("route", route).
		Int("status", status).Dur("duration_ms", d)
	if f.scope.Tenant != "" {
		ev = ev.Str("tenant", f.scope.Tenant).Str("mode", string(f.scope.Mode))
	}
	if f.callID != "" {
		ev = ev.Str("call_id_hash", idHash(f.callID))
	}
	if f.ani != "" {
		ev = ev.Stringer("ani", f.ani)
	}
	ev.Msg("request")
}

// phone is an E.164 phone number. It redacts itself when logged.
type phone string

// String implements fmt.Stringer; log it with zerolog's Stringer.
func (p phone) String() string {
	if len(p) <= 4 {
		return "***"
	}
	return "***" + string(p[len(p)-4:])
}
