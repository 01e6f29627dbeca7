package storetest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/stickycalls/stickycalls/context/callapi"
	"github.com/stickycalls/stickycalls/context/callcontext"
	"github.com/stickycalls/stickycalls/context/identity"
	"github.com/stickycalls/stickycalls/context/storage"
	"github.com/stickycalls/stickycalls/context/tally"
)

func serviceTests() []storeTest {
	return []storeTest{
		{"the guide's integration test", testGuideFlow},
		{"starts, ends and confirm answers are tallied by hour with their writes", testTallies},
		{"a completion retried after a half-failed write counts once, and never moves times back", testCompletionRetried},
		{"the docs' returning caller", testDocsFlow},
		{"a shared line asks to confirm", testSharedLine},
		{"withheld and own numbers are never matched or linked", testWithheld},
		{"ignore reveals nothing", testIgnoreRevealsNothing},
		{"a null variable deletes it", testVariableNull},
		{"each variable expires on its own", testVariableExpiry},
		{"at most 100 variables, else nothing is written", testVariableLimit},
		{"an external id moves between customers", testExternalIDMoves},
		{"a link expires 90 days after its last end", testLinkExpiry},
		{"a customer with nothing live is gone", testCustomerGone},
		{"erase forgets the customer", testServiceErase},
		{"tenants and modes are separate worlds", testServiceScopes},
		{"a standalone end saves to a reuse match only", testStandaloneEnd},
		{"hints that point at other customers add a conflict", testConflictingHints},
		{"open intents count calls and close", testIntents},
		{"replays and conflicts", testServiceReplays},
		{"the quota stops new work but not replays", testServiceQuota},
		{"a call's outcome: ended, or completed with the network's duration", testCallOutcome},
		{"a completed call shorter than 5 s links nothing", testShortCallLinksNothing},
	}
}

func testGuideFlow(t *testing.T, s Store) {
	h := newHarness(t, s, nil)
	r, raw := h.start(`{"call_id":"test_new_001","ani":"+19999999999"}`)
	if r.Match != nil || r.Confidence != nil || !r.Billable {
		t.Errorf("start(test_new_001): match %v, confidence %v, billable %v; want null, null, true", r.Match, r.Confidence, r.Billable)
	}
	for _, field := range []string{`"match":null`, `"confidence":null`} {
		if !bytes.Contains(raw, []byte(field)) {
			t.Errorf("start(test_new_001) = %s, want it to hold %s", raw, field)
		}
	}

	r, _ = h.start(`{"call_id":"test_001","ani":"+14155551234"}`)
	if r.Identity.Recommendation != identity.Ignore || !r.Billable || r.Match != nil {
		t.Errorf("start(test_001): recommendation %q, billable %v, match %v; want ignore, true, null", r.Identity.Recommendation, r.Billable, r.Match)
	}
	h.at(time.Minute)
	end := h.end(`{"call_id":"test_001","customer_ref":"cust_test","variables":{"name":"Test"},"intent":"test","intent_is_open":false}`)
	start := callapi.Timestamp(t0)
	wantEnd := callapi.EndResult{
		CallID: "test_001", CustomerRef: "cust_test", CallStart: &start, CallEnd: callapi.Timestamp(t0.Add(time.Minute)),
		DurationSeconds: 60, IntentsUpdated: 1, VariablesUpdated: 1, Billable: true,
	}
	if diff := cmp.Diff(wantEnd, end); diff != "" {
		t.Errorf("end(test_001): diff (-want +got):\n%s", diff)
	}

	h.at(2 * time.Minute)
	r, raw = h.start(`{"call_id":"test_002","ani":"+14155551234"}`)
	if r.Match == nil || r.Match.CustomerRef != "cust_test" {
		t.Fatalf("start(test_002): match %+v, want customer_ref cust_test", r.Match)
	}
	if r.Confidence == nil || *r.Confidence <= 0 || r.Billable {
		t.Errorf("start(test_002): confidence %v, billable %v; want > 0, false", r.Confidence, r.Billable)
	}
	if got := r.Match.Variables["name"]; got != "Test" {
		t.Errorf("start(test_002): match.variables.name = %q, want Test", got)
	}
	want := summary{
		CustomerRef: "cust_test", Confidence: 0.45, Level: identity.Low, Recommendation: identity.Confirm,
		Sources: []string{"ani:unknown", "recency:1day"}, Candidates: []callapi.Candidate{},
		Intents: []string{}, Variables: map[string]string{"name": "Test"}, Match: true,
	}
	if diff := cmp.Diff(want, summarize(r)); diff != "" {
		t.Errorf("start(test_002): diff (-want +got):\n%s", diff)
	}

	// GET /v1/calls/test_002 returns the stored start response.
	if got, err := callJSON(h.svc, acmeTest, "test_002"); err != nil || !bytes.Equal(got, raw) {
		t.Errorf("Call(test_002) = %s, %v; want the start response %s", got, err, raw)
	}
	h.at(7*day + 2*time.Minute) // test_002 started at +2m and is kept 7 days
	if got, err := callJSON(h.svc, acmeTest, "test_002"); !errors.Is(err, callcontext.ErrNotFound) {
		t.Errorf("Call(test_002) 7 days after its start = %s, %v; want ErrNotFound", got, err)
	}
	if _, err := h.svc.Call(context.Background(), acmeTest, "test_999"); !errors.Is(err, callcontext.ErrNotFound) {
		t.Errorf("Call(test_999) error %v, want ErrNotFound", err)
	}
	// Closing an intent that was never open records it in history.
	v := h.customer("cust_test")
	if len(v.ClosedIntents) != 1 || v.ClosedIntents[0].Intent != "test" || v.ClosedIntents[0].Status != "resolved" {
		t.Errorf("Customer(cust_test).ClosedIntents = %+v, want [test resolved]", v.ClosedIntents)
	}
	u, err := h.svc.Usage(context.Background(), acmeTest)
	if err != nil {
		t.Fatalf("Usage() error %v", err)
	}
	if u.Requests != 4 || u.Calls != (callapi.CallsView{Billable: 2, NonBillable: 1}) || u.Quota != nil || u.Remaining != nil {
		t.Errorf("Usage() = requests %d, calls %+v, quota %v, remaining %v; want 4, {2 1}, null, null", u.Requests, u.Calls, u.Quota, u.Remaining)
	}
}

func testDocsFlow(t *testing.T, s Store) {
	h := newHarness(t, s, nil)
	const hints = `"identity_hints":{"ani":"+1 (415) 555-0123","external_ids":{"crm_id":"CRM-42"}}`
	r, _ := h.start(`{"call_id":"call_1738300000000_ab12cd",` + hints + `,"telco":{"line_type":"mobile"}}`)
	if r.Identity.Recommendation != identity.Ignore {
		t.Fatalf("first start: recommendation %q, want ignore", r.Identity.Recommendation)
	}
	ref := r.CustomerRef
	h.at(5 * time.Minute)
	end := h.end(`{"call_id":"call_1738300000000_ab12cd","intent":"refund_request","intent_status":"open","variables":{"name":"John Doe"}}`)
	if end.CustomerRef != ref || !end.Billable {
		t.Errorf("first end: customer_ref %q, billable %v; want the start's %q, true", end.CustomerRef, end.Billable, ref)
	}

	h.at(8 * day)
	r, _ = h.start(`{"call_id":"call_1738991200000_k2p9x7",` + hints + `,"telco":{"line_type":"mobile"}}`)
	want := summary{
		CustomerRef: ref, Confidence: 0.9, Level: identity.VeryHigh, Recommendation: identity.Reuse,
		Sources: []string{"ani:mobile", "external_id"}, Candidates: []callapi.Candidate{},
		Intents: []string{"refund_request×1"}, Variables: map[string]string{"name": "John Doe"}, Match: true,
	}
	if diff := cmp.Diff(want, summarize(r)); diff != "" {
		t.Errorf("start 8 days later: diff (-want +got):\n%s", diff)
	}
	if r.Greeting.Text != "Welcome back, John Doe!" {
		t.Errorf("start 8 days later: greeting %q, want the stub's personal greeting", r.Greeting.Text)
	}
	h.at(8*day + 5*time.Minute)
	if end := h.end(`{"call_id":"call_1738991200000_k2p9x7","intent":"refund_request","intent_status":"open"}`); end.Billable {
		t.Errorf("second end: billable true, want false")
	}

	// A day later, without telco: the remembered line type and recency.
	h.at(9 * day)
	r, raw := h.start(`{"call_id":"call_1739077600000_p9x7k2",` + hints + `}`)
	want.Confidence, want.Sources, want.Intents = 0.95, []string{"ani:mobile", "external_id", "recency:1day"}, []string{"refund_request×2"}
	if diff := cmp.Diff(want, summarize(r)); diff != "" {
		t.Errorf("start 9 days later: diff (-want +got):\n%s", diff)
	}
	if r.Identity.LineType != identity.Mobile || r.Identity.LineTypeSource != "remembered" {
		t.Errorf("start 9 days later: line type %q from %q, want mobile from remembered", r.Identity.LineType, r.Identity.LineTypeSource)
	}
	wantVar := callapi.VariableView{Value: "John Doe", Source: "call_1738300000000_ab12cd", TTLSeconds: int64((21*day + 5*time.Minute) / time.Second)}
	if got := r.Variables["name"]; got != wantVar {
		t.Errorf("start 9 days later: variables.name = %+v, want %+v", got, wantVar)
	}
	if len(r.OpenIntents) == 1 {
		if got, want := r.OpenIntents[0].LastCallAt, callapi.Timestamp(t0.Add(8*day+5*time.Minute)); got != want {
			t.Errorf("start 9 days later: open intent last_call_at %s, want %s", got, want)
		}
	}
	if r.Match == nil || r.Match.Variables["name"] != "John Doe" || len(r.Match.OpenIntents) != 1 {
		t.Errorf("start 9 days later: match = %+v, want the name and the open intent", r.Match)
	}
	if !bytes.Contains(raw, []byte(`"confidence":0.95`)) {
		t.Errorf("start 9 days later = %s, want it to hold \"confidence\":0.95", raw)
	}
}

func testSharedLine(t *testing.T, s Store) {
	h := newHarness(t, s, nil)
	const line = `"identity_hints":{"ani":"+14155550177"},"telco":{"line_type":"mobile"}`
	h.start(`{"call_id":"call_s1",` + line + `}`)
	h.at(time.Minute)
	h.end(`{"call_id":"call_s1","customer_ref":"cust_ann","variables":{"name":"Ann"}}`)
	h.at(time.Hour)
	r, _ := h.start(`{"call_id":"call_s2",` + line + `}`)
	if r.CustomerRef != "cust_ann" || r.Identity.Confidence != 0.55 {
		t.Errorf("start(call_s2): customer %q at %v, want cust_ann at 0.55", r.CustomerRef, r.Identity.Confidence)
	}
	h.at(time.Hour + time.Minute)
	// The agent knows better: this caller was Bob.
	h.end(`{"call_id":"call_s2","customer_ref":"cust_bob","variables":{"name":"Bob"}}`)

	h.at(10 * day)
	r, _ = h.start(`{"call_id":"call_s3",` + line + `}`)
	want := summary{
		CustomerRef: "cust_bob", Confidence: 0.38, Level: identity.Low, Recommendation: identity.Confirm,
		Sources:    []string{"ani:mobile", "ani:shared"},
		Candidates: []callapi.Candidate{{CustomerRef: "cust_bob", Name: "Bob"}, {CustomerRef: "cust_ann", Name: "Ann"}},
		Intents:    []string{}, Variables: map[string]string{"name": "Bob"}, Match: true,
	}
	if diff := cmp.Diff(want, summarize(r)); diff != "" {
		t.Errorf("start(call_s3) on a shared line: diff (-want +got):\n%s", diff)
	}
}

func testWithheld(t *testing.T, s Store) {
	const own = "+18005550100"
	pol := callcontext.DefaultPolicy()
	pol.OwnNumbers = map[string]bool{own: true}
	h := newHarness(t, s, map[string]callcontext.Policy{"acme": pol})
	markers := []string{"", "anonymous", "Restricted", "PRIVATE", "unknown", "Unavailable", "blocked", "BLOCKED",
		"+266696687", "+7378742833", "+86282452253", "+2562533", "+8656696", own}
	for i, ani := range markers {
		id := fmt.Sprintf("call_w%d", i)
		ref := fmt.Sprintf("cust_w%d", i)
		h.at(time.Duration(i) * time.Hour)
		r, _ := h.start(fmt.Sprintf(`{"call_id":%q,"identity_hints":{"ani":%q},"telco":{"line_type":"mobile"}}`, id, ani))
		if r.Identity.Recommendation != identity.Ignore || len(r.Identity.Sources) != 0 {
			t.Errorf("start with ANI %q: %q with sources %v, want ignore with none", ani, r.Identity.Recommendation, r.Identity.Sources)
		}
		h.at(time.Duration(i)*time.Hour + time.Minute)
		h.end(fmt.Sprintf(`{"call_id":%q,"customer_ref":%q,"variables":{"name":"W%d"},"identity_hints":{"ani":%q}}`, id, ref, i, ani))
		if v := h.customer(ref); len(v.Links.ANIs) != 0 {
			t.Errorf("Customer(%s) after a call from ANI %q: ANI links %+v, want none", ref, ani, v.Links.ANIs)
		}
		// A standalone end with only the ANI links nothing either.
		h.end(fmt.Sprintf(`{"call_id":"%s_b","customer_ref":"%s_b","intent":"x","identity_hints":{"ani":%q}}`, id, ref, ani))
		if v := h.customer(ref + "_b"); len(v.Links.ANIs) != 0 {
			t.Errorf("Customer(%s_b) after a standalone end from ANI %q: ANI links %+v, want none", ref, ani, v.Links.ANIs)
		}
		h.at(time.Duration(i)*time.Hour + 2*time.Minute)
		r, _ = h.start(fmt.Sprintf(`{"call_id":"%s_c","identity_hints":{"ani":%q},"telco":{"line_type":"mobile"}}`, id, ani))
		if r.Identity.Recommendation != identity.Ignore || r.Match != nil {
			t.Errorf("second start with ANI %q: %q, match %+v; want ignore, null", ani, r.Identity.Recommendation, r.Match)
		}
	}
}

func testIgnoreRevealsNothing(t *testing.T, s Store) {
	h := newHarness(t, s, nil)
	h.start(`{"call_id":"call_i1","identity_hints":{"ani":"+14155550188"},"telco":{"line_type":"landline"}}`)
	h.at(time.Minute)
	h.end(`{"call_id":"call_i1","customer_ref":"cust_ivy","intent":"billing_dispute","intent_status":"open","variables":{"name":"Ivy","plan":"gold"}}`)

	h.at(time.Hour)
	r, raw := h.start(`{"call_id":"call_i2","identity_hints":{"ani":"+14155550188"},"telco":{"line_type":"landline","attestation":"failed"}}`)
	fresh(t, "start(call_i2) with a failed attestation", r, "cust_ivy")
	want := summary{
		CustomerRef: r.CustomerRef, Confidence: 0.15, Level: identity.Low, Recommendation: identity.Ignore,
		Sources: []string{"ani:landline", "stir:failed", "recency:1day"}, Candidates: []callapi.Candidate{},
		Intents: []string{}, Variables: map[string]string{}, Billable: true,
	}
	if diff := cmp.Diff(want, summarize(r)); diff != "" {
		t.Errorf("start(call_i2): diff (-want +got):\n%s", diff)
	}
	for _, secret := range []string{"Ivy", "gold", "billing_dispute", "cust_ivy"} {
		if bytes.Contains(raw, []byte(secret)) {
			t.Errorf("start(call_i2) = %s, reveals %q", raw, secret)
		}
	}
	// The end saves to the fresh ref, never to the guessed customer.
	h.at(time.Hour + time.Minute)
	end := h.end(`{"call_id":"call_i2","intent":"billing_dispute","intent_status":"open"}`)
	if end.CustomerRef != r.CustomerRef || !end.Billable {
		t.Errorf("end(call_i2): customer_ref %q, billable %v; want the fresh %q, true", end.CustomerRef, end.Billable, r.CustomerRef)
	}
	if v := h.customer("cust_ivy"); len(v.OpenIntents) != 1 || v.OpenIntents[0].AttemptCount != 1 {
		t.Errorf("Customer(cust_ivy).OpenIntents = %+v, want billing_dispute counted once", v.OpenIntents)
	}
}

func varValues(v callapi.CustomerView) map[string]string {
	out := map[string]string{}
	for k, x := range v.Variables {
		out[k] = x.Value
	}
	return out
}

func testVariableNull(t *testing.T, s Store) {
	h := newHarness(t, s, nil)
	end := h.end(`{"call_id":"call_v1","customer_ref":"cust_v","variables":{"name":"Val","color":"blue","size":10,"vip":true,"tier":{"value":"gold"}}}`)
	if end.VariablesUpdated != 5 {
		t.Errorf("end(call_v1).variables_updated = %d, want 5", end.VariablesUpdated)
	}
	h.at(time.Minute)
	end = h.end(`{"call_id":"call_v2","customer_ref":"cust_v","variables":{"color":null,"never_set":null}}`)
	if end.VariablesUpdated != 1 || end.Billable {
		t.Errorf("end(call_v2): variables_updated %d, billable %v; want 1, false", end.VariablesUpdated, end.Billable)
	}
	want := map[string]string{"name": "Val", "size": "10", "vip": "true", "tier": "gold"}
	if diff := cmp.Diff(want, varValues(h.customer("cust_v"))); diff != "" {
		t.Errorf("Customer(cust_v).variables after deleting color: diff (-want +got):\n%s", diff)
	}
}

func testVariableExpiry(t *testing.T, s Store) {
	h := newHarness(t, s, nil)
	h.end(`{"call_id":"call_e1","customer_ref":"cust_e","variables":{"short":"a"},"variable_ttl_seconds":86400}`)
	h.end(`{"call_id":"call_e2","customer_ref":"cust_e","variables":{"long":"b"}}`)
	tests := []struct {
		at   time.Duration
		want map[string]int64 // name → ttl_seconds; nil: the customer is gone
	}{
		{0, map[string]int64{"short": 86400, "long": 30 * 86400}},
		{day - time.Second, map[string]int64{"short": 1, "long": 30*86400 - 86399}},
		{day, map[string]int64{"long": 29 * 86400}},
		{30*day - time.Second, map[string]int64{"long": 1}},
		{30 * day, nil},
	}
	for i, tc := range tests {
		h.at(tc.at)
		if tc.want == nil {
			h.gone("cust_e")
			continue
		}
		got := map[string]int64{}
		for k, v := range h.customer("cust_e").Variables {
			got[k] = v.TTLSeconds
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("Customer(cust_e).variables at +%s: diff (-want +got):\n%s", tc.at, diff)
		}
		// A start that names the customer sees the same variables.
		r, _ := h.start(fmt.Sprintf(`{"call_id":"call_s%d","identity_hints":{"customer_ref":"cust_e"}}`, i))
		got = map[string]int64{}
		for k, v := range r.Variables {
			got[k] = v.TTLSeconds
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("start(customer_ref cust_e).variables at +%s: diff (-want +got):\n%s", tc.at, diff)
		}
	}
}

func varsJSON(from, to int) string {
	var parts []string
	for i := from; i < to; i++ {
		parts = append(parts, fmt.Sprintf(`"v%03d":"x"`, i))
	}
	return "{" + strings.Join(parts, ",") + "}"
}

func testVariableLimit(t *testing.T, s Store) {
	h := newHarness(t, s, nil)
	h.end(`{"call_id":"call_l1","customer_ref":"cust_l","variables":` + varsJSON(0, 60) + `}`)
	h.at(time.Minute)
	body := `{"call_id":"call_l2","customer_ref":"cust_l","intent":"upgrade","variables":` + varsJSON(60, 101) + `}`
	_, err := h.svc.End(context.Background(), acmeTest, parseEnd(t, body), "")
	var verr *callapi.ValidationError
	if !errors.As(err, &verr) {
		t.Fatalf("End(60 + 41 variables) error %v, want a *callapi.ValidationError", err)
	}
	if len(verr.Issues) != 1 || !slices.Equal(verr.Issues[0].Path, []string{"variables"}) {
		t.Errorf("End(60 + 41 variables) issues %+v, want one at [variables]", verr.Issues)
	}
	v := h.customer("cust_l")
	if len(v.Variables) != 60 || len(v.OpenIntents) != 0 {
		t.Errorf("Customer(cust_l) after the refused end: %d variables, %d open intents; want 60, 0", len(v.Variables), len(v.OpenIntents))
	}
	if u, err := h.svc.Usage(context.Background(), acmeTest); err != nil || u.Requests != 1 {
		t.Errorf("Usage().Requests after a refused end = %d, %v; want 1 (the refused end is not counted)", u.Requests, err)
	}
	// The refused end holds nothing: the same call can end within the limit.
	h.at(2 * time.Minute)
	h.end(`{"call_id":"call_l2","customer_ref":"cust_l","intent":"upgrade","variables":` + varsJSON(60, 100) + `}`)
	if v := h.customer("cust_l"); len(v.Variables) != 100 || len(v.OpenIntents) != 1 {
		t.Errorf("Customer(cust_l) after 40 more: %d variables, %d open intents; want 100, 1", len(v.Variables), len(v.OpenIntents))
	}
}

func extIDs(v callapi.CustomerView) []string {
	out := []string{}
	for _, l := range v.Links.ExternalIDs {
		out = append(out, l.Key+":"+l.Value)
	}
	return out
}

func testExternalIDMoves(t *testing.T, s Store) {
	h := newHarness(t, s, nil)
	h.end(`{"call_id":"call_x1","customer_ref":"cust_x1","external_ids":{"crm_id":"42"},"variables":{"name":"X1"}}`)
	h.end(`{"call_id":"call_x3","customer_ref":"cust_x3","external_ids":{"zendesk":"7"}}`)
	h.at(time.Minute)
	h.end(`{"call_id":"call_x2","customer_ref":"cust_x2","external_ids":{"crm_id":"42","zendesk":"7"}}`)

	if got := extIDs(h.customer("cust_x1")); len(got) != 0 {
		t.Errorf("Customer(cust_x1) external ids after the move = %v, want none", got)
	}
	h.gone("cust_x3") // it had nothing but the id that moved
	if diff := cmp.Diff([]string{"crm_id:42", "zendesk:7"}, extIDs(h.customer("cust_x2"))); diff != "" {
		t.Errorf("Customer(cust_x2) external ids: diff (-want +got):\n%s", diff)
	}
	h.at(2 * time.Minute)
	r, _ := h.start(`{"call_id":"call_x4","identity_hints":{"external_ids":{"crm_id":"42"}}}`)
	want := summary{
		CustomerRef: "cust_x2", Confidence: 0.45, Level: identity.Low, Recommendation: identity.Confirm,
		Sources: []string{"external_id", "recency:1day"}, Candidates: []callapi.Candidate{},
		Intents: []string{}, Variables: map[string]string{}, Match: true,
	}
	if diff := cmp.Diff(want, summarize(r)); diff != "" {
		t.Errorf("start(crm_id 42) after the move: diff (-want +got):\n%s", diff)
	}
}

func testLinkExpiry(t *testing.T, s Store) {
	h := newHarness(t, s, nil)
	const line = `"identity_hints":{"ani":"+14155550166"},"telco":{"line_type":"mobile"}`
	h.start(`{"call_id":"call_k1",` + line + `}`)
	h.at(time.Minute)
	h.end(`{"call_id":"call_k1","customer_ref":"cust_k"}`)
	// A later end without the ANI keeps the customer but not the link.
	h.at(60 * day)
	h.end(`{"call_id":"call_k2","customer_ref":"cust_k","variables":{"name":"Kay"},"variable_ttl_seconds":7776000}`)

	expiry := 90*day + time.Minute
	h.at(expiry - time.Second)
	r, _ := h.start(`{"call_id":"call_k3","identity_hints":{"ani":"+14155550166"}}`)
	if r.Match == nil || r.Match.CustomerRef != "cust_k" {
		t.Errorf("start a second before the link expires: match %+v, want cust_k", r.Match)
	}
	// That start did not refresh the link.
	h.at(expiry)
	r, _ = h.start(`{"call_id":"call_k4","identity_hints":{"ani":"+14155550166"}}`)
	if r.Identity.Recommendation != identity.Ignore || len(r.Identity.Sources) != 0 || r.Match != nil {
		t.Errorf("start when the link expired: %q with sources %v, match %+v; want ignore, none, null",
			r.Identity.Recommendation, r.Identity.Sources, r.Match)
	}
	fresh(t, "start when the link expired", r, "cust_k")
	if v := h.customer("cust_k"); len(v.Links.ANIs) != 0 || v.Variables["name"].Value != "Kay" {
		t.Errorf("Customer(cust_k) when the link expired: ANIs %+v, name %q; want none, Kay", v.Links.ANIs, v.Variables["name"].Value)
	}
}

func testCustomerGone(t *testing.T, s Store) {
	h := newHarness(t, s, nil)
	// Only a closed intent: nothing live from the start.
	end := h.end(`{"call_id":"call_g1","customer_ref":"cust_g1","intent":"question","intent_is_open":false}`)
	if end.CustomerRef != "cust_g1" {
		t.Errorf("end(call_g1).customer_ref = %q, want cust_g1", end.CustomerRef)
	}
	h.gone("cust_g1")
	// Only a link: gone when it expires.
	h.start(`{"call_id":"call_g2","identity_hints":{"ani":"+14155550155"}}`)
	h.end(`{"call_id":"call_g2","customer_ref":"cust_g2"}`)
	// Only an open intent: closed as abandoned 90 days after its last call.
	h.end(`{"call_id":"call_g3","customer_ref":"cust_g3","intent":"callback","intent_status":"open"}`)
	h.at(90*day - time.Second)
	if v := h.customer("cust_g2"); len(v.Links.ANIs) != 1 {
		t.Errorf("Customer(cust_g2) a second before expiry: ANIs %+v, want one", v.Links.ANIs)
	}
	if v := h.customer("cust_g3"); len(v.OpenIntents) != 1 {
		t.Errorf("Customer(cust_g3) a second before expiry: open intents %+v, want one", v.OpenIntents)
	}
	h.at(90 * day)
	h.gone("cust_g2")
	h.gone("cust_g3")
}

func testServiceErase(t *testing.T, s Store) {
	h := newHarness(t, s, nil)
	ctx := context.Background()
	const hints = `"identity_hints":{"ani":"+14155550144","external_ids":{"crm_id":"E-1"}},"telco":{"line_type":"mobile"}`
	h.start(`{"call_id":"call_d1",` + hints + `}`)
	h.end(`{"call_id":"call_d1","customer_ref":"cust_d","variables":{"name":"Dee"}}`)
	h.at(time.Hour)
	r, _ := h.start(`{"call_id":"call_d2",` + hints + `}`)
	if r.CustomerRef != "cust_d" {
		t.Fatalf("start(call_d2) customer_ref = %q, want cust_d", r.CustomerRef)
	}
	if err := h.svc.Erase(ctx, acmeTest, "cust_d"); err != nil {
		t.Fatalf("Erase(cust_d) = %v", err)
	}
	h.gone("cust_d")
	for _, id := range []string{"call_d1", "call_d2"} {
		if got, err := callJSON(h.svc, acmeTest, id); !errors.Is(err, callcontext.ErrNotFound) {
			t.Errorf("Call(%s) after Erase(cust_d) = %s, %v; want ErrNotFound", id, got, err)
		}
	}
	h.at(2 * time.Hour)
	r, raw := h.start(`{"call_id":"call_d3",` + hints + `}`)
	if r.Identity.Recommendation != identity.Ignore || bytes.Contains(raw, []byte("Dee")) {
		t.Errorf("start(call_d3) after Erase = %s, want ignore revealing nothing", raw)
	}
	fresh(t, "start after Erase", r, "cust_d")
	if err := h.svc.Erase(ctx, acmeTest, "cust_d"); !errors.Is(err, callcontext.ErrNotFound) {
		t.Errorf("second Erase(cust_d) = %v, want ErrNotFound", err)
	}
}

func testServiceScopes(t *testing.T, s Store) {
	h := newHarness(t, s, nil)
	const hints = `"identity_hints":{"ani":"+14155550133","external_ids":{"crm_id":"S-1"}},"telco":{"line_type":"mobile"}`
	h.startIn(acmeTest, `{"call_id":"call_1",`+hints+`}`)
	h.endIn(acmeTest, `{"call_id":"call_1","customer_ref":"cust_s","variables":{"name":"Sam"}}`)
	h.at(time.Hour)
	for _, sc := range []callcontext.Scope{acmeProd, zetaTest} {
		// The same call_id is a new call in another scope, not a replay.
		r, raw := h.startIn(sc, `{"call_id":"call_1",`+hints+`}`)
		if r.Identity.Recommendation != identity.Ignore || bytes.Contains(raw, []byte("Sam")) {
			t.Errorf("start(%v) = %s, want ignore revealing nothing", sc, raw)
		}
		if _, err := h.svc.Customer(context.Background(), sc, "cust_s"); !errors.Is(err, callcontext.ErrNotFound) {
			t.Errorf("Customer(%v, cust_s) error %v, want ErrNotFound", sc, err)
		}
		if err := h.svc.Erase(context.Background(), sc, "cust_s"); !errors.Is(err, callcontext.ErrNotFound) {
			t.Errorf("Erase(%v, cust_s) = %v, want ErrNotFound", sc, err)
		}
		u, err := h.svc.Usage(context.Background(), sc)
		if err != nil || u.Requests != 1 || u.Tenant != sc.Tenant || u.Mode != string(sc.Mode) {
			t.Errorf("Usage(%v) = %+v, %v; want 1 request of its own", sc, u, err)
		}
	}
	r, _ := h.startIn(acmeTest, `{"call_id":"call_2",`+hints+`}`)
	if r.CustomerRef != "cust_s" {
		t.Errorf("start(acme test) after the other scopes = %q, want cust_s", r.CustomerRef)
	}
	if u, err := h.svc.Usage(context.Background(), acmeTest); err != nil || u.Requests != 3 {
		t.Errorf("Usage(acme test).Requests = %d, %v; want 3", u.Requests, err)
	}
}

func testServiceReplays(t *testing.T, s Store) {
	h := newHarness(t, s, nil)
	ctx := context.Background()
	nested := `{"identity_hints":{"external_ids":{"b":"2","a":"1"},"ani":"+14155550122"},"call_id":"call_r1"}`
	flat := `{"call_id": "call_r1", "ani": "+1 415 555 0122", "external_ids": {"a": "1", "b": "2"}}`
	first, err := h.svc.Start(ctx, acmeTest, parseStart(t, nested), "")
	if err != nil || first.Replayed {
		t.Fatalf("Start(%s) = replayed %v, %v; want a fresh answer", nested, first.Replayed, err)
	}
	h.at(time.Hour)
	again, err := h.svc.Start(ctx, acmeTest, parseStart(t, flat), "")
	if err != nil || !again.Replayed || !bytes.Equal(again.Body, first.Body) {
		t.Errorf("Start(flat twin %s) = %s, replayed %v, %v; want the first answer replayed", flat, again.Body, again.Replayed, err)
	}
	other := `{"call_id":"call_r1","ani":"+14155550199"}`
	if _, err := h.svc.Start(ctx, acmeTest, parseStart(t, other), ""); !errors.Is(err, callcontext.ErrConflict) {
		t.Errorf("Start(%s) error %v, want ErrConflict", other, err)
	}

	endBody := `{"call_id":"call_r1","customer_ref":"cust_r","intent":"x","intent_status":"open"}`
	firstEnd, err := h.svc.End(ctx, acmeTest, parseEnd(t, endBody), "")
	if err != nil || firstEnd.Replayed {
		t.Fatalf("End(%s) = replayed %v, %v; want a fresh answer", endBody, firstEnd.Replayed, err)
	}
	h.at(2 * time.Hour)
	sameEnd := `{"intent_is_open":true,"intent":"x","customer_ref":"cust_r","call_id":"call_r1"}`
	againEnd, err := h.svc.End(ctx, acmeTest, parseEnd(t, sameEnd), "")
	if err != nil || !againEnd.Replayed || !bytes.Equal(againEnd.Body, firstEnd.Body) {
		t.Errorf("End(twin %s) = %s, replayed %v, %v; want the first answer replayed", sameEnd, againEnd.Body, againEnd.Replayed, err)
	}
	otherEnd := `{"call_id":"call_r1","customer_ref":"cust_r","intent":"y"}`
	if _, err := h.svc.End(ctx, acmeTest, parseEnd(t, otherEnd), ""); !errors.Is(err, callcontext.ErrConflict) {
		t.Errorf("End(%s) error %v, want ErrConflict", otherEnd, err)
	}
	if v := h.customer("cust_r"); len(v.OpenIntents) != 1 || v.OpenIntents[0].AttemptCount != 1 {
		t.Errorf("Customer(cust_r).OpenIntents after a replay and a conflict = %+v, want x counted once", v.OpenIntents)
	}

	// An Idempotency-Key: same body replays, another body is refused.
	keyed := `{"call_id":"call_r2","ani":"+14155550122"}`
	k1, err := h.svc.Start(ctx, acmeTest, parseStart(t, keyed), "idem-123")
	if err != nil {
		t.Fatalf("Start(%s, key idem-123) error %v", keyed, err)
	}
	k2, err := h.svc.Start(ctx, acmeTest, parseStart(t, keyed), "idem-123")
	if err != nil || !k2.Replayed || !bytes.Equal(k2.Body, k1.Body) {
		t.Errorf("Start(%s, key idem-123) again = replayed %v, %v; want the first answer replayed", keyed, k2.Replayed, err)
	}
	reused := `{"call_id":"call_r2","ani":"+14155550123"}`
	if _, err := h.svc.Start(ctx, acmeTest, parseStart(t, reused), "idem-123"); !errors.Is(err, callcontext.ErrKeyReused) {
		t.Errorf("Start(%s, key idem-123) error %v, want ErrKeyReused", reused, err)
	}
	keyedEnd := `{"call_id":"call_r2","customer_ref":"cust_r2"}`
	if _, err := h.svc.End(ctx, acmeTest, parseEnd(t, keyedEnd), "idem-456"); err != nil {
		t.Fatalf("End(%s, key idem-456) error %v", keyedEnd, err)
	}
	// Same key, another body: 422 wins over the call_id's 409.
	reusedEnd := `{"call_id":"call_r2","customer_ref":"cust_r3"}`
	if _, err := h.svc.End(ctx, acmeTest, parseEnd(t, reusedEnd), "idem-456"); !errors.Is(err, callcontext.ErrKeyReused) {
		t.Errorf("End(%s, key idem-456) error %v, want ErrKeyReused", reusedEnd, err)
	}
	if r, err := h.svc.End(ctx, acmeTest, parseEnd(t, keyedEnd), "idem-456"); err != nil || !r.Replayed {
		t.Errorf("End(%s, key idem-456) again = replayed %v, %v; want a replay", keyedEnd, r.Replayed, err)
	}
	u, err := h.svc.Usage(ctx, acmeTest)
	if err != nil || u.Requests != 4 {
		t.Errorf("Usage().Requests = %d, %v; want 4 (replays and refusals are not counted)", u.Requests, err)
	}
}

func testConflictingHints(t *testing.T, s Store) {
	h := newHarness(t, s, nil)
	h.start(`{"call_id":"call_1","identity_hints":{"ani":"+14155550161"},"telco":{"line_type":"mobile"}}`)
	h.end(`{"call_id":"call_1","customer_ref":"cust_a","variables":{"name":"Al"}}`)
	h.end(`{"call_id":"call_2","customer_ref":"cust_b","external_ids":{"crm_id":"B"},"variables":{"name":"Bea"}}`)
	h.at(time.Hour)
	tests := []struct {
		hints string
		want  summary
	}{
		{`{"ani":"+14155550161","external_ids":{"crm_id":"B"}}`, summary{
			CustomerRef: "cust_b", Confidence: 0.45, Level: identity.Low, Recommendation: identity.Confirm,
			Sources: []string{"ani:conflict", "external_id", "recency:1day"}, Candidates: []callapi.Candidate{},
			Intents: []string{}, Variables: map[string]string{"name": "Bea"}, Match: true,
		}},
		{`{"ani":"+14155550161","customer_ref":"cust_b"}`, summary{
			CustomerRef: "cust_b", Confidence: 0.55, Level: identity.Medium, Recommendation: identity.Reuse,
			Sources: []string{"ani:conflict", "customer_ref", "recency:1day"}, Candidates: []callapi.Candidate{},
			Intents: []string{}, Variables: map[string]string{"name": "Bea"}, Match: true,
		}},
		{`{"external_ids":{"crm_id":"B"},"customer_ref":"cust_a"}`, summary{
			CustomerRef: "cust_a", Confidence: 0.55, Level: identity.Medium, Recommendation: identity.Reuse,
			Sources: []string{"external_id:conflict", "customer_ref", "recency:1day"}, Candidates: []callapi.Candidate{},
			Intents: []string{}, Variables: map[string]string{"name": "Al"}, Match: true,
		}},
		{`{"ani":"+14155550161","customer_ref":"cust_a"}`, summary{
			CustomerRef: "cust_a", Confidence: 1, Level: identity.VeryHigh, Recommendation: identity.Reuse,
			Sources: []string{"ani:mobile", "customer_ref", "recency:1day"}, Candidates: []callapi.Candidate{},
			Intents: []string{}, Variables: map[string]string{"name": "Al"}, Match: true,
		}},
	}
	for i, tc := range tests {
		r, _ := h.start(fmt.Sprintf(`{"call_id":"call_h%d","identity_hints":%s}`, i, tc.hints))
		if diff := cmp.Diff(tc.want, summarize(r)); diff != "" {
			t.Errorf("start(hints %s): diff (-want +got):\n%s", tc.hints, diff)
		}
	}
}

func testServiceQuota(t *testing.T, s Store) {
	pol := callcontext.DefaultPolicy()
	pol.Plans = map[callcontext.Mode]callcontext.Plan{callcontext.Test: {MonthlyQuota: 2}}
	h := newHarness(t, s, map[string]callcontext.Policy{"acme": pol})
	ctx := context.Background()
	h.start(`{"call_id":"call_q1","ani":"+14155550111"}`)
	h.start(`{"call_id":"call_q2","ani":"+14155550111"}`)
	if _, err := h.svc.Start(ctx, acmeTest, parseStart(t, `{"call_id":"call_q3","ani":"+14155550111"}`), ""); !errors.Is(err, callcontext.ErrOverQuota) {
		t.Errorf("Start(call_q3) over a quota of 2: error %v, want ErrOverQuota", err)
	}
	if _, err := h.svc.End(ctx, acmeTest, parseEnd(t, `{"call_id":"call_q1","customer_ref":"cust_q"}`), ""); !errors.Is(err, callcontext.ErrOverQuota) {
		t.Errorf("End(call_q1) over a quota of 2: error %v, want ErrOverQuota", err)
	}
	if r, err := h.svc.Start(ctx, acmeTest, parseStart(t, `{"call_id":"call_q1","ani":"+14155550111"}`), ""); err != nil || !r.Replayed {
		t.Errorf("Start(call_q1) replay over quota = replayed %v, %v; want a replay", r.Replayed, err)
	}
	u, err := h.svc.Usage(ctx, acmeTest)
	if err != nil {
		t.Fatalf("Usage() error %v", err)
	}
	if u.Requests != 2 || u.Quota == nil || *u.Quota != 2 || u.Remaining == nil || *u.Remaining != 0 {
		t.Errorf("Usage() = requests %d, quota %v, remaining %v; want 2, 2, 0", u.Requests, u.Quota, u.Remaining)
	}
	// Prod has its own bucket (unlimited here).
	h.startIn(acmeProd, `{"call_id":"call_q3","ani":"+14155550111"}`)
	// A new month resets the quota.
	h.at(30 * day)
	h.start(`{"call_id":"call_q4","ani":"+14155550111"}`)
}

func testStandaloneEnd(t *testing.T, s Store) {
	h := newHarness(t, s, nil)
	h.start(`{"call_id":"call_m1","identity_hints":{"ani":"+14155550171"},"telco":{"line_type":"mobile"}}`)
	h.end(`{"call_id":"call_m1","customer_ref":"cust_mobile","variables":{"name":"Mo"}}`)
	h.end(`{"call_id":"call_l1","customer_ref":"cust_land","variables":{"name":"Lu"},"identity_hints":{"ani":"+14155550172"}}`)

	h.at(time.Hour)
	// The mobile line's remembered type makes it a reuse (0.55).
	end := h.end(`{"call_id":"call_m2","identity_hints":{"ani":"+14155550171"},"intent":"x"}`)
	if end.CustomerRef != "cust_mobile" || end.Billable || end.CallStart != nil || end.DurationSeconds != 0 {
		t.Errorf("standalone end on a reuse match: customer_ref %q, billable %v, call_start %v, duration %d; want cust_mobile, false, null, 0",
			end.CustomerRef, end.Billable, end.CallStart, end.DurationSeconds)
	}
	// The other line has no known type: 0.45 is only confirm, so a new customer.
	end = h.end(`{"call_id":"call_l2","identity_hints":{"ani":"+14155550172"},"intent":"x"}`)
	if end.CustomerRef == "cust_land" || !strings.HasPrefix(end.CustomerRef, "cust_") || !end.Billable {
		t.Errorf("standalone end on a confirm match: customer_ref %q, billable %v; want a new cust_ ref, true", end.CustomerRef, end.Billable)
	}
	if v := h.customer("cust_land"); len(v.OpenIntents) != 0 {
		t.Errorf("Customer(cust_land).OpenIntents = %+v, want none (the end went to a new customer)", v.OpenIntents)
	}
	// Without a start, a customer_ref or hints there is nobody to save to.
	_, err := h.svc.End(context.Background(), acmeTest, parseEnd(t, `{"call_id":"call_n1","intent":"x"}`), "")
	var verr *callapi.ValidationError
	if !errors.As(err, &verr) {
		t.Errorf("End(no start, no customer_ref, no hints) error %v, want a *callapi.ValidationError", err)
	}
}

func testIntents(t *testing.T, s Store) {
	h := newHarness(t, s, nil)
	for i := range 21 {
		h.at(time.Duration(i) * time.Minute)
		h.end(fmt.Sprintf(`{"call_id":"call_%02d","customer_ref":"cust_i","intent":"topic_%02d","intent_status":"open"}`, i, i))
	}
	h.at(time.Hour)
	h.end(`{"call_id":"call_a","customer_ref":"cust_i","intent":"topic_20","intent_status":"open"}`)
	h.end(`{"call_id":"call_b","customer_ref":"cust_i","intent":"topic_05","intent_status":"resolved"}`)
	v := h.customer("cust_i")
	var open []string
	for _, in := range v.OpenIntents {
		open = append(open, fmt.Sprintf("%s×%d", in.Intent, in.AttemptCount))
	}
	var closed []string
	for _, in := range v.ClosedIntents {
		closed = append(closed, fmt.Sprintf("%s %s×%d", in.Intent, in.Status, in.AttemptCount))
	}
	var wantOpen []string
	for i := 1; i <= 20; i++ {
		if i == 5 {
			continue
		}
		n := 1
		if i == 20 {
			n = 2
		}
		wantOpen = append(wantOpen, fmt.Sprintf("topic_%02d×%d", i, n))
	}
	if diff := cmp.Diff(wantOpen, open); diff != "" {
		t.Errorf("Customer(cust_i) open intents after 21 opened, one counted twice, one resolved: diff (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"topic_00 abandoned×1", "topic_05 resolved×1"}, closed); diff != "" {
		t.Errorf("Customer(cust_i) closed intents: diff (-want +got):\n%s", diff)
	}

	// An intent open for 90 days without a call is closed as abandoned;
	// a live variable keeps the customer.
	h.end(`{"call_id":"call_c","customer_ref":"cust_i","variables":{"name":"Ida"},"variable_ttl_seconds":7776000}`)
	h.at(90*day + 30*time.Minute)
	v = h.customer("cust_i")
	open = nil
	for _, in := range v.OpenIntents {
		open = append(open, fmt.Sprintf("%s×%d", in.Intent, in.AttemptCount))
	}
	if diff := cmp.Diff([]string{"topic_20×2"}, open); diff != "" {
		t.Errorf("Customer(cust_i) open intents 90 days later: diff (-want +got):\n%s", diff)
	}
	statuses := map[string]int{}
	for _, in := range v.ClosedIntents {
		statuses[in.Status]++
		if in.Intent == "topic_00" {
			t.Errorf("Customer(cust_i) 90 days later still holds topic_00, closed at %s, in history", in.ClosedAt)
		}
		if in.Intent == "topic_19" {
			if want := callapi.Timestamp(t0.Add(19*time.Minute + 90*day)); in.ClosedAt != want {
				t.Errorf("Customer(cust_i) topic_19 closed_at %s, want %s (90 days after its last call)", in.ClosedAt, want)
			}
		}
	}
	// topic_00, closed 90 days ago, has left the history.
	if diff := cmp.Diff(map[string]int{"abandoned": 18, "resolved": 1}, statuses); diff != "" {
		t.Errorf("Customer(cust_i) closed intents by status 90 days later: diff (-want +got):\n%s", diff)
	}
}

// GET /v1/calls shows how a call ended: the network's status and duration
// once it completed, else "ended" at the end's time.
func testCallOutcome(t *testing.T, s Store) {
	h := newHarness(t, s, nil)
	outcome := func(id string) (status string, seconds int64) {
		t.Helper()
		raw, err := callJSON(h.svc, acmeTest, id)
		var v struct {
			Status          string `json:"status"`
			CallEnd         string `json:"call_end"`
			DurationSeconds *int64 `json:"duration_seconds"`
		}
		if err != nil || json.Unmarshal(raw, &v) != nil {
			t.Fatalf("Call(%s) = %s, %v", id, raw, err)
		}
		if (v.Status == "") != (v.DurationSeconds == nil) || (v.Status == "") != (v.CallEnd == "") {
			t.Errorf("Call(%s) = %s: want status, call_end and duration_seconds together", id, raw)
		}
		if v.DurationSeconds == nil {
			return v.Status, -1
		}
		return v.Status, *v.DurationSeconds
	}
	h.start(`{"call_id":"o1","identity_hints":{"ani":"+14155550186"}}`)
	if st, d := outcome("o1"); st != "" || d != -1 {
		t.Errorf("a call in progress: %q %d, want no outcome", st, d)
	}
	h.at(90 * time.Second)
	h.end(`{"call_id":"o1","customer_ref":"cust_oz"}`)
	if st, d := outcome("o1"); st != "ended" || d != 90 {
		t.Errorf("an ended call: %q %d, want ended after 90 s", st, d)
	}
	h.at(5 * time.Minute)
	if err := h.svc.Complete(context.Background(), acmeTest, callcontext.Completion{CallID: "o1", Status: "completed", Duration: 301}); err != nil {
		t.Fatal(err)
	}
	if st, d := outcome("o1"); st != "completed" || d != 301 {
		t.Errorf("then completed: %q %d, want completed after Twilio's 301 s", st, d)
	}
	h.start(`{"call_id":"o2","identity_hints":{"ani":"+14155550187"}}`)
	h.at(6 * time.Minute)
	if err := h.svc.Complete(context.Background(), acmeTest, callcontext.Completion{CallID: "o2", Status: "no-answer", Duration: -1}); err != nil {
		t.Fatal(err)
	}
	if st, d := outcome("o2"); st != "no-answer" || d != 60 {
		t.Errorf("no answer without CallDuration: %q %d, want no-answer after 60 s (measured)", st, d)
	}
	// A completion applied late (from the outbox, after a store outage)
	// keeps the time its callback arrived, for the record and the link.
	h.start(`{"call_id":"o3","identity_hints":{"ani":"+14155550188"}}`)
	h.at(40 * time.Minute)
	arrived := t0.Add(7 * time.Minute)
	if err := h.svc.Complete(context.Background(), acmeTest, callcontext.Completion{CallID: "o3", Status: "completed", Duration: 45, At: arrived}); err != nil {
		t.Fatal(err)
	}
	call, err := h.svc.Call(context.Background(), acmeTest, "o3")
	rec := call.Record
	if err != nil || !rec.Completed.Equal(arrived) {
		t.Errorf("late completion recorded at %v (%v), want %v, when the callback arrived", rec.Completed, err, arrived)
	}
	got, err := h.svc.Customer(context.Background(), acmeTest, rec.CustomerRef)
	if err != nil || got.LastCallAt == nil || *got.LastCallAt != callapi.Timestamp(arrived) {
		t.Errorf("late completion's customer = %+v, %v; want it linked as of %v", got, err, arrived)
	}
}

// A completed call shorter than the minimum (a robocall, a misdial) was no
// conversation: it records its end but links nothing and creates nobody.
func testShortCallLinksNothing(t *testing.T, s Store) {
	h := newHarness(t, s, nil)
	for id, seconds := range map[string]int64{"sc1": 2, "sc2": 30} {
		r, _ := h.start(`{"call_id":"` + id + `","identity_hints":{"ani":"+141555502` + id[2:] + `0"}}`)
		h.at(time.Duration(seconds) * time.Second)
		if err := h.svc.Complete(context.Background(), acmeTest, callcontext.Completion{CallID: id, Status: callcontext.StatusCompleted, Duration: seconds}); err != nil {
			t.Fatal(err)
		}
		_, err := h.svc.Customer(context.Background(), acmeTest, r.CustomerRef)
		if linked := err == nil; linked != (seconds >= 5) {
			t.Errorf("a %d s completed call: customer %s exists %v, want %v", seconds, r.CustomerRef, linked, seconds >= 5)
		}
		h.at(0)
	}
}

// Every start, end and confirm answer is counted in its hour's tallies by
// the write that stores it, so the dashboard's figures are the same on
// every instance; replays count nothing; the summary of 30 days reads them.
func testTallies(t *testing.T, s Store) {
	h, _ := newObservedHarness(t, s)
	ctx := context.Background()
	h.start(`{"call_id":"y1","identity_hints":{"ani":"+14155550161"},"telco":{"line_type":"mobile"}}`)
	h.end(`{"call_id":"y1","customer_ref":"cust_yu","intent":"billing","intent_status":"open","variables":{"name":"Yu"}}`)
	if _, err := h.svc.End(ctx, acmeTest, parseEnd(t, `{"call_id":"y1","customer_ref":"cust_yu","intent":"billing","intent_status":"open","variables":{"name":"Yu"}}`), ""); err != nil {
		t.Fatal(err) // a replay: counted nowhere
	}
	h.at(2*time.Hour + 5*time.Minute)
	h.start(`{"call_id":"y2","identity_hints":{"ani":"+14155550161"},"telco":{"line_type":"mobile"}}`) // reuse
	h.end(`{"call_id":"y3","customer_ref":"cust_yu","intent":"billing","intent_status":"resolved"}`)   // no start
	// A confirm-tier call answered no.
	h.start(`{"call_id":"y4","identity_hints":{"ani":"+14155550162"}}`)
	h.end(`{"call_id":"y4","customer_ref":"cust_zo","variables":{"name":"Zo"}}`)
	h.start(`{"call_id":"y5","identity_hints":{"ani":"+14155550162"}}`)
	if _, err := h.svc.Confirm(ctx, acmeTest, "y5", callcontext.AnswerNo); err != nil {
		t.Fatal(err)
	}

	hour := func(d time.Duration) time.Time { return t0.Add(d).Truncate(time.Hour) }
	got, err := s.Tallies(ctx, acmeTest, hour(-time.Hour), hour(3*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	want := []storage.HourTally{
		{Hour: hour(0), Counts: map[string]int64{"s/ignore/1/0": 1, "e/1/0/1/opened": 1}},
		{Hour: hour(2 * time.Hour), Counts: map[string]int64{
			"s/reuse/0/5": 1, "e/0/1/0/resolved": 1, "s/ignore/1/0": 1, "e/1/0/1/-": 1, "s/confirm/0/4": 1, "a/no": 1}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Tallies: diff (-want +got):\n%s", diff)
	}
	if got, err := s.Tallies(ctx, acmeTest, hour(time.Hour), hour(time.Hour)); err != nil || len(got) != 0 {
		t.Errorf("Tallies of a quiet hour = %v, %v; want none", got, err)
	}
	if got, err := s.Tallies(ctx, acmeProd, hour(-time.Hour), hour(3*time.Hour)); err != nil || len(got) != 0 {
		t.Errorf("Tallies of another scope = %v, %v; want none", got, err)
	}

	sum, err := h.svc.Summary(ctx, acmeTest)
	if err != nil {
		t.Fatal(err)
	}
	if sum.StartsTotal() != 4 || sum.Starts[identity.Reuse] != 1 || sum.Calls() != 5 || sum.Billable != 2 || sum.NonBillable != 3 ||
		sum.Ends != 3 || sum.Created != 2 || sum.Intents[tally.IntentResolved] != 1 || sum.Answers[string(callcontext.AnswerNo)] != 1 ||
		sum.CallsByHour[23] != 4 || sum.CallsByHour[21] != 1 || sum.CallsByDay[29] != 5 {
		t.Errorf("Summary = %+v; want 4 starts (1 reuse), 5 calls (2 billable), 3 ends (2 created), 1 resolved, 1 no, by hour 1 then 4", sum)
	}
}

// halfCommit is a store whose next completion commits the customers but
// not the call's completion, then fails: a store failure past the
// customer's write, which the caller's retry meets.
type halfCommit struct {
	callcontext.Store
	fail bool
}

func (h *halfCommit) CommitEnd(ctx context.Context, sc callcontext.Scope, e storage.EndCommit) error {
	if !e.Completion || !h.fail {
		return h.Store.CommitEnd(ctx, sc, e)
	}
	h.fail = false
	before, err := h.Store.Call(ctx, sc, e.Call.ID)
	if err != nil {
		return err
	}
	e.Call = before // the call record as it was: not completed
	if err := h.Store.CommitEnd(ctx, sc, e); err != nil {
		return err
	}
	return fmt.Errorf("commit completion: %w", callcontext.ErrUnavailable)
}

// A completion retried after a failure past the customer's write counts
// nothing twice, and still records what it linked; one applied late never
// moves the link's or the customer's times back.
func testCompletionRetried(t *testing.T, s Store) {
	hc := &halfCommit{Store: s}
	h := newHarness(t, hc, nil)
	ctx := context.Background()
	const mobile = `"identity_hints":{"ani":"+14155550151"},"telco":{"line_type":"mobile","attestation":"A"}`
	for i, id := range []string{"r1", "r2"} {
		h.at(time.Duration(i) * time.Hour)
		h.start(`{"call_id":"` + id + `",` + mobile + `}`)
		hc.fail = i == 1 // the second call's completion half fails once
		c := callcontext.Completion{CallID: id, Status: callcontext.StatusCompleted, Duration: 60, At: t0.Add(time.Duration(i)*time.Hour + time.Minute)}
		err := h.svc.Complete(ctx, acmeTest, c)
		if i == 1 {
			if !errors.Is(err, callcontext.ErrUnavailable) {
				t.Fatalf("the half-failed completion = %v, want unavailable", err)
			}
			err = h.svc.Complete(ctx, acmeTest, c) // the retry (Twilio's, or the outbox's)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	call, err := h.svc.Call(ctx, acmeTest, "r1")
	rec := call.Record
	if err != nil || rec.CompletedRef == "" || !rec.CompletionCreated {
		t.Fatalf("r1 = %+v, %v; want it to have created and linked its customer", rec, err)
	}
	got, _ := s.Customers(ctx, acmeTest, []string{rec.CompletedRef})
	r := got[rec.CompletedRef]
	if l := r.ANIs["+14155550151"]; l.Calls != 2 || l.Attested != 2 {
		t.Errorf("link after 2 calls, one completion retried = calls %d attested %d, want 2 and 2", l.Calls, l.Attested)
	}
	// A completion of an earlier call applied after a later one: the times
	// stay the later call's.
	h.at(3 * time.Hour)
	h.start(`{"call_id":"r3",` + mobile + `}`)
	if err := h.svc.Complete(ctx, acmeTest, callcontext.Completion{CallID: "r3", Status: callcontext.StatusCompleted, Duration: 60, At: t0.Add(3*time.Hour + time.Minute)}); err != nil {
		t.Fatal(err)
	}
	h.start(`{"call_id":"r0",` + mobile + `}`)
	if err := h.svc.Complete(ctx, acmeTest, callcontext.Completion{CallID: "r0", Status: callcontext.StatusCompleted, Duration: 60, At: t0.Add(90 * time.Minute)}); err != nil {
		t.Fatal(err)
	}
	got, _ = s.Customers(ctx, acmeTest, []string{rec.CompletedRef})
	if r := got[rec.CompletedRef]; !r.LastCall.Equal(t0.Add(3*time.Hour+time.Minute)) || !r.ANIs["+14155550151"].LastCall.Equal(t0.Add(3*time.Hour+time.Minute)) {
		t.Errorf("after a late completion: last call %v, link last call %v; want the later call's %v", r.LastCall, r.ANIs["+14155550151"].LastCall, t0.Add(3*time.Hour+time.Minute))
	}
}

// callJSON is a call's start as GET /v1/calls/{call_id} answers it.
func callJSON(svc *callcontext.Service, sc callcontext.Scope, callID string) ([]byte, error) {
	call, err := svc.Call(context.Background(), sc, callID)
	if err != nil {
		return nil, err
	}
	if !call.Started {
		return nil, callcontext.ErrNotFound
	}
	return call.JSON()
}
