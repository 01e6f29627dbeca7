package httpapi

import (
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/rs/zerolog"

	"github.com/stickycalls/stickycalls/context/apierror"
	"github.com/stickycalls/stickycalls/context/callapi"
	"github.com/stickycalls/stickycalls/context/callcontext"
)

// Errors of the HTTP layer itself.
var (
	errTooLarge     = errors.New("request body too large")
	errMediaType    = errors.New("content type is not JSON")
	errUnauthorized = errors.New("missing or invalid API key")
	errRouteMissing = errors.New("no such route")
	errMethod       = errors.New("method not allowed")
)

// handle adapts a handler that can fail. It is the only place where errors
// become HTTP responses.
func handle(logger zerolog.Logger, h func(http.ResponseWriter, *http.Request) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			writeError(w, r, err)
		}
	})
}

// readBody reads a JSON body of at most limit bytes.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
		return nil, errMediaType
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return nil, errTooLarge
	}
	if err != nil {
		return nil, &callapi.ValidationError{Issues: []callapi.Issue{{Path: []string{"body"}, Message: "could not be read"}}}
	}
	if !json.Valid(body) {
		return nil, &callapi.ValidationError{Issues: []callapi.Issue{{Path: []string{"body"}, Message: "malformed JSON"}}}
	}
	return body, nil
}

// writeJSON sends v with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		status, body = http.StatusInternalServerError, []byte(`{"error":"Internal Server Error","message":"internal error"}`)
	}
	writeRaw(w, status, body)
}

func writeRaw(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	w.Write(body)
}

// statusOf maps an error to its status and client message: the HTTP
// layer's own errors here, the domain's through apierror.Status, the one
// table of domain errors. A 5xx message never carries err's text.
func statusOf(err error) (int, string) {
	switch {
	case errors.Is(err, errUnauthorized):
		return http.StatusUnauthorized, "Missing, malformed, unknown or revoked API key"
	case errors.Is(err, errRouteMissing):
		return http.StatusNotFound, "No such route"
	case errors.Is(err, errMethod):
		return http.StatusMethodNotAllowed, "Method not allowed on this route"
	case errors.Is(err, errTooLarge):
		return http.StatusRequestEntityTooLarge, "Request body too large"
	case errors.Is(err, errMediaType):
		return http.StatusUnsupportedMediaType, "Content-Type must be application/json"
	case errors.Is(err, errNDJSON):
		return http.StatusUnsupportedMediaType, "Content-Type must be application/x-ndjson"
	case errors.Is(err, errRateLimited):
		return http.StatusTooManyRequests, "Rate limit exceeded for this mode; retry after the Retry-After seconds"
	}
	return apierror.Status(err)
}

// writeError answers with err's status and the documented body, and hands
// the cause to the request log.
func writeError(w http.ResponseWriter, r *http.Request, err error) {
	status, msg := statusOf(err)
	body := apierror.New(status, msg, err)
	body.RequestID = requestID(r.Context())
	switch status {
	case http.StatusConflict, http.StatusServiceUnavailable:
		if !errors.Is(err, callcontext.ErrConflict) {
			w.Header().Set("Retry-After", "1")
		}
	}
	if status >= 500 {
		noteError(r.Context(), err)
	}
	writeJSON(w, status, body)
}

// jsonErrors answers the router's own 404 and 405 with the JSON error body.
func jsonErrors(logger zerolog.Logger, mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, pattern := mux.Handler(r); pattern != "" {
			mux.ServeHTTP(w, r)
			return
		}
		probe := &statusProbe{header: http.Header{}}
		mux.ServeHTTP(probe, r)
		if allow := probe.header.Get("Allow"); allow != "" {
			w.Header().Set("Allow", allow)
		}
		if probe.status == http.StatusMethodNotAllowed {
			writeError(w, r, errMethod)
			return
		}
		writeError(w, r, errRouteMissing)
	})
}

// statusProbe records what the mux's own error handlers write.
type statusProbe struct {
	header http.Header
	status int
}

func (p *statusProbe) Header() http.Header         { return p.header }
func (p *statusProbe) Write(b []byte) (int, error) { return len(b), nil }
func (p *statusProbe) WriteHeader(status int)      { p.status = status }
