package storetest

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/stickycalls/stickycalls/context/callapi"
	"github.com/stickycalls/stickycalls/context/callcontext"
	"github.com/stickycalls/stickycalls/context/identity"
	"github.com/stickycalls/stickycalls/context/tally"
)

// historyTests check that what the history rules of docs/SCORING.md learn
// is stored on each (number, customer) link and on the customer, and
// weighed by the next start, on every store.
func historyTests() []storeTest {
	return []storeTest{
		{"a number that came with A is only asked to confirm with C", testHistoryUnusual},
		{"a link made under C is weak for the owner's A; the owner is then preferred", testHistoryUnattested},
		{"a landline alone is asked to confirm", testHistoryHousehold},
		{"a no disputes the link, a yes strengthens it", testHistoryAnswers},
		{"an agent's correction disputes the link once", testHistoryCorrection},
		{"a number silent for 50 days is asked to confirm", testHistoryDormant},
		{"an agent naming the number's customer confirms the link", testHistoryAgentNames},
		{"the observer hears each start and end once, with what operators count", testObserverEvents},
	}
}

// observed counts what the service reports to its Observer.
type observed struct {
	mu        sync.Mutex
	answers   map[callcontext.Answer]int
	corrected map[identity.Recommendation]int
	started   []callcontext.StartEvent
	ended     []callcontext.EndEvent
}

func (o *observed) Started(_ callcontext.Scope, e callcontext.StartEvent) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.started = append(o.started, e)
}

func (o *observed) Ended(_ callcontext.Scope, e callcontext.EndEvent) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.ended = append(o.ended, e)
}

func (o *observed) Answered(a callcontext.Answer) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.answers[a]++
}

func (o *observed) Corrected(tier identity.Recommendation) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.corrected[tier]++
}

func newObservedHarness(t *testing.T, s Store) (*harness, *observed) {
	o := &observed{answers: map[callcontext.Answer]int{}, corrected: map[identity.Recommendation]int{}}
	h := newHarness(t, s, nil)
	h.svc = callcontext.NewService(s, callcontext.NoLookup{}, greeter{}, h.clock.Now, nil, callcontext.Durations{}, callcontext.WithObserver(o))
	return h, o
}

// expect checks a start's customer, recommendation and sources.
func expect(t *testing.T, what string, r callapi.StartResult, ref string, rec identity.Recommendation, sources ...string) {
	t.Helper()
	if (ref != "" && r.CustomerRef != ref) || r.Identity.Recommendation != rec || !slices.Equal(r.Identity.Sources, sources) {
		t.Errorf("%s: %s %s %q, want %s %s %q", what, r.CustomerRef, r.Identity.Recommendation, r.Identity.Sources, ref, rec, sources)
	}
}

// link returns a customer's view of its link to ani.
func (h *harness) link(ref, ani string) callapi.ANILinkView {
	h.t.Helper()
	for _, l := range h.customer(ref).Links.ANIs {
		if l.ANI == ani {
			return l
		}
	}
	h.t.Fatalf("customer %s has no link to %s", ref, ani)
	return callapi.ANILinkView{}
}

func (h *harness) answer(callID string, a callcontext.Answer) {
	h.t.Helper()
	if _, err := h.svc.Confirm(context.Background(), acmeTest, callID, a); err != nil {
		h.t.Fatalf("Confirm(%s, %s) error %v", callID, a, err)
	}
}

func (h *harness) complete(callID string) {
	h.t.Helper()
	if err := h.svc.Complete(context.Background(), acmeTest, callcontext.Completion{CallID: callID, Status: callcontext.StatusCompleted, Duration: 30}); err != nil {
		h.t.Fatalf("Complete(%s) error %v", callID, err)
	}
}

const mobileLine = `"identity_hints":{"ani":"+14155550181"},"telco":{"line_type":"mobile","attestation":`

func testHistoryUnusual(t *testing.T, s Store) {
	h := newHarness(t, s, nil)
	h.start(`{"call_id":"u1",` + mobileLine + `"A"}}`)
	h.end(`{"call_id":"u1","customer_ref":"cust_owner","variables":{"name":"Ann"}}`)
	h.at(10 * day)
	h.start(`{"call_id":"u2",` + mobileLine + `"B"}}`)
	h.end(`{"call_id":"u2","customer_ref":"cust_owner"}`)
	if l := h.link("cust_owner", "+14155550181"); l.Calls != 2 || l.AttestedCalls != 2 {
		t.Errorf("link after two attested calls: %d calls, %d attested; want 2, 2", l.Calls, l.AttestedCalls)
	}
	h.at(20 * day)
	r, _ := h.start(`{"call_id":"u3",` + mobileLine + `"C"}}`)
	expect(t, "start with C", r, "cust_owner", identity.Confirm, "ani:mobile", "stir:unusual")
	h.answer("u3", callcontext.AnswerYes) // a "yes" from an unusual call is not believed
	h.complete("u3")
	if l := h.link("cust_owner", "+14155550181"); l.Confirmations != 0 || l.Calls != 3 || l.AttestedCalls != 2 {
		t.Errorf("link after a yes from an unsigned call: %+v, want 3 calls, 2 attested, no confirmation", l)
	}
	r, _ = h.start(`{"call_id":"u4",` + mobileLine + `"A"}}`)
	expect(t, "start with A", r, "cust_owner", identity.Reuse, "ani:mobile", "stir:A", "recency:1day")
}

func testHistoryAgentNames(t *testing.T, s Store) {
	h := newHarness(t, s, nil)
	const line = `"identity_hints":{"ani":"+14155550185"},"telco":{"line_type":"voip","attestation":"B"}`
	h.start(`{"call_id":"v1",` + line + `}`)
	h.end(`{"call_id":"v1","customer_ref":"cust_vic","variables":{"name":"Vic"}}`)
	h.at(10 * day)
	r, _ := h.start(`{"call_id":"v2",` + line + `}`)
	expect(t, "a VoIP number alone", r, "", identity.Ignore, "ani:voip")
	h.end(`{"call_id":"v2","customer_ref":"cust_vic"}`) // the agent found the caller: the number's customer
	if l := h.link("cust_vic", "+14155550185"); l.Confirmations != 1 || l.Calls != 2 {
		t.Errorf("link after the agent named its customer: %+v, want 2 calls, 1 confirmation", l)
	}
	h.at(20 * day)
	r, _ = h.start(`{"call_id":"v3",` + line + `}`)
	expect(t, "a VoIP number its agent confirmed", r, "cust_vic", identity.Confirm, "ani:voip", "ani:confirmed")
	h.end(`{"call_id":"v3"}`) // an end that names nobody after a confirm teaches the link nothing
	if l := h.link("cust_vic", "+14155550185"); l.Confirmations != 1 || l.Calls != 2 || l.LastCallAt != callapi.Timestamp(t0.Add(20*day)) {
		t.Errorf("link after an end without customer_ref: %+v, want 2 calls, 1 confirmation, its last call now", l)
	}
}

func testHistoryUnattested(t *testing.T, s Store) {
	h := newHarness(t, s, nil)
	// A stranger calls first with the owner's number, unsigned.
	h.start(`{"call_id":"w1",` + mobileLine + `"C"}}`)
	h.end(`{"call_id":"w1","customer_ref":"cust_stranger","variables":{"name":"Sam"}}`)
	h.at(time.Hour)
	r, _ := h.start(`{"call_id":"w2",` + mobileLine + `"A"}}`)
	expect(t, "the owner's first call, A", r, "cust_stranger", identity.Confirm, "ani:mobile", "stir:A", "recency:1day", "ani:unattested")
	h.end(`{"call_id":"w2","customer_ref":"cust_owner","variables":{"name":"Ann"}}`) // "no, I am Ann"
	if l := h.link("cust_stranger", "+14155550181"); l.Disputes != 1 || l.Calls != 1 || l.AttestedCalls != 0 {
		t.Errorf("stranger's link: %+v, want 1 call, 0 attested, 1 dispute", l)
	}
	if l := h.link("cust_owner", "+14155550181"); l.Calls != 1 || l.AttestedCalls != 1 || l.Disputes != 0 {
		t.Errorf("owner's link: %+v, want 1 attested call", l)
	}
	h.at(2 * day)
	r, _ = h.start(`{"call_id":"w3",` + mobileLine + `"A"}}`)
	expect(t, "the owner again, A", r, "cust_owner", identity.Reuse, "ani:mobile", "stir:A", "recency:1day", "ani:history")
	r, _ = h.start(`{"call_id":"w4",` + mobileLine + `"none"}}`)
	expect(t, "the stranger again, unsigned", r, "cust_stranger", identity.Confirm, "ani:mobile", "ani:disputed", "recency:2day", "ani:history")
}

func testHistoryHousehold(t *testing.T, s Store) {
	h := newHarness(t, s, nil)
	const line = `"identity_hints":{"ani":"+14155550182"},"telco":{"line_type":"landline","attestation":"A"}`
	h.start(`{"call_id":"l1",` + line + `}`)
	h.end(`{"call_id":"l1","customer_ref":"cust_mum","variables":{"name":"Mum"}}`)
	h.at(day)
	r, _ := h.start(`{"call_id":"l2",` + line + `}`)
	expect(t, "the landline alone", r, "cust_mum", identity.Confirm, "ani:landline", "stir:A", "recency:1day", "ani:household")
	r, _ = h.start(`{"call_id":"l3","identity_hints":{"ani":"+14155550182","customer_ref":"cust_mum"},"telco":{"line_type":"landline","attestation":"A"}}`)
	expect(t, "the landline with a customer_ref", r, "cust_mum", identity.Reuse, "ani:landline", "stir:A", "customer_ref", "recency:1day")
}

func testHistoryAnswers(t *testing.T, s Store) {
	h, o := newObservedHarness(t, s)
	const line = `"identity_hints":{"ani":"+14155550183"}` // no telco: unknown line, 0.4, confirm
	h.start(`{"call_id":"a1",` + line + `}`)
	h.end(`{"call_id":"a1","customer_ref":"cust_bea","variables":{"name":"Bea"}}`)
	h.at(10 * day)
	r, _ := h.start(`{"call_id":"a2",` + line + `}`)
	expect(t, "before any answer", r, "cust_bea", identity.Confirm, "ani:unknown")
	h.answer("a2", callcontext.AnswerNo)
	h.complete("a2")
	h.complete("a2") // Twilio's retry
	if l := h.link("cust_bea", "+14155550183"); l.Disputes != 1 {
		t.Errorf("link after a no: %+v, want 1 dispute", l)
	}
	h.at(11 * day)
	r, _ = h.start(`{"call_id":"a3",` + line + `}`)
	expect(t, "after a no", r, "cust_bea", identity.Confirm, "ani:unknown", "ani:disputed")
	// Nothing heard is not a no.
	h.start(`{"call_id":"a4","identity_hints":{"ani":"+14155550183","customer_ref":"cust_bea"}}`)
	h.end(`{"call_id":"a4","customer_ref":"cust_bea"}`)
	h.at(20 * day)
	for _, id := range []string{"a5", "a6"} {
		r, _ = h.start(`{"call_id":"` + id + `",` + line + `}`)
		expect(t, "start "+id, r, "cust_bea", identity.Confirm, "ani:unknown", "ani:disputed")
	}
	h.answer("a5", callcontext.AnswerNone)
	h.complete("a5")
	h.answer("a6", callcontext.AnswerYes)
	h.complete("a6")
	if l := h.link("cust_bea", "+14155550183"); l.Disputes != 1 || l.Confirmations != 1 {
		t.Errorf("link after nothing heard and a yes: %+v, want 1 dispute, 1 confirmation", l)
	}
	if v := h.customer("cust_bea"); v.Disputes != 1 || v.Confirmations != 1 {
		t.Errorf("customer after a no, nothing heard and a yes: %d disputes, %d confirmations; want 1, 1", v.Disputes, v.Confirmations)
	}
	h.at(21 * day)
	r, _ = h.start(`{"call_id":"a7",` + line + `}`)
	expect(t, "disputed once, confirmed once", r, "cust_bea", identity.Confirm, "ani:unknown", "recency:1day")
	h.answer("a7", callcontext.AnswerYes)
	h.complete("a7")
	h.at(22 * day)
	r, _ = h.start(`{"call_id":"a8",` + line + `}`)
	expect(t, "confirmed more than disputed", r, "cust_bea", identity.Confirm, "ani:unknown", "ani:confirmed", "recency:1day", "ani:household")
	if want := map[callcontext.Answer]int{callcontext.AnswerNo: 1, callcontext.AnswerNone: 1, callcontext.AnswerYes: 2}; !equalCounts(o.answers, want) {
		t.Errorf("observed answers %v, want %v", o.answers, want)
	}
}

func testHistoryCorrection(t *testing.T, s Store) {
	h, o := newObservedHarness(t, s)
	h.start(`{"call_id":"k1",` + mobileLine + `"A"}}`)
	h.end(`{"call_id":"k1","customer_ref":"cust_kim","variables":{"name":"Kim"}}`)
	h.at(10 * day)
	r, _ := h.start(`{"call_id":"k2",` + mobileLine + `"A"}}`)
	expect(t, "returning", r, "cust_kim", identity.Reuse, "ani:mobile", "stir:A")
	h.complete("k2") // the completion links the reuse first
	h.at(10*day + time.Minute)
	body := `{"call_id":"k2","customer_ref":"cust_lee","variables":{"name":"Lee"}}`
	h.end(body)
	h.end(body) // a replay changes nothing
	if l := h.link("cust_kim", "+14155550181"); l.Disputes != 1 || l.Calls != 2 {
		t.Errorf("corrected link: %+v, want 2 calls (the completion's included) and 1 dispute", l)
	}
	if v := h.link("cust_lee", "+14155550181"); v.Calls != 1 || v.AttestedCalls != 1 {
		t.Errorf("named customer's link: %+v, want 1 attested call", v)
	}
	if v := h.customer("cust_kim"); v.Disputes != 1 || v.Confirmations != 0 {
		t.Errorf("corrected customer: %d disputes, %d confirmations; want 1, 0", v.Disputes, v.Confirmations)
	}
	if want := map[identity.Recommendation]int{identity.Reuse: 1}; !equalCounts(o.corrected, want) {
		t.Errorf("observed corrections %v, want %v", o.corrected, want)
	}
	h.at(11 * day)
	r, _ = h.start(`{"call_id":"k3",` + mobileLine + `"A"}}`)
	expect(t, "after the correction", r, "cust_lee", identity.Confirm, "ani:mobile", "ani:shared", "stir:A", "recency:1day")
	h.answer("k3", callcontext.AnswerNone)
	h.end(`{"call_id":"k3","customer_ref":"cust_max"}`)
	if l := h.link("cust_lee", "+14155550181"); l.Disputes != 0 {
		t.Errorf("a line known to be shared: %+v, want no dispute (another member called)", l)
	}
	if want := map[identity.Recommendation]int{identity.Reuse: 1, identity.Confirm: 1}; !equalCounts(o.corrected, want) {
		t.Errorf("observed corrections %v, want %v", o.corrected, want)
	}
}

func testHistoryDormant(t *testing.T, s Store) {
	h := newHarness(t, s, nil)
	const ids = `"identity_hints":{"ani":"+14155550184","external_ids":{"crm_id":"c9"}},"telco":{"line_type":"mobile","attestation":"A"}`
	h.start(`{"call_id":"d1",` + ids + `}`)
	h.end(`{"call_id":"d1","customer_ref":"cust_old","variables":{"name":"Olga"}}`)
	h.at(49 * day)
	r, _ := h.start(`{"call_id":"d2","identity_hints":{"ani":"+14155550184"},"telco":{"line_type":"mobile","attestation":"A"}}`)
	expect(t, "49 days later", r, "cust_old", identity.Reuse, "ani:mobile", "stir:A")
	h.at(50 * day)
	r, _ = h.start(`{"call_id":"d3","identity_hints":{"ani":"+14155550184"},"telco":{"line_type":"mobile","attestation":"A"}}`)
	expect(t, "50 days later", r, "cust_old", identity.Confirm, "ani:mobile", "stir:A", "ani:dormant")
	r, _ = h.start(`{"call_id":"d4",` + ids + `}`)
	expect(t, "50 days later with the CRM id", r, "cust_old", identity.Reuse, "ani:mobile", "stir:A", "external_id")
	// The guess is saved to by an end that names nobody: the link lives on,
	// but a caller nobody confirmed does not wake the number up.
	h.end(`{"call_id":"d3"}`)
	h.at(51 * day)
	r, _ = h.start(`{"call_id":"d5","identity_hints":{"ani":"+14155550184"},"telco":{"line_type":"mobile","attestation":"A"}}`)
	expect(t, "a day after an unconfirmed end", r, "cust_old", identity.Confirm, "ani:mobile", "stir:A", "recency:1day", "ani:dormant")
}

func equalCounts[K comparable](got, want map[K]int) bool {
	if len(got) != len(want) {
		return false
	}
	for k, n := range want {
		if got[k] != n {
			return false
		}
	}
	return true
}

// The observer hears each start and end once, replays never, with what
// operators count: the recommendation and confidence, whether the call is
// billable and counted, whether the end created its customer, and what it
// did to its intent.
func testObserverEvents(t *testing.T, s Store) {
	h, o := newObservedHarness(t, s)
	ctx := context.Background()
	h.start(`{"call_id":"v1","identity_hints":{"ani":"+14155550171"},"telco":{"line_type":"mobile"}}`)
	h.end(`{"call_id":"v1","customer_ref":"cust_vi","intent":"billing","intent_status":"open","variables":{"name":"Vi"}}`)
	if _, err := h.svc.End(ctx, acmeTest, parseEnd(t, `{"call_id":"v1","customer_ref":"cust_vi","intent":"billing","intent_status":"open","variables":{"name":"Vi"}}`), ""); err != nil {
		t.Fatal(err) // a replay: heard by nobody
	}
	h.at(time.Hour)
	h.start(`{"call_id":"v2","identity_hints":{"ani":"+14155550171"},"telco":{"line_type":"mobile"}}`)
	h.end(`{"call_id":"v2","customer_ref":"cust_vi","intent":"billing","intent_status":"open"}`)
	h.end(`{"call_id":"v3","customer_ref":"cust_vi","intent":"billing","intent_status":"resolved"}`) // no start
	h.end(`{"call_id":"v4","customer_ref":"cust_vi","intent":"refund","intent_status":"abandoned"}`)
	h.end(`{"call_id":"v5","customer_ref":"cust_vi"}`)
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.started) != 2 || o.started[0].Recommendation != identity.Ignore || !o.started[0].Billable ||
		o.started[1].Recommendation != identity.Reuse || o.started[1].Billable || o.started[1].Confidence < 0.5 {
		t.Errorf("started = %+v, want a billable ignore, then a non-billable reuse with its confidence", o.started)
	}
	want := []callcontext.EndEvent{
		{Created: true, Billable: true, Intent: tally.IntentOpened},
		{Intent: tally.IntentFollowedUp},
		{Counted: true, Intent: tally.IntentResolved},
		{Counted: true, Intent: tally.IntentAbandoned},
		{Counted: true},
	}
	if diff := cmp.Diff(want, o.ended); diff != "" {
		t.Errorf("ended: diff (-want +got):\n%s", diff)
	}
}
