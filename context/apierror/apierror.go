// Package apierror is API.md §6 written once: the HTTP status and stable
// message of every domain error, and the error body that every channel
// sends (the REST API, and the relays' in-band answers).
package apierror

import (
	"errors"
	"net/http"

	"github.com/stickycalls/stickycalls/context/callapi"
	"github.com/stickycalls/stickycalls/context/callcontext"
	"github.com/stickycalls/stickycalls/context/keys"
	"github.com/stickycalls/stickycalls/context/storage"
)

// Status is the API's answer to an error of callcontext: the HTTP status
// of API.md §6 and the stable message a client sees. An error it does not
// know is a 500 whose message carries no cause.
func Status(err error) (int, string) {
	var invalid *callapi.ValidationError
	switch {
	case errors.As(err, &invalid):
		return http.StatusBadRequest, "Validation failed"
	case errors.Is(err, keys.ErrBadKey):
		return http.StatusUnauthorized, "Missing, malformed, unknown or revoked API key"
	case errors.Is(err, callcontext.ErrOverQuota):
		return http.StatusPaymentRequired, "Monthly quota spent for this mode; it resets at 00:00 UTC on the 1st"
	case errors.Is(err, callcontext.ErrNotFound):
		return http.StatusNotFound, "Not found"
	case errors.Is(err, callcontext.ErrConflict):
		return http.StatusConflict, "This call_id was already used with another body"
	case errors.Is(err, callcontext.ErrInFlight):
		return http.StatusConflict, "An identical request is still in progress; retry shortly"
	case errors.Is(err, callcontext.ErrKeyReused):
		return http.StatusUnprocessableEntity, "Idempotency-Key was already used with another body"
	case errors.Is(err, callcontext.ErrUnavailable), errors.Is(err, storage.ErrVersion):
		return http.StatusServiceUnavailable, "The store is unavailable; nothing was written, retry shortly"
	}
	return http.StatusInternalServerError, "internal error"
}

// Body is the §6 error body.
type Body struct {
	Error     string   `json:"error"`
	Message   string   `json:"message"`
	RequestID string   `json:"request_id,omitempty"` // the REST API's; an in-band answer has no request
	Details   *Details `json:"details,omitempty"`
}

// Details lists every problem of a request that failed validation.
type Details struct {
	Issues []callapi.Issue `json:"issues"`
}

// New is the body answering err with status and msg: with err's issues
// when it is a validation error.
func New(status int, msg string, err error) Body {
	b := Body{Error: http.StatusText(status), Message: msg}
	var invalid *callapi.ValidationError
	if errors.As(err, &invalid) {
		b.Details = &Details{Issues: invalid.Issues}
	}
	return b
}

// Of is Status and New together: the status and body answering a domain
// error.
func Of(err error) (int, Body) {
	status, msg := Status(err)
	return status, New(status, msg, err)
}
