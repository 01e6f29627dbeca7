package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stickycalls/stickycalls/context/callapi"
	"github.com/stickycalls/stickycalls/context/callcontext"
	"github.com/stickycalls/stickycalls/context/identity"
)

// clock is a settable time source, safe for concurrent use.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// greeter is a stub of the greetings package: it speaks the name when the
// service lets it.
type greeter struct{}

func (greeter) Greet(res *callapi.StartResult) callapi.Greeting {
	text := "Hello! Thanks for calling."
	if res.Name != "" {
		text = "Welcome back, " + res.Name + "!"
	}
	return callapi.Greeting{Tier: res.Identity.Recommendation, Text: text}
}

// harness is a callcontext.Service over the store under test, with a clock
// the test moves.
type harness struct {
	t     *testing.T
	store callcontext.Store
	clock *clock
	svc   *callcontext.Service
}

func newHarness(t *testing.T, s callcontext.Store, policies map[string]callcontext.Policy) *harness {
	c := &clock{t: t0}
	return &harness{t: t, store: s, clock: c, svc: callcontext.NewService(s, callcontext.NoLookup{}, greeter{}, c.Now, policies, callcontext.Durations{})}
}

// at sets the clock to t0 + d.
func (h *harness) at(d time.Duration) { h.clock.set(t0.Add(d)) }

func parseStart(t *testing.T, body string) callapi.StartRequest {
	t.Helper()
	req, err := callapi.ParseStart([]byte(body))
	if err != nil {
		t.Fatalf("ParseStart(%s) error %v", body, err)
	}
	return req
}

func parseEnd(t *testing.T, body string) callapi.EndRequest {
	t.Helper()
	req, err := callapi.ParseEnd([]byte(body))
	if err != nil {
		t.Fatalf("ParseEnd(%s) error %v", body, err)
	}
	return req
}

// start starts a call in acme test and decodes the response.
func (h *harness) start(body string) (callapi.StartResult, []byte) {
	h.t.Helper()
	return h.startIn(acmeTest, body)
}

func (h *harness) startIn(sc callcontext.Scope, body string) (callapi.StartResult, []byte) {
	h.t.Helper()
	reply, err := h.svc.Start(context.Background(), sc, parseStart(h.t, body), "")
	if err != nil {
		h.t.Fatalf("Start(%v, %s) error %v", sc, body, err)
	}
	var res callapi.StartResult
	if err := json.Unmarshal(reply.Body, &res); err != nil {
		h.t.Fatalf("Start(%s) response %s: %v", body, reply.Body, err)
	}
	return res, reply.Body
}

// end ends a call in acme test and decodes the response.
func (h *harness) end(body string) callapi.EndResult {
	h.t.Helper()
	return h.endIn(acmeTest, body)
}

func (h *harness) endIn(sc callcontext.Scope, body string) callapi.EndResult {
	h.t.Helper()
	reply, err := h.svc.End(context.Background(), sc, parseEnd(h.t, body), "")
	if err != nil {
		h.t.Fatalf("End(%v, %s) error %v", sc, body, err)
	}
	var res callapi.EndResult
	if err := json.Unmarshal(reply.Body, &res); err != nil {
		h.t.Fatalf("End(%s) response %s: %v", body, reply.Body, err)
	}
	return res
}

func (h *harness) customer(ref string) callapi.CustomerView {
	h.t.Helper()
	v, err := h.svc.Customer(context.Background(), acmeTest, ref)
	if err != nil {
		h.t.Fatalf("Customer(%s) at +%s error %v", ref, h.clock.Now().Sub(t0), err)
	}
	return v
}

func (h *harness) gone(ref string) {
	h.t.Helper()
	if v, err := h.svc.Customer(context.Background(), acmeTest, ref); !errors.Is(err, callcontext.ErrNotFound) {
		h.t.Errorf("Customer(%s) at +%s = %+v, %v; want ErrNotFound", ref, h.clock.Now().Sub(t0), v, err)
	}
}

// summary is what a test checks of a start result.
type summary struct {
	CustomerRef    string
	Confidence     float64
	Level          identity.Level
	Recommendation identity.Recommendation
	Sources        []string
	Candidates     []callapi.Candidate
	Intents        []string          // name×attempts
	Variables      map[string]string // name → value, from the docs' shape
	Billable       bool
	Match          bool // the guide's match and confidence are set
}

func summarize(r callapi.StartResult) summary {
	s := summary{
		CustomerRef: r.CustomerRef, Confidence: r.Identity.Confidence, Level: r.Identity.Level,
		Recommendation: r.Identity.Recommendation, Sources: r.Identity.Sources, Candidates: r.Identity.Candidates,
		Intents: []string{}, Variables: map[string]string{}, Billable: r.Billable, Match: r.Match != nil && r.Confidence != nil,
	}
	for _, in := range r.OpenIntents {
		s.Intents = append(s.Intents, fmt.Sprintf("%s×%d", in.Intent, in.AttemptCount))
	}
	for k, v := range r.Variables {
		s.Variables[k] = v.Value
	}
	return s
}

// fresh checks that an ignore result carries a fresh ref, none of known.
func fresh(t *testing.T, what string, r callapi.StartResult, known ...string) {
	t.Helper()
	if !strings.HasPrefix(r.CustomerRef, "cust_") {
		t.Errorf("%s: customer_ref = %q, want a fresh cust_ ref", what, r.CustomerRef)
	}
	for _, k := range known {
		if r.CustomerRef == k {
			t.Errorf("%s: customer_ref = %q, want a fresh ref, not the known customer's", what, r.CustomerRef)
		}
	}
}
