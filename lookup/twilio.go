package lookup

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/sony/gobreaker/v2"
	"github.com/twilio/twilio-go/client"
	lookups "github.com/twilio/twilio-go/rest/lookups/v2"

	"github.com/stickycalls/stickycalls/context/identity"
)

// Causes of a failed request, wrapped by the errors LineType returns.
// errRefused is a 4xx answer other than 401, 403, 404 and 429 (Lookup not
// enabled, a bad request): Twilio is up, so the breaker counts it as a
// success. errUnauthorized (401, 403: wrong or revoked credentials) opens
// the tenant's breaker at once: every call would pay for a round trip that
// cannot succeed until an operator fixes the credentials.
var (
	errFailed       = errors.New("request to Twilio failed")
	errRefused      = errors.New("request refused by Twilio")
	errUnauthorized = errors.New("Twilio refused the credentials")
)

// lookupError is an error that is safe to log: its text never holds the
// phone number, and it unwraps only to a sentinel or a context error, never
// to twilio-go's errors, whose text holds the request URL.
type lookupError struct {
	msg   string
	cause error
}

func (e *lookupError) Error() string { return e.msg + ": " + e.cause.Error() }
func (e *lookupError) Unwrap() error { return e.cause }

// fetch asks Twilio for the number's line type. It runs inside the tenant's
// breaker: a nil error is an answer to cache.
func (c *Client) fetch(ctx context.Context, t *tenantClient, e164 string) (answer, error) {
	// Cancelling ctx on return also releases the connection of an error
	// response, whose body twilio-go leaves open.
	ctx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
	defer cancel()
	params := (&lookups.FetchPhoneNumberParams{}).SetFields("line_type_intelligence")
	began := time.Now()
	res, err := t.api(ctx, c.transport).FetchPhoneNumber(e164, params)
	c.opts.Metrics.took(t.name, time.Since(began))
	if st := status(err); st == http.StatusUnauthorized || st == http.StatusForbidden {
		t.unauthorized.Store(true) // ReadyToTrip reads it under the breaker's lock
	} else if err == nil {
		t.unauthorized.Store(false)
	}
	if err != nil {
		if status(err) == http.StatusNotFound && ctx.Err() == nil {
			return answer{identity.Unknown, c.opts.NegativeTTL}, nil
		}
		return answer{}, failure(ctx, err)
	}
	if !res.Valid {
		return answer{identity.Unknown, c.opts.NegativeTTL}, nil
	}
	lti := res.LineTypeIntelligence
	if lti.Type == "" || lti.ErrorCode != 0 {
		// Twilio could not tell this time (e.g. 60601, a Canadian number
		// without NPAC approval): ask again after a while.
		return answer{identity.Unknown, c.opts.NegativeTTL}, nil
	}
	return answer{lineTypeOf(lti.Type), c.opts.CacheTTL}, nil
}

// api returns a Lookup service whose every request carries ctx. twilio-go
// builds its requests with context.Background, so the ctx is bound to a
// per-call transport; the client, handler and service are small structs.
// Edge and Region are left empty: TWILIO_EDGE and TWILIO_REGION are not read.
func (t *tenantClient) api(ctx context.Context, rt http.RoundTripper) *lookups.ApiService {
	tc := &client.Client{
		Credentials: client.NewCredentials(t.user, t.password),
		HTTPClient: &http.Client{
			Transport:     ctxTransport{ctx: ctx, base: rt},
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}
	tc.SetAccountSid(t.account)
	return lookups.NewApiService(&client.RequestHandler{Client: tc})
}

// status returns the HTTP status of a Twilio error answer, or 0.
func status(err error) int {
	var tre *client.TwilioRestError
	if errors.As(err, &tre) {
		return tre.Status
	}
	var v1 *client.RestErrorV1
	if errors.As(err, &v1) {
		return v1.HttpStatusCode
	}
	return 0
}

// failure turns a twilio-go error into an error without the phone number.
func failure(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		// The reason the last waiter left, or this request's own timeout.
		return &lookupError{msg: "lookup: Twilio did not answer in time", cause: context.Cause(ctx)}
	}
	switch st := status(err); {
	case st == http.StatusTooManyRequests || st >= 500:
		return &lookupError{msg: "lookup: status " + strconv.Itoa(st) + codeOf(err), cause: errFailed}
	case st == http.StatusUnauthorized || st == http.StatusForbidden:
		return &lookupError{msg: "lookup: status " + strconv.Itoa(st) + codeOf(err), cause: errUnauthorized}
	case st != 0:
		return &lookupError{msg: "lookup: status " + strconv.Itoa(st) + codeOf(err), cause: errRefused}
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		return &lookupError{msg: "lookup: " + ue.Op + ": " + redact(ue.Err.Error()), cause: errFailed}
	}
	// A body that is not JSON (e.g. a proxy's 502 page) or a broken answer.
	return &lookupError{msg: "lookup: " + redact(err.Error()), cause: errFailed}
}

// codeOf returns ", code N" for a Twilio error with a code.
func codeOf(err error) string {
	var tre *client.TwilioRestError
	if errors.As(err, &tre) && tre.Code != 0 {
		return ", code " + strconv.Itoa(tre.Code)
	}
	return ""
}

// digits matches what could be a phone number, raw or URL-encoded.
var digits = regexp.MustCompile(`(\+|%2[bB])?[0-9]{5,}`)

// redact masks every run of five or more digits.
func redact(s string) string { return digits.ReplaceAllString(s, "***") }

// newBreaker returns a tenant's breaker. Only transitions are logged. It
// opens after BreakerFailures consecutive failures, or at once when
// unauthorized says Twilio refused the credentials.
func newBreaker(tenant string, o Options, unauthorized *atomic.Bool) *gobreaker.CircuitBreaker[answer] {
	log := o.Logger
	o.Metrics.state(tenant, gobreaker.StateClosed)
	return gobreaker.NewCircuitBreaker[answer](gobreaker.Settings{
		Name:        "twilio-lookup",
		MaxRequests: 1, // one half-open probe; its success closes the breaker
		Timeout:     o.BreakerOpen,
		ReadyToTrip: func(n gobreaker.Counts) bool {
			return n.ConsecutiveFailures >= o.BreakerFailures || unauthorized.Load()
		},
		IsSuccessful: func(err error) bool {
			return err == nil || errors.Is(err, errRefused)
		},
		// A caller who hung up says nothing about Twilio's health.
		IsExcluded: func(err error) bool { return errors.Is(err, context.Canceled) },
		// Runs under the breaker's mutex: it must not call the breaker.
		OnStateChange: func(name string, from, to gobreaker.State) {
			o.Metrics.state(tenant, to)
			ev := log.Info()
			if to == gobreaker.StateOpen {
				ev = log.Warn()
			}
			ev.Str("breaker", name).Str("tenant", tenant).Stringer("from", from).Stringer("to", to).
				Msg("lookup breaker state changed")
		},
	})
}

// ctxTransport sends each request with the ctx of the Lookup it belongs to.
// It lives for one call only, so it is the one place a ctx is held.
type ctxTransport struct {
	ctx  context.Context
	base http.RoundTripper
}

func (t ctxTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	return t.base.RoundTrip(r.WithContext(t.ctx))
}

// countingTransport counts the requests sent to Twilio.
type countingTransport struct {
	base http.RoundTripper
	n    *atomic.Uint64
}

func (t countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	t.n.Add(1)
	return t.base.RoundTrip(r)
}
