package callcontext

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"github.com/stickycalls/stickycalls/context/callapi"
	"github.com/stickycalls/stickycalls/context/identity"
	"github.com/stickycalls/stickycalls/context/storage"
	"github.com/stickycalls/stickycalls/context/tally"
)

// Service starts and ends calls. It is safe for concurrent use.
type Service struct {
	store    Store
	lines    LineTyper
	greeter  Greeter
	now      func() time.Time
	policies map[string]Policy
	d        Durations
	newRef   func() string
	observer Observer
}

// Observer hears what calls do, as they are counted (replays never), so
// that operators can watch recognition, billing and intents, and estimate
// the wrong-person rate from live traffic. Its methods must return at once.
type Observer interface {
	// Started is a start answered.
	Started(sc Scope, e StartEvent)
	// Ended is an end saved.
	Ended(sc Scope, e EndEvent)
	// Answered is a caller's answer to the confirm question.
	Answered(a Answer)
	// Corrected is an agent's end that named another customer than the
	// one the start recognized at tier.
	Corrected(tier identity.Recommendation)
}

// StartEvent is what a start answered.
type StartEvent struct {
	Recommendation identity.Recommendation
	Confidence     float64
	Billable       bool
}

// EndEvent is what an end saved.
type EndEvent struct {
	Created  bool   // the end created its customer
	Billable bool   // it counts as a billable call
	Counted  bool   // it counts as a call in usage (it had no start)
	Intent   string // the intent's transition: opened, followed_up, resolved, abandoned; "" for none
}

type noObserver struct{}

func (noObserver) Started(Scope, StartEvent)         {}
func (noObserver) Ended(Scope, EndEvent)             {}
func (noObserver) Answered(Answer)                   {}
func (noObserver) Corrected(identity.Recommendation) {}

// WithObserver makes the service report recognition evidence to o.
func WithObserver(o Observer) Option { return func(s *Service) { s.observer = o } }

// Option changes a Service from its defaults.
type Option func(*Service)

// WithRefs makes the service take fresh customer refs from newRef instead
// of crypto/rand, so that a simulation with a seed is repeatable.
func WithRefs(newRef func() string) Option { return func(s *Service) { s.newRef = newRef } }

// NewService returns a service over store. lines must not be nil (pass
// NoLookup); policies holds each tenant's configuration, and a tenant
// without one gets the defaults.
func NewService(store Store, lines LineTyper, greeter Greeter, now func() time.Time, policies map[string]Policy, d Durations, opts ...Option) *Service {
	s := &Service{store: store, lines: lines, greeter: greeter, now: now, policies: policies, d: d.withDefaults(), newRef: freshRef, observer: noObserver{}}
	for _, o := range opts {
		o(s)
	}
	return s
}

// DefaultPolicy is the policy of a tenant with no configuration.
func DefaultPolicy() Policy {
	return Policy{Weights: identity.DefaultWeights(), Thresholds: identity.DefaultThresholds()}
}

func (s *Service) policy(tenant string) Policy {
	if p, ok := s.policies[tenant]; ok {
		return p
	}
	return DefaultPolicy()
}

// Plan returns the plan of a scope.
func (s *Service) Plan(sc Scope) Plan { return s.policy(sc.Tenant).Plans[sc.Mode] }

// Reply is a start's or an end's answer: its result, the body that
// carries it (on a replay, byte for byte the first answer's), and whether
// it replays an earlier answer.
type Reply[T callapi.StartResult | callapi.EndResult] struct {
	Result   T
	Body     []byte
	Replayed bool
}

// replay is the reply of a claim that found op already answered.
func replay[T callapi.StartResult | callapi.EndResult](op storage.Op, body []byte) (Reply[T], error) {
	rep := Reply[T]{Body: body, Replayed: true}
	if err := json.Unmarshal(body, &rep.Result); err != nil {
		return Reply[T]{}, fmt.Errorf("decode stored %s: %w", op, err)
	}
	return rep, nil
}

// claim asks the store to do op, and turns every outcome but Claimed and
// Replay into an error.
func (s *Service) claim(ctx context.Context, sc Scope, c storage.Claim) (storage.ClaimResult, error) {
	res, err := s.store.Claim(ctx, sc, c)
	if err != nil {
		return res, fmt.Errorf("claim %s: %w", c.Op, err)
	}
	switch res.Outcome {
	case storage.Claimed, storage.Replay:
		return res, nil
	case storage.KeyReused:
		return res, ErrKeyReused
	case storage.InFlight:
		return res, ErrInFlight
	case storage.OverQuota:
		return res, ErrOverQuota
	}
	return res, ErrConflict
}

func (s *Service) newClaim(sc Scope, op storage.Op, callID, key, print string, now time.Time) storage.Claim {
	return storage.Claim{
		Op: op, CallID: callID, Key: key, Fingerprint: print, Now: now,
		Lease: s.d.Lease, Replay: s.d.ReplayWindow, KeyTTL: s.d.ReplayWindow, Retention: s.d.CallRetention,
		Quota: s.Plan(sc).MonthlyQuota, Period: Period(now),
	}
}

// release undoes a claim whose work failed. It runs even when the request's
// context is done, so a crash of the work never holds the lease for long.
func (s *Service) release(ctx context.Context, sc Scope, c storage.Claim) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	_ = s.store.Release(ctx, sc, c) // the lease expires by itself if this fails
}

// Start identifies the caller and returns what is remembered. key is the
// Idempotency-Key header, or "".
func (s *Service) Start(ctx context.Context, sc Scope, req callapi.StartRequest, key string) (Reply[callapi.StartResult], error) {
	now := s.now().UTC()
	c := s.newClaim(sc, storage.OpStart, req.CallID, key, callapi.Fingerprint(req), now)
	pol := s.policy(sc.Tenant)
	q := storage.Query{ANI: linkable(req.Hints.ANI, pol), ExternalIDs: externalIDList(req.Hints.ExternalIDs), CustomerRef: req.Hints.CustomerRef}
	c.Query = &q
	res, err := s.claim(ctx, sc, c)
	switch {
	case err != nil:
		return Reply[callapi.StartResult]{}, err
	case res.Outcome == storage.Replay:
		return replay[callapi.StartResult](storage.OpStart, res.Response)
	}
	rep, ev, err := s.start(ctx, sc, req, c, res.Found)
	if err != nil {
		s.release(ctx, sc, c)
		return Reply[callapi.StartResult]{}, err
	}
	s.observer.Started(sc, ev)
	return rep, nil
}

// start answers a claimed start from what the claim found for its hints.
func (s *Service) start(ctx context.Context, sc Scope, req callapi.StartRequest, c storage.Claim, found storage.Found) (Reply[callapi.StartResult], StartEvent, error) {
	pol := s.policy(sc.Tenant)
	ani, ids := c.Query.ANI, c.Query.ExternalIDs
	lt, ltSource := s.lineType(ctx, sc, req, ani, found.ANI.LineType)
	res := resolve(found, req.Hints, ani, req.Attestation, pol.Thresholds, c.Now)
	res.Signals.LineType, res.Signals.Attestation = lt, req.Attestation
	m := identity.Assess(res.Signals, pol.Weights, pol.Thresholds)
	result := s.result(req, res, m, found, c.Now)
	result.Identity.LineType, result.Identity.LineTypeSource = lt, ltSource
	result.Greeting = s.greeter.Greet(&result)
	body, err := json.Marshal(result)
	if err != nil {
		return Reply[callapi.StartResult]{}, StartEvent{}, fmt.Errorf("encode start: %w", err)
	}
	remember := identity.Unknown
	if ltSource == "request" || ltSource == "lookup" {
		remember = lt
	}
	call := storage.CallRecord{
		ID: req.CallID, Started: c.Now, StartPrint: c.Fingerprint, StartResponse: body,
		CustomerRef: result.CustomerRef, Recommendation: m.Recommendation,
		ANI: ani, DNIS: req.Hints.DNIS, ExternalIDs: ids, Expires: c.Now.Add(s.d.CallRetention), Revealed: revealed(result),
		Attestation: req.Attestation, LineType: lt,
	}
	if result.Match != nil {
		call.Matched = result.CustomerRef
		sig := res.Signals
		call.Contestable = sig.ANIMatch && !sig.ANIShared && !sig.Link.Unusual(sig.Attestation, pol.Thresholds.UsualAttestation)
	}
	ev := StartEvent{Recommendation: m.Recommendation, Confidence: result.Identity.Confidence, Billable: result.Billable}
	commit := storage.StartCommit{Call: call, LineType: remember, LinkTTL: s.d.LinkTTL, Period: c.Period, Billable: result.Billable, Tally: tally.Start(c.Now, ev.Recommendation, ev.Billable, ev.Confidence)}
	if err := s.store.SaveStart(ctx, sc, commit); err != nil {
		return Reply[callapi.StartResult]{}, StartEvent{}, fmt.Errorf("save start: %w", err)
	}
	return Reply[callapi.StartResult]{Result: result, Body: body}, ev, nil
}

// revealed lists the customers a start's answer shows: the matched one and
// the candidates of a shared line.
func revealed(res callapi.StartResult) []string {
	if res.Match == nil {
		return nil
	}
	refs := []string{res.CustomerRef}
	for _, c := range res.Identity.Candidates {
		if c.CustomerRef != res.CustomerRef {
			refs = append(refs, c.CustomerRef)
		}
	}
	return refs
}

// linkable returns the ANI if it may be matched and linked: not withheld
// and not one of the tenant's own numbers.
func linkable(ani string, pol Policy) string {
	if pol.OwnNumbers[ani] {
		return ""
	}
	return ani
}

// lineType picks the line type: the request's, else Lookup's, else the
// one remembered for the ANI, else unknown.
func (s *Service) lineType(ctx context.Context, sc Scope, req callapi.StartRequest, ani string, remembered identity.LineType) (identity.LineType, string) {
	if req.LineType != "" {
		return req.LineType, "request"
	}
	if ani == "" {
		return identity.Unknown, "unavailable"
	}
	if lt, err := s.lines.LineType(ctx, sc.Tenant, ani); err == nil && lt != identity.Unknown {
		return lt, "lookup"
	}
	if remembered != "" && remembered != identity.Unknown {
		return remembered, "remembered"
	}
	return identity.Unknown, "unavailable"
}

// result builds the start's answer. On ignore nothing about a weakly
// matched customer is revealed, and the ref is fresh.
func (s *Service) result(req callapi.StartRequest, res resolution, m identity.Match, found storage.Found, now time.Time) callapi.StartResult {
	out := callapi.StartResult{
		CallID: req.CallID, CallStart: callapi.Timestamp(now), DNIS: req.Hints.DNIS,
		Identity: callapi.IdentityView{
			Confidence: m.Score(), Level: m.Level, Recommendation: m.Recommendation,
			Sources: m.Sources, Candidates: []callapi.Candidate{},
		},
		OpenIntents: []callapi.IntentView{}, Variables: map[string]callapi.VariableView{},
	}
	if m.Recommendation == identity.Ignore || res.Record == nil {
		out.CustomerRef = cmpOr(req.Hints.CustomerRef, s.newRef())
		out.Billable = true
		return out
	}
	r := res.Record
	prune(r, now, s.d)
	out.CustomerRef, out.Name = r.Ref, nameOf(r)
	out.OpenIntents = intentViews(r)
	flat := map[string]string{}
	for k, v := range r.Variables {
		out.Variables[k] = callapi.VariableView{Value: v.Value, Source: v.Source, TTLSeconds: secondsLeft(v.Expires, now)}
		flat[k] = v.Value
	}
	for _, ref := range res.Candidates {
		cand := found.Customers[ref]
		out.Identity.Candidates = append(out.Identity.Candidates, callapi.Candidate{CustomerRef: ref, Name: nameOf(&cand)})
	}
	out.Match = &callapi.MatchView{CustomerRef: r.Ref, OpenIntents: out.OpenIntents, Variables: flat}
	score := m.Score()
	out.Confidence = &score
	return out
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// freshRef returns a fresh customer ref.
func freshRef() string {
	var b [12]byte
	rand.Read(b[:])
	return "cust_" + hex.EncodeToString(b[:])
}

// Customer returns everything stored about a customer, or ErrNotFound.
func (s *Service) Customer(ctx context.Context, sc Scope, ref string) (callapi.CustomerView, error) {
	now := s.now().UTC()
	got, err := s.store.Customers(ctx, sc, []string{ref})
	if err != nil {
		return callapi.CustomerView{}, fmt.Errorf("read customer: %w", err)
	}
	r, ok := got[ref]
	if !ok || !alive(&r, now) {
		return callapi.CustomerView{}, ErrNotFound
	}
	prune(&r, now, s.d)
	return customerView(&r, now), nil
}

// Erase deletes a customer and everything that points at it.
func (s *Service) Erase(ctx context.Context, sc Scope, ref string) error {
	if err := s.store.Erase(ctx, sc, ref); err != nil {
		return fmt.Errorf("erase customer: %w", err)
	}
	return nil
}

// CallView is a call as it now stands, from one read of the store: what
// is stored about it, and its start's answer projected onto the call's
// present state (after a "no" to the confirm question a new caller's,
// after a "yes" a reuse with its greeting; with its outcome once it
// ended). Every reader of a call (GET /v1/calls, the voice webhooks, the
// whisper, the relays) goes through it.
type CallView struct {
	Record  storage.CallRecord
	Start   callapi.StartResult // the zero value when the call has no stored start
	Started bool                // the call has a stored start
	changed bool                // Start is not the stored answer byte for byte
}

// Call returns a call as it now stands, or ErrNotFound.
func (s *Service) Call(ctx context.Context, sc Scope, callID string) (CallView, error) {
	c, err := s.store.Call(ctx, sc, callID)
	if err != nil {
		return CallView{}, fmt.Errorf("read call: %w", err)
	}
	if !c.Expires.After(s.now()) {
		return CallView{}, ErrNotFound
	}
	v := CallView{Record: c, Started: len(c.StartResponse) > 0}
	if !v.Started {
		return v, nil
	}
	v.Start, v.changed = s.project(c)
	if status, end, duration := outcome(c); status != "" {
		v.Start.Status, v.Start.CallEnd, v.Start.DurationSeconds = status, &end, &duration
		v.changed = true
	}
	if c.DialStatus != "" {
		v.Start.DialStatus, v.changed = c.DialStatus, true
	}
	return v, nil
}

// JSON is the call's start as it now stands, as GET /v1/calls/{call_id}
// answers it: the stored answer byte for byte unless something since has
// changed it.
func (v CallView) JSON() ([]byte, error) {
	if !v.changed {
		return v.Record.StartResponse, nil
	}
	b, err := json.Marshal(v.Start)
	if err != nil {
		return nil, fmt.Errorf("encode call: %w", err)
	}
	return b, nil
}

// Usage reports a scope's use of the current period.
func (s *Service) Usage(ctx context.Context, sc Scope) (callapi.UsageView, error) {
	now := s.now().UTC()
	u, err := s.store.Usage(ctx, sc, Period(now))
	if err != nil {
		return callapi.UsageView{}, fmt.Errorf("read usage: %w", err)
	}
	start, end := periodBounds(now)
	plan := s.Plan(sc)
	v := callapi.UsageView{
		Tenant: sc.Tenant, Mode: string(sc.Mode), Period: callapi.PeriodView{Start: callapi.Timestamp(start), End: callapi.Timestamp(end)},
		Requests: u.Requests, Calls: callapi.CallsView{Billable: u.Billable, NonBillable: u.NonBillable},
	}
	if plan.MonthlyQuota > 0 {
		left := max(plan.MonthlyQuota-u.Requests, 0)
		v.Quota, v.Remaining = &plan.MonthlyQuota, &left
	}
	if plan.RateLimitPerMinute > 0 {
		v.RateLimitPerMinute = &plan.RateLimitPerMinute
	}
	return v, nil
}

// Ready reports whether the store answers.
func (s *Service) Ready(ctx context.Context) error { return s.store.Ping(ctx) }

// Now is the service's clock, for callers that must agree with it.
func (s *Service) Now() time.Time { return s.now().UTC() }
