package simulate

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"time"
)

// Lookup returns a RoundTripper that answers Twilio Lookup v2 requests
// (GET /v2/PhoneNumbers/{number}?Fields=line_type_intelligence) from the
// world's truth on the day now says, without any network: a number's
// present line type, or Twilio's 404 for a number nobody has. It is safe
// for concurrent use.
func (w *World) Lookup(now func() time.Time) http.RoundTripper {
	return lookupTransport{w: w, now: now}
}

type lookupTransport struct {
	w   *World
	now func() time.Time
}

// lookupTypes are Twilio's names of the world's line types.
func twilioType(k lineKind) string {
	if k == kindVoIP {
		return "nonFixedVoip"
	}
	return string(k)
}

func (t lookupTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	number, _ := strings.CutPrefix(r.URL.Path, "/v2/PhoneNumbers/")
	k, ok := t.w.kindAt(number, t.w.day(t.now()))
	if !ok {
		return jsonResponse(r, http.StatusNotFound, map[string]any{
			"code": 20404, "message": "The requested resource was not found", "more_info": "https://www.twilio.com/docs/errors/20404", "status": 404,
		}), nil
	}
	return jsonResponse(r, http.StatusOK, map[string]any{
		"calling_country_code": "1", "country_code": "US", "phone_number": number, "valid": true,
		"validation_errors":      []string{},
		"line_type_intelligence": map[string]any{"type": twilioType(k), "error_code": nil, "carrier_name": "Simulated"},
		"url":                    "https://lookups.twilio.com/v2/PhoneNumbers/" + number,
	}), nil
}

func jsonResponse(r *http.Request, status int, v any) *http.Response {
	body, _ := json.Marshal(v)
	return &http.Response{
		StatusCode: status, Status: http.StatusText(status), Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: http.Header{"Content-Type": {"application/json"}},
		Body:   io.NopCloser(bytes.NewReader(body)), ContentLength: int64(len(body)), Request: r,
	}
}
