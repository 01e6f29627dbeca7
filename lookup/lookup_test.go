package lookup

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/rs/zerolog"

	"github.com/stickycalls/stickycalls/context/identity"
)

// Test numbers. A reply is chosen by the number in the request path.
const (
	mobileNumber   = "+14155550100"
	landlineNumber = "+14155550101"
	voipNumber     = "+14155550102"
	canadaNumber   = "+16135550103"
	invalidNumber  = "+1415555010"
	unknownNumber  = "+14155550199"
	failingNumber  = "+14155550150"
	hangingNumber  = "+14155550160"
)

const (
	accountSID = "AC0123456789abcdef0123456789abcdef"
	authToken  = "0123456789abcdef0123456789abcdef" // twilio-go refuses non-alphanumeric credentials
)

// reply is what the fake Twilio answers for one number.
type reply struct {
	status int
	file   string // in testdata
	body   string // used when file is empty
	hang   bool   // never answer; return when the client gives up
}

// fakeTwilio is Twilio Lookup at the process boundary: an httptest server
// answering saved Lookup v2 responses.
type fakeTwilio struct {
	srv  *httptest.Server
	hits atomic.Int64

	mu      sync.Mutex
	replies map[string]reply
	gate    chan struct{} // when set, answers wait for it to close
	started chan string   // when set, receives each number asked for
	user    string        // basic auth user of the last request
	fields  string        // Fields query of the last request
}

func newFakeTwilio(t *testing.T) *fakeTwilio {
	t.Helper()
	f := &fakeTwilio{replies: map[string]reply{
		mobileNumber:   {status: 200, file: "mobile.json"},
		landlineNumber: {status: 200, file: "landline.json"},
		voipNumber:     {status: 200, file: "voip.json"},
		canadaNumber:   {status: 200, file: "no_line_type.json"},
		invalidNumber:  {status: 200, file: "invalid.json"},
		unknownNumber:  {status: 404, file: "not_found.json"},
		failingNumber:  {status: 500, file: "server_error.json"},
		hangingNumber:  {hang: true},
	}}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeTwilio) serve(w http.ResponseWriter, r *http.Request) {
	f.hits.Add(1)
	number, ok := strings.CutPrefix(r.URL.Path, "/v2/PhoneNumbers/")
	user, _, _ := r.BasicAuth()
	f.mu.Lock()
	rep, known := f.replies[number]
	gate, started := f.gate, f.started
	f.user, f.fields = user, r.URL.Query().Get("Fields")
	f.mu.Unlock()
	if started != nil {
		started <- number
	}
	if !ok || !known {
		rep = reply{status: 404, file: "not_found.json"}
	}
	if rep.hang {
		<-r.Context().Done()
		return
	}
	if gate != nil {
		select {
		case <-gate:
		case <-r.Context().Done():
			return
		}
	}
	body := []byte(rep.body)
	if rep.file != "" {
		var err error
		if body, err = os.ReadFile(filepath.Join("testdata", rep.file)); err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(rep.status)
	w.Write(body)
}

func (f *fakeTwilio) set(number string, r reply) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.replies[number] = r
}

func (f *fakeTwilio) setGate(gate chan struct{}) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.gate = gate
}

func (f *fakeTwilio) setStarted(started chan string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.started = started
}

func (f *fakeTwilio) last() (user, fields string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.user, f.fields
}

// redirectTransport sends requests for lookups.twilio.com to the fake.
type redirectTransport struct {
	target *url.URL
	base   http.RoundTripper
}

func (t redirectTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Host != "lookups.twilio.com" {
		return nil, errors.New("unexpected host " + r.URL.Host)
	}
	r = r.Clone(r.Context())
	r.URL.Scheme, r.URL.Host, r.Host = t.target.Scheme, t.target.Host, t.target.Host
	return t.base.RoundTrip(r)
}

// memCache stands in for the store's Lookup cache.
type memCache struct {
	mu      sync.Mutex
	entries map[string]cacheEntry
	reads   int
}

type cacheEntry struct {
	lt      identity.LineType
	expires time.Time
}

func (m *memCache) CachedLineType(_ context.Context, e164 string, now time.Time) (identity.LineType, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.reads++
	e, ok := m.entries[e164]
	if !ok || !now.Before(e.expires) {
		return identity.Unknown, false, nil
	}
	return e.lt, true, nil
}

func (m *memCache) CacheLineType(_ context.Context, e164 string, lt identity.LineType, expires time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.entries[e164] = cacheEntry{lt, expires}
	return nil
}

func (m *memCache) entry(e164 string) (cacheEntry, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.entries[e164]
	return e, ok
}

func (m *memCache) readCount() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.reads
}

// fakeClock is the clock the Client reads; gobreaker keeps its own.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// syncBuffer collects log lines written from the Client's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type harness struct {
	twilio *fakeTwilio
	cache  *memCache
	clock  *fakeClock
	logs   *syncBuffer
	client *Client
}

// newHarness returns a Client for tenant "acme" talking to a fake Twilio.
// Unless a test shrinks it, the Lookup timeout is long, so that a slow test
// machine does not turn an answer into a timeout.
func newHarness(t *testing.T, opts Options) *harness {
	t.Helper()
	if opts.Timeout == 0 {
		opts.Timeout = time.Minute
	}
	h := &harness{
		twilio: newFakeTwilio(t),
		cache:  &memCache{entries: map[string]cacheEntry{}},
		clock:  &fakeClock{now: time.Date(2026, 2, 7, 10, 30, 0, 0, time.UTC)},
		logs:   &syncBuffer{},
	}
	target, _ := url.Parse(h.twilio.srv.URL)
	base := &http.Transport{}
	t.Cleanup(base.CloseIdleConnections)
	opts.Transport = redirectTransport{target: target, base: base}
	opts.Now = h.clock.Now
	opts.Logger = zerolog.New(h.logs)
	creds := map[string]Credentials{"acme": {AccountSID: accountSID, AuthToken: authToken}}
	h.client = NewClient(creds, h.cache, opts)
	return h
}

func (h *harness) hits() int64 { return h.twilio.hits.Load() }

// waitFor polls cond until it holds, failing the test after 5s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(5 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// waiters returns how many callers wait on the flight for a number.
func waiters(c *Client, tenant, e164 string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if f := c.flights[flightKey{tenant, e164}]; f != nil {
		return f.waiters
	}
	return 0
}

func TestLineTypeOf(t *testing.T) {
	tests := map[string]identity.LineType{
		"mobile":       identity.Mobile,
		"landline":     identity.Landline,
		"fixedVoip":    identity.VoIP,
		"nonFixedVoip": identity.VoIP,
		"personal":     identity.Unknown,
		"tollFree":     identity.Unknown,
		"premium":      identity.Unknown,
		"sharedCost":   identity.Unknown,
		"uan":          identity.Unknown,
		"voicemail":    identity.Unknown,
		"pager":        identity.Unknown,
		"unknown":      identity.Unknown,
		"":             identity.Unknown,
		"satellite":    identity.Unknown,
	}
	for in, want := range tests {
		if got := lineTypeOf(in); got != want {
			t.Errorf("lineTypeOf(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestLineTypeFromTwilio(t *testing.T) {
	tests := []struct {
		number string
		want   identity.LineType
	}{
		{mobileNumber, identity.Mobile},
		{landlineNumber, identity.Landline},
		{voipNumber, identity.VoIP},
	}
	h := newHarness(t, Options{})
	for _, tt := range tests {
		got, err := h.client.LineType(t.Context(), "acme", tt.number)
		if err != nil || got != tt.want {
			t.Errorf("LineType(%s) = %q, %v; want %q, nil", tt.number, got, err, tt.want)
		}
		e, ok := h.cache.entry(tt.number)
		if want := h.clock.Now().Add(30 * 24 * time.Hour); !ok || e.lt != tt.want || !e.expires.Equal(want) {
			t.Errorf("cache after LineType(%s) = %+v, %v; want {%s %v}, true", tt.number, e, ok, tt.want, want)
		}
	}
	if got := h.hits(); got != 3 {
		t.Errorf("requests = %d, want 3", got)
	}
	if user, fields := h.twilio.last(); user != accountSID || fields != "line_type_intelligence" {
		t.Errorf("last request: user %q, Fields %q; want %q, %q", user, fields, accountSID, "line_type_intelligence")
	}
	// A type Twilio could not tell (error 60601) is Unknown, asked again after an hour.
	got, err := h.client.LineType(t.Context(), "acme", canadaNumber)
	if err != nil || got != identity.Unknown {
		t.Errorf("LineType(%s) = %q, %v; want unknown, nil", canadaNumber, got, err)
	}
	if e, _ := h.cache.entry(canadaNumber); !e.expires.Equal(h.clock.Now().Add(time.Hour)) {
		t.Errorf("cache expiry for %s = %v, want in 1h", canadaNumber, e.expires)
	}
}

func TestCredentials(t *testing.T) {
	tests := []struct {
		name     string
		creds    Credentials
		wantUser string // "" means no credentials
	}{
		{"auth token", Credentials{AccountSID: accountSID, AuthToken: authToken}, accountSID},
		{"API key preferred", Credentials{AccountSID: accountSID, AuthToken: authToken, APIKey: "SK0123456789abcdef0123456789abcdef", APISecret: "secret0123456789"}, "SK0123456789abcdef0123456789abcdef"},
		{"API key alone", Credentials{APIKey: "SKabc", APISecret: "secret0123"}, "SKabc"},
		{"key without secret", Credentials{APIKey: "SKabc"}, ""},
		{"token without account", Credentials{AuthToken: authToken}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, Options{})
			c := NewClient(map[string]Credentials{"acme": tt.creds}, h.cache, h.client.opts)
			got, err := c.LineType(t.Context(), "acme", mobileNumber)
			if tt.wantUser == "" {
				if !errors.Is(err, ErrNoCredentials) || h.hits() != 0 {
					t.Fatalf("LineType() = %q, %v with %d requests; want ErrNoCredentials and none", got, err, h.hits())
				}
				return
			}
			if err != nil || got != identity.Mobile {
				t.Fatalf("LineType() = %q, %v; want mobile, nil", got, err)
			}
			if user, _ := h.twilio.last(); user != tt.wantUser {
				t.Errorf("basic auth user = %q, want %q", user, tt.wantUser)
			}
		})
	}
}

func TestNoCredentialsMakesNoRequest(t *testing.T) {
	h := newHarness(t, Options{})
	got, err := h.client.LineType(t.Context(), "globex", mobileNumber)
	if !errors.Is(err, ErrNoCredentials) || got != identity.Unknown {
		t.Errorf("LineType(globex) = %q, %v; want unknown, ErrNoCredentials", got, err)
	}
	if h.hits() != 0 || h.cache.readCount() != 0 {
		t.Errorf("requests = %d, cache reads = %d; want 0, 0", h.hits(), h.cache.readCount())
	}
}

func TestInvalidNumberMakesNoRequest(t *testing.T) {
	h := newHarness(t, Options{})
	for _, in := range []string{"", "+", "+1", "14155550100", "+04155550100", "+1415555010012345", "+1 4155550100", "+1415/../x", "anonymous"} {
		if _, err := h.client.LineType(t.Context(), "acme", in); !errors.Is(err, ErrInvalidNumber) {
			t.Errorf("LineType(%q) error = %v, want ErrInvalidNumber", in, err)
		}
	}
	if h.hits() != 0 {
		t.Errorf("requests = %d, want 0", h.hits())
	}
}

func TestCacheHitMakesNoRequest(t *testing.T) {
	h := newHarness(t, Options{})
	h.cache.CacheLineType(t.Context(), voipNumber, identity.Landline, h.clock.Now().Add(time.Minute))
	got, err := h.client.LineType(t.Context(), "acme", voipNumber)
	if err != nil || got != identity.Landline {
		t.Errorf("LineType() = %q, %v; want the cached landline, nil", got, err)
	}
	if h.hits() != 0 {
		t.Errorf("requests = %d, want 0", h.hits())
	}
	if s := h.client.Stats(); s.CacheHits != 1 || s.Requests != 0 {
		t.Errorf("Stats() = %+v, want 1 cache hit and 0 requests", s)
	}
	// Once the entry expires, Twilio is asked.
	h.clock.Advance(time.Minute)
	if got, err := h.client.LineType(t.Context(), "acme", voipNumber); err != nil || got != identity.VoIP {
		t.Errorf("LineType() after expiry = %q, %v; want voip, nil", got, err)
	}
	if h.hits() != 1 {
		t.Errorf("requests after expiry = %d, want 1", h.hits())
	}
}

func TestNoSuchNumberCachedForNegativeTTL(t *testing.T) {
	for _, number := range []string{unknownNumber, invalidNumber} {
		t.Run(number, func(t *testing.T) {
			h := newHarness(t, Options{})
			for i := range 2 {
				got, err := h.client.LineType(t.Context(), "acme", number)
				if err != nil || got != identity.Unknown {
					t.Fatalf("LineType() #%d = %q, %v; want unknown, nil", i+1, got, err)
				}
			}
			if h.hits() != 1 {
				t.Fatalf("requests = %d, want 1 (the second answer from the cache)", h.hits())
			}
			if e, ok := h.cache.entry(number); !ok || e.lt != identity.Unknown || !e.expires.Equal(h.clock.Now().Add(time.Hour)) {
				t.Errorf("cache = %+v, %v; want unknown for 1h", e, ok)
			}
			h.clock.Advance(time.Hour)
			if got, err := h.client.LineType(t.Context(), "acme", number); err != nil || got != identity.Unknown {
				t.Fatalf("LineType() after 1h = %q, %v; want unknown, nil", got, err)
			}
			if h.hits() != 2 {
				t.Errorf("requests after 1h = %d, want 2", h.hits())
			}
		})
	}
}

func TestFailuresAreNotCached(t *testing.T) {
	tests := map[string]reply{
		"500":            {status: 500, file: "server_error.json"},
		"429":            {status: 429, file: "too_many_requests.json"},
		"502 not JSON":   {status: 502, body: "<html>Bad Gateway " + mobileNumber + "</html>"},
		"400 refused":    {status: 400, body: `{"code": 21211, "message": "Invalid parameter", "status": 400}`},
		"200 not JSON":   {status: 200, body: "{"},
		"503 empty body": {status: 503},
	}
	for name, rep := range tests {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t, Options{})
			h.twilio.set(mobileNumber, rep)
			got, err := h.client.LineType(t.Context(), "acme", mobileNumber)
			if err == nil || got != identity.Unknown {
				t.Fatalf("LineType() = %q, %v; want unknown and an error", got, err)
			}
			if strings.Contains(err.Error(), "5550100") {
				t.Errorf("error %q contains the phone number", err)
			}
			if _, ok := h.cache.entry(mobileNumber); ok {
				t.Errorf("a failure was cached")
			}
			h.twilio.set(mobileNumber, reply{status: 200, file: "mobile.json"})
			if got, err := h.client.LineType(t.Context(), "acme", mobileNumber); err != nil || got != identity.Mobile {
				t.Errorf("LineType() after recovery = %q, %v; want mobile, nil", got, err)
			}
			if h.hits() != 2 {
				t.Errorf("requests = %d, want 2", h.hits())
			}
		})
	}
}

func TestHangingTwilioHonoursDeadline(t *testing.T) {
	t.Run("ctx deadline", func(t *testing.T) {
		h := newHarness(t, Options{})
		ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
		defer cancel()
		got, err := h.client.LineType(ctx, "acme", hangingNumber)
		if !errors.Is(err, context.DeadlineExceeded) || got != identity.Unknown {
			t.Fatalf("LineType() = %q, %v; want unknown, context.DeadlineExceeded", got, err)
		}
		waitFor(t, "the request to end", func() bool { return h.client.Stats().Failures == 1 })
		if _, ok := h.cache.entry(hangingNumber); ok {
			t.Errorf("a timeout was cached")
		}
	})
	t.Run("Options.Timeout", func(t *testing.T) {
		h := newHarness(t, Options{Timeout: 50 * time.Millisecond})
		got, err := h.client.LineType(t.Context(), "acme", hangingNumber)
		if !errors.Is(err, context.DeadlineExceeded) || got != identity.Unknown {
			t.Fatalf("LineType() = %q, %v; want unknown, context.DeadlineExceeded", got, err)
		}
		if strings.Contains(err.Error(), "5550160") {
			t.Errorf("error %q contains the phone number", err)
		}
		if _, ok := h.cache.entry(hangingNumber); ok {
			t.Errorf("a timeout was cached")
		}
	})
}

func TestBreaker(t *testing.T) {
	h := newHarness(t, Options{BreakerFailures: 3, BreakerOpen: 50 * time.Millisecond})
	failing := []reply{
		{status: 500, file: "server_error.json"},
		{status: 429, file: "too_many_requests.json"},
		{status: 503, body: "upstream connect error"},
	}
	for i, rep := range failing {
		h.twilio.set(mobileNumber, rep)
		if _, err := h.client.LineType(t.Context(), "acme", mobileNumber); err == nil || errors.Is(err, ErrBreakerOpen) {
			t.Fatalf("LineType() #%d error = %v, want a Twilio failure", i+1, err)
		}
	}
	if h.hits() != 3 {
		t.Fatalf("requests = %d, want 3", h.hits())
	}
	// Open: refused at once, without a request, for any number.
	h.twilio.set(mobileNumber, reply{status: 200, file: "mobile.json"})
	for _, number := range []string{mobileNumber, landlineNumber} {
		if got, err := h.client.LineType(t.Context(), "acme", number); !errors.Is(err, ErrBreakerOpen) || got != identity.Unknown {
			t.Fatalf("LineType(%s) while open = %q, %v; want unknown, ErrBreakerOpen", number, got, err)
		}
	}
	if h.hits() != 3 {
		t.Fatalf("requests while open = %d, want still 3", h.hits())
	}
	// After BreakerOpen, one half-open probe goes through; its success closes the breaker.
	var got identity.LineType
	waitFor(t, "a half-open probe", func() bool {
		lt, err := h.client.LineType(t.Context(), "acme", mobileNumber)
		if err != nil && !errors.Is(err, ErrBreakerOpen) {
			t.Fatalf("LineType() while waiting for the probe: %v", err)
		}
		got = lt
		return err == nil
	})
	if got != identity.Mobile || h.hits() != 4 {
		t.Fatalf("probe: %q with %d requests; want mobile with 4", got, h.hits())
	}
	if got, err := h.client.LineType(t.Context(), "acme", landlineNumber); err != nil || got != identity.Landline {
		t.Errorf("LineType() after closing = %q, %v; want landline, nil", got, err)
	}
	s := h.client.Stats()
	if s.Requests != 5 || s.Failures != 3 || s.BreakerRejections < 2 {
		t.Errorf("Stats() = %+v; want 5 requests, 3 failures, at least 2 rejections", s)
	}
	logs := h.logs.String()
	for _, want := range []string{`"to":"open"`, `"to":"half-open"`, `"to":"closed"`, `"tenant":"acme"`} {
		if !strings.Contains(logs, want) {
			t.Errorf("logs lack %s:\n%s", want, logs)
		}
	}
	if strings.Contains(logs, "555") {
		t.Errorf("logs contain a phone number:\n%s", logs)
	}
}

func TestBreakerIsPerTenant(t *testing.T) {
	h := newHarness(t, Options{BreakerFailures: 1})
	creds := map[string]Credentials{
		"acme":   {AccountSID: accountSID, AuthToken: authToken},
		"globex": {AccountSID: accountSID, AuthToken: authToken},
	}
	c := NewClient(creds, h.cache, h.client.opts)
	if _, err := c.LineType(t.Context(), "acme", failingNumber); err == nil {
		t.Fatalf("LineType(acme) succeeded on a 500")
	}
	if _, err := c.LineType(t.Context(), "acme", mobileNumber); !errors.Is(err, ErrBreakerOpen) {
		t.Fatalf("LineType(acme) error = %v, want ErrBreakerOpen", err)
	}
	if got, err := c.LineType(t.Context(), "globex", mobileNumber); err != nil || got != identity.Mobile {
		t.Errorf("LineType(globex) = %q, %v; want mobile, nil", got, err)
	}
}

func TestRefusalDoesNotOpenBreaker(t *testing.T) {
	h := newHarness(t, Options{BreakerFailures: 1})
	h.twilio.set(mobileNumber, reply{status: 400, body: `{"code": 21211, "message": "Invalid parameter", "status": 400}`})
	for i := range 3 {
		if _, err := h.client.LineType(t.Context(), "acme", mobileNumber); err == nil || errors.Is(err, ErrBreakerOpen) {
			t.Fatalf("LineType() #%d error = %v, want Twilio's refusal", i+1, err)
		}
	}
	if h.hits() != 3 {
		t.Errorf("requests = %d, want 3", h.hits())
	}
}

func TestCallerGivingUp(t *testing.T) {
	// A hang-up (Canceled) is not held against Twilio; a missed deadline is.
	tests := []struct {
		name     string
		giveUp   func(context.Context) (context.Context, context.CancelFunc)
		wantErr  error
		wantOpen bool
	}{
		{"cancelled", context.WithCancel, context.Canceled, false},
		{"deadline", func(ctx context.Context) (context.Context, context.CancelFunc) {
			return context.WithTimeout(ctx, 20*time.Millisecond)
		}, context.DeadlineExceeded, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, Options{BreakerFailures: 1})
			started := make(chan string, 1)
			h.twilio.setStarted(started)
			ctx, cancel := tt.giveUp(t.Context())
			defer cancel()
			go func() {
				<-started
				if tt.name == "cancelled" {
					cancel()
				}
			}()
			_, err := h.client.LineType(ctx, "acme", hangingNumber)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("LineType() error = %v, want %v", err, tt.wantErr)
			}
			waitFor(t, "the request to end", func() bool { return h.client.Stats().Failures == 1 })
			h.twilio.setStarted(nil)
			_, err = h.client.LineType(t.Context(), "acme", mobileNumber)
			if gotOpen := errors.Is(err, ErrBreakerOpen); gotOpen != tt.wantOpen {
				t.Errorf("next LineType() error = %v; breaker open %v, want %v", err, gotOpen, tt.wantOpen)
			}
		})
	}
}

func TestConcurrentMissesShareOneRequest(t *testing.T) {
	h := newHarness(t, Options{})
	gate := make(chan struct{})
	h.twilio.setGate(gate)
	const n = 20
	var wg sync.WaitGroup
	got := make([]identity.LineType, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() { got[i], errs[i] = h.client.LineType(t.Context(), "acme", mobileNumber) })
	}
	waitFor(t, "20 waiters", func() bool { return waiters(h.client, "acme", mobileNumber) == n })
	close(gate)
	wg.Wait()
	for i := range n {
		if errs[i] != nil || got[i] != identity.Mobile {
			t.Errorf("caller %d: LineType() = %q, %v; want mobile, nil", i, got[i], errs[i])
		}
	}
	if h.hits() != 1 || h.cache.readCount() != 1 {
		t.Errorf("requests = %d, cache reads = %d; want 1, 1", h.hits(), h.cache.readCount())
	}
}

func TestWaiterLeavesOthersGetAnswer(t *testing.T) {
	h := newHarness(t, Options{})
	gate := make(chan struct{})
	h.twilio.setGate(gate)
	ctx, cancel := context.WithCancel(t.Context())
	first := make(chan error, 1)
	go func() {
		_, err := h.client.LineType(ctx, "acme", mobileNumber)
		first <- err
	}()
	waitFor(t, "the first waiter", func() bool { return waiters(h.client, "acme", mobileNumber) == 1 })
	second := make(chan identity.LineType, 1)
	go func() {
		lt, _ := h.client.LineType(t.Context(), "acme", mobileNumber)
		second <- lt
	}()
	waitFor(t, "the second waiter", func() bool { return waiters(h.client, "acme", mobileNumber) == 2 })
	cancel()
	if err := <-first; !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled caller: error = %v, want context.Canceled", err)
	}
	close(gate)
	if lt := <-second; lt != identity.Mobile {
		t.Errorf("remaining caller: LineType() = %q, want mobile", lt)
	}
	if h.hits() != 1 {
		t.Errorf("requests = %d, want 1", h.hits())
	}
}

// Wrong or revoked credentials (401, 403) open the tenant's breaker at
// once, so calls stop paying for a round trip that cannot succeed, and say
// so in the log, once.
func TestUnauthorizedOpensBreaker(t *testing.T) {
	for _, st := range []int{401, 403} {
		h := newHarness(t, Options{BreakerFailures: 5})
		h.twilio.set(mobileNumber, reply{status: st, file: "unauthorized.json"})
		if _, err := h.client.LineType(t.Context(), "acme", mobileNumber); err == nil || errors.Is(err, ErrBreakerOpen) {
			t.Fatalf("%d: first LineType() error = %v, want Twilio's refusal", st, err)
		}
		for range 3 {
			if _, err := h.client.LineType(t.Context(), "acme", mobileNumber); !errors.Is(err, ErrBreakerOpen) {
				t.Errorf("%d: LineType() after the refusal = %v, want ErrBreakerOpen", st, err)
			}
		}
		if h.hits() != 1 {
			t.Errorf("%d: requests = %d, want 1", st, h.hits())
		}
		if n := strings.Count(h.logs.String(), "refused the tenant's credentials"); n != 1 {
			t.Errorf("%d: credential refusals logged %d times, want 1:\n%s", st, n, h.logs.String())
		}
	}
}

// The Lookup series change as expected on a cache hit, a miss answered by
// Twilio, a timeout and refused credentials.
func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	h := newHarness(t, Options{Metrics: NewMetrics(reg), Timeout: 50 * time.Millisecond})
	h.client.LineType(t.Context(), "acme", mobileNumber)  // miss: answered
	h.client.LineType(t.Context(), "acme", mobileNumber)  // hit
	h.client.LineType(t.Context(), "acme", hangingNumber) // timeout
	h.twilio.set(landlineNumber, reply{status: 401, file: "unauthorized.json"})
	h.client.LineType(t.Context(), "acme", landlineNumber) // unauthorized, and the breaker opens
	h.client.LineType(t.Context(), "acme", voipNumber)     // refused at once
	for outcome, want := range map[string]float64{"answered": 1, "hit": 1, "timeout": 1, "unauthorized": 1, "breaker_open": 1, "error": 0} {
		if got := series(t, reg, "stickycalls_lookup_requests_total", outcome).GetCounter().GetValue(); got != want {
			t.Errorf("outcome %s = %v, want %v", outcome, got, want)
		}
	}
	if got := series(t, reg, "stickycalls_lookup_breaker_state", "").GetGauge().GetValue(); got != 2 {
		t.Errorf("breaker state = %v, want 2 (open)", got)
	}
	if got := series(t, reg, "stickycalls_lookup_duration_seconds", "").GetHistogram().GetSampleCount(); got != 3 {
		t.Errorf("Twilio request durations observed = %d, want 3", got)
	}
}

// series finds tenant acme's series of a family, with the given outcome
// label when one is named; an absent series reads as zero.
func series(t *testing.T, reg *prometheus.Registry, name, outcome string) *dto.Metric {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["tenant"] == "acme" && (outcome == "" || labels["outcome"] == outcome) {
				return m
			}
		}
	}
	return &dto.Metric{}
}
