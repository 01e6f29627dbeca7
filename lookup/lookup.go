// Package lookup tells the line type of a phone number with Twilio Lookup v2
// (the line_type_intelligence package).
//
// Answers are kept in a Cache, concurrent misses for one number share one
// request, and each tenant has a circuit breaker that stops calling Twilio
// while Twilio keeps failing. Every failure comes back as an error, which
// callers treat as identity.Unknown. Neither errors nor logs ever contain the
// phone number.
package lookup

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	"github.com/sony/gobreaker/v2"

	"github.com/stickycalls/stickycalls/context/identity"
)

// Errors returned by LineType, tested with errors.Is. Besides these, a
// failed request wraps context.DeadlineExceeded when Twilio did not answer
// in time and context.Canceled when every caller waiting for it gave up.
var (
	ErrNoCredentials = errors.New("lookup: tenant has no Twilio credentials")
	ErrInvalidNumber = errors.New("lookup: not an E.164 number")
	ErrBreakerOpen   = errors.New("lookup: circuit breaker open")
)

// Credentials are one tenant's Twilio credentials. An API key and secret are
// preferred when both they and an auth token are set.
type Credentials struct{ AccountSID, AuthToken, APIKey, APISecret string }

// basicAuth returns the user and password to send, and false when the
// credentials are incomplete.
func (cr Credentials) basicAuth() (user, password string, ok bool) {
	if cr.APIKey != "" && cr.APISecret != "" {
		return cr.APIKey, cr.APISecret, true
	}
	if cr.AccountSID != "" && cr.AuthToken != "" {
		return cr.AccountSID, cr.AuthToken, true
	}
	return "", "", false
}

// Cache keeps answers per number; the service's store implements it.
// CachedLineType reports false for a number with no unexpired answer.
type Cache interface {
	CachedLineType(ctx context.Context, e164 string, now time.Time) (identity.LineType, bool, error)
	CacheLineType(ctx context.Context, e164 string, lt identity.LineType, expires time.Time) error
}

// Options tune a Client. Zero fields take their defaults.
type Options struct {
	Timeout         time.Duration // per Lookup request, default 300ms; the ctx deadline wins when earlier
	CacheTTL        time.Duration // how long an answer is kept, default 30 days
	NegativeTTL     time.Duration // how long "no such number" is kept, default 1 hour
	BreakerFailures uint32        // consecutive failures that open a tenant's breaker, default 5
	BreakerOpen     time.Duration // how long a breaker stays open before a half-open probe, default 30s
	Now             func() time.Time
	Logger          zerolog.Logger    // breaker transitions, and refused credentials (at most once a minute); the zero Logger logs nothing
	Metrics         *Metrics          // nil: none
	Transport       http.RoundTripper // nil means http.DefaultTransport
}

func (o Options) withDefaults() Options {
	o.Timeout = orDefault(o.Timeout, 300*time.Millisecond)
	o.CacheTTL = orDefault(o.CacheTTL, 30*24*time.Hour)
	o.NegativeTTL = orDefault(o.NegativeTTL, time.Hour)
	o.BreakerOpen = orDefault(o.BreakerOpen, 30*time.Second)
	if o.BreakerFailures == 0 {
		o.BreakerFailures = 5
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Transport == nil {
		o.Transport = http.DefaultTransport
	}
	return o
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// Stats are counts since a Client was made.
type Stats struct {
	Requests          uint64 // HTTP requests sent to Twilio
	CacheHits         uint64 // answers taken from the Cache
	Failures          uint64 // Lookups that got no answer from Twilio (timeouts, 5xx, 429, refusals, transport errors, cancellations)
	BreakerRejections uint64 // Lookups refused at once by an open breaker
	CacheErrors       uint64 // Cache reads and writes that failed; a failed read is treated as a miss
}

// Client answers line types for the tenants it has credentials for. It is
// safe for concurrent use.
type Client struct {
	tenants   map[string]*tenantClient
	cache     Cache
	opts      Options
	transport http.RoundTripper // opts.Transport, counting requests

	mu      sync.Mutex
	flights map[flightKey]*flight

	requests, cacheHits, failures, rejections, cacheErrors atomic.Uint64
	refusals                                               zerolog.Logger // sampled: credentials refused
}

// Client satisfies callcontext.LineTyper, which lookup may not import.
var _ interface {
	LineType(ctx context.Context, tenant, e164 string) (identity.LineType, error)
} = (*Client)(nil)

// tenantClient is one tenant's credentials and breaker. Tenants do not share a
// breaker: a rate limit or a suspended account is per Twilio account.
type tenantClient struct {
	name                    string
	account, user, password string
	breaker                 *gobreaker.CircuitBreaker[answer]
	unauthorized            atomic.Bool // Twilio's last answer refused the credentials
}

// answer is what Twilio said about a number and how long to keep it.
type answer struct {
	lt  identity.LineType
	ttl time.Duration
}

// NewClient returns a Client for the tenants in creds. Tenants whose
// credentials are incomplete are treated as having none. A nil cache keeps
// nothing.
func NewClient(creds map[string]Credentials, cache Cache, opts Options) *Client {
	opts = opts.withDefaults()
	if cache == nil {
		cache = noCache{}
	}
	c := &Client{
		tenants: make(map[string]*tenantClient, len(creds)),
		cache:   cache,
		opts:    opts,
		flights: make(map[flightKey]*flight),
	}
	c.transport = countingTransport{base: opts.Transport, n: &c.requests}
	c.refusals = opts.Logger.Sample(&zerolog.BurstSampler{Burst: 1, Period: time.Minute})
	for name, cr := range creds {
		user, password, ok := cr.basicAuth()
		if !ok {
			continue
		}
		t := &tenantClient{name: name, account: cr.AccountSID, user: user, password: password}
		t.breaker = newBreaker(name, opts, &t.unauthorized)
		c.tenants[name] = t
	}
	return c
}

// Stats returns the counts so far.
func (c *Client) Stats() Stats {
	return Stats{
		Requests:          c.requests.Load(),
		CacheHits:         c.cacheHits.Load(),
		Failures:          c.failures.Load(),
		BreakerRejections: c.rejections.Load(),
		CacheErrors:       c.cacheErrors.Load(),
	}
}

// LineType returns the line type of e164 as Twilio Lookup knows it, from the
// cache when it can. A number Twilio does not know is identity.Unknown with
// a nil error. It returns ErrNoCredentials for a tenant without credentials
// and ErrInvalidNumber for a number that is not E.164, both without a
// request; ErrBreakerOpen while the tenant's breaker is open; and another
// error for any failure. It returns when ctx is done, even if the request
// it waits for goes on for other callers.
func (c *Client) LineType(ctx context.Context, tenant, e164 string) (identity.LineType, error) {
	t, ok := c.tenants[tenant]
	if !ok {
		return identity.Unknown, ErrNoCredentials
	}
	if !isE164(e164) {
		return identity.Unknown, ErrInvalidNumber
	}
	if err := ctx.Err(); err != nil {
		return identity.Unknown, &lookupError{msg: "lookup: not started", cause: err}
	}
	f := c.join(ctx, t, e164)
	select {
	case <-f.done:
		return f.lt, f.err
	case <-ctx.Done():
		c.leave(ctx, f)
		return identity.Unknown, &lookupError{msg: "lookup: gave up waiting for Twilio", cause: ctx.Err()}
	}
}

// isE164 reports whether s is "+" and 2 to 15 digits, the first not 0.
// twilio-go pastes the number into the URL path unescaped.
func isE164(s string) bool {
	if len(s) < 3 || len(s) > 16 || s[0] != '+' || s[1] == '0' {
		return false
	}
	for i := 1; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// lineTypeOf maps Twilio's line_type_intelligence.type.
func lineTypeOf(twilioType string) identity.LineType {
	switch twilioType {
	case "mobile":
		return identity.Mobile
	case "landline":
		return identity.Landline
	case "fixedVoip", "nonFixedVoip":
		return identity.VoIP
	}
	// personal, tollFree, premium, sharedCost, uan, voicemail, pager, unknown.
	return identity.Unknown
}

// noCache is the Cache of a Client made without one.
type noCache struct{}

func (noCache) CachedLineType(context.Context, string, time.Time) (identity.LineType, bool, error) {
	return identity.Unknown, false, nil
}

func (noCache) CacheLineType(context.Context, string, identity.LineType, time.Time) error {
	return nil
}
