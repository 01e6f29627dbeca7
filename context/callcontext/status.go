package callcontext

import (
	"errors"
	"net/http"
)

// Status is the API's answer to an error of this package: the HTTP status
// of API.md §6 and the stable message a client sees. It is the one table
// of domain errors for every channel (REST and the media-stream relay);
// an error it does not know is a 500 whose message carries no cause.
func Status(err error) (int, string) {
	var invalid *ValidationError
	switch {
	case errors.As(err, &invalid):
		return http.StatusBadRequest, "Validation failed"
	case errors.Is(err, ErrBadKey):
		return http.StatusUnauthorized, "Missing, malformed, unknown or revoked API key"
	case errors.Is(err, ErrOverQuota):
		return http.StatusPaymentRequired, "Monthly quota spent for this mode; it resets at 00:00 UTC on the 1st"
	case errors.Is(err, ErrNotFound):
		return http.StatusNotFound, "Not found"
	case errors.Is(err, ErrConflict):
		return http.StatusConflict, "This call_id was already used with another body"
	case errors.Is(err, ErrInFlight):
		return http.StatusConflict, "An identical request is still in progress; retry shortly"
	case errors.Is(err, ErrKeyReused):
		return http.StatusUnprocessableEntity, "Idempotency-Key was already used with another body"
	case errors.Is(err, ErrUnavailable), errors.Is(err, ErrVersion):
		return http.StatusServiceUnavailable, "The store is unavailable; nothing was written, retry shortly"
	}
	return http.StatusInternalServerError, "internal error"
}
