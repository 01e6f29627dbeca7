package identity

import (
	"slices"
	"testing"
)

func TestAssess(t *testing.T) {
	const none = -1
	tests := []struct {
		name    string
		in      Signals
		conf    int
		level   Level
		rec     Recommendation
		sources []string
	}{
		{"new caller", Signals{DaysSinceLastCall: none}, 0, Low, Ignore, []string{}},
		{"new caller with attestation A", Signals{Attestation: AttestA, DaysSinceLastCall: none}, 0, Low, Ignore, []string{}},
		{"mobile and external id", Signals{ANIMatch: true, LineType: Mobile, ExternalIDMatch: true, DaysSinceLastCall: none},
			90, VeryHigh, Reuse, []string{"ani:mobile", "external_id"}},
		{"mobile only", Signals{ANIMatch: true, LineType: Mobile, DaysSinceLastCall: none}, 50, Medium, Reuse, []string{"ani:mobile"}},
		{"no telco", Signals{ANIMatch: true, DaysSinceLastCall: none}, 40, Low, Confirm, []string{"ani:unknown"}},
		{"landline", Signals{ANIMatch: true, LineType: Landline, DaysSinceLastCall: 30}, 40, Low, Confirm, []string{"ani:landline"}},
		{"voip", Signals{ANIMatch: true, LineType: VoIP, DaysSinceLastCall: none}, 25, Low, Ignore, []string{"ani:voip"}},
		{"shared mobile", Signals{ANIMatch: true, LineType: Mobile, ANIShared: true, DaysSinceLastCall: none},
			38, Low, Confirm, []string{"ani:mobile", "ani:shared"}},
		{"failed attestation", Signals{ANIMatch: true, LineType: Mobile, Attestation: AttestFailed, DaysSinceLastCall: none},
			20, Low, Ignore, []string{"ani:mobile", "stir:failed"}},
		{"failed attestation never below zero", Signals{ANIMatch: true, LineType: VoIP, Attestation: AttestFailed, DaysSinceLastCall: none},
			0, Low, Ignore, []string{"ani:voip", "stir:failed"}},
		{"shared before failed", Signals{ANIMatch: true, LineType: Mobile, ANIShared: true, Attestation: AttestFailed, DaysSinceLastCall: none},
			8, Low, Ignore, []string{"ani:mobile", "ani:shared", "stir:failed"}},
		{"attestation A", Signals{ANIMatch: true, LineType: Mobile, Attestation: AttestA, DaysSinceLastCall: none},
			55, Medium, Reuse, []string{"ani:mobile", "stir:A"}},
		{"attestation A without ANI", Signals{ExternalIDMatch: true, Attestation: AttestA, DaysSinceLastCall: none},
			40, Low, Confirm, []string{"external_id"}},
		{"mobile and external id yesterday", Signals{ANIMatch: true, LineType: Mobile, ExternalIDMatch: true, DaysSinceLastCall: 1},
			95, VeryHigh, Reuse, []string{"ani:mobile", "external_id", "recency:1day"}},
		{"mobile yesterday", Signals{ANIMatch: true, LineType: Mobile, DaysSinceLastCall: 1}, 55, Medium, Reuse, []string{"ani:mobile", "recency:1day"}},
		{"no telco yesterday", Signals{ANIMatch: true, DaysSinceLastCall: 1}, 45, Low, Confirm, []string{"ani:unknown", "recency:1day"}},
		{"shared yesterday", Signals{ANIMatch: true, LineType: Mobile, ANIShared: true, DaysSinceLastCall: 1},
			43, Low, Confirm, []string{"ani:mobile", "ani:shared", "recency:1day"}},
		{"failed yesterday", Signals{ANIMatch: true, LineType: Mobile, Attestation: AttestFailed, DaysSinceLastCall: 1},
			25, Low, Ignore, []string{"ani:mobile", "stir:failed", "recency:1day"}},
		{"same day counts as one day", Signals{ANIMatch: true, LineType: Mobile, DaysSinceLastCall: 0}, 55, Medium, Reuse, []string{"ani:mobile", "recency:1day"}},
		{"six days", Signals{ANIMatch: true, LineType: Mobile, DaysSinceLastCall: 6}, 55, Medium, Reuse, []string{"ani:mobile", "recency:6day"}},
		{"seven days is too old", Signals{ANIMatch: true, LineType: Mobile, DaysSinceLastCall: 7}, 50, Medium, Reuse, []string{"ani:mobile"}},
		{"everything clamps to one", Signals{ANIMatch: true, LineType: Mobile, Attestation: AttestA, ExternalIDMatch: true, CustomerRefMatch: true, DaysSinceLastCall: 1},
			100, VeryHigh, Reuse, []string{"ani:mobile", "stir:A", "external_id", "customer_ref", "recency:1day"}},
		{"external id with ANI conflict", Signals{ExternalIDMatch: true, ANIConflict: true, DaysSinceLastCall: none},
			40, Low, Confirm, []string{"ani:conflict", "external_id"}},
		{"customer ref with external id conflict", Signals{CustomerRefMatch: true, ExternalIDConflict: true, DaysSinceLastCall: none},
			50, Medium, Reuse, []string{"external_id:conflict", "customer_ref"}},
		{"shared line with external id may reuse", Signals{ANIMatch: true, LineType: Mobile, ANIShared: true, ExternalIDMatch: true, DaysSinceLastCall: none},
			78, High, Reuse, []string{"ani:mobile", "ani:shared", "external_id"}},
		{"shared landline with attestation A stays confirm", Signals{ANIMatch: true, LineType: Mobile, ANIShared: true, Attestation: AttestA, DaysSinceLastCall: 1},
			48, Low, Confirm, []string{"ani:mobile", "ani:shared", "stir:A", "recency:1day"}},
	}
	for _, tt := range tests {
		got := Assess(tt.in, DefaultWeights(), DefaultThresholds())
		if got.Confidence != tt.conf || got.Level != tt.level || got.Recommendation != tt.rec || !slices.Equal(got.Sources, tt.sources) {
			t.Errorf("%s: Assess(%+v) = %d %s %s %q, want %d %s %s %q", tt.name, tt.in,
				got.Confidence, got.Level, got.Recommendation, got.Sources, tt.conf, tt.level, tt.rec, tt.sources)
		}
	}
}

func TestSharedCapsReuse(t *testing.T) {
	w := DefaultWeights()
	w.ANIMobile = 90 // 90 × 0.75 = 68: reuse by score, but the line is shared
	got := Assess(Signals{ANIMatch: true, LineType: Mobile, ANIShared: true, DaysSinceLastCall: -1}, w, DefaultThresholds())
	if got.Recommendation != Confirm || got.Confidence != 68 {
		t.Errorf("shared line alone = %d %s, want 68 confirm", got.Confidence, got.Recommendation)
	}
}

func TestApply(t *testing.T) {
	w, th := DefaultWeights(), DefaultThresholds()
	if err := Apply(&w, &th, map[string]float64{"ani_voip": 0.2, "recency_days": 3}, map[string]float64{"reuse": 0.6}); err != nil {
		t.Fatal(err)
	}
	if w.ANIVoIP != 20 || w.RecencyDays != 3 || th.Reuse != 60 {
		t.Errorf("Apply = voip %d, days %d, reuse %d; want 20, 3, 60", w.ANIVoIP, w.RecencyDays, th.Reuse)
	}
	if err := Apply(&w, &th, map[string]float64{"bogus": 1}, nil); err == nil {
		t.Error("Apply(bogus weight) = nil, want an error")
	}
}

func TestHundredths(t *testing.T) {
	for in, want := range map[float64]int{0.29: 29, 0.57: 57, 0.1: 10, 1: 100, 0: 0} {
		if got := Hundredths(in); got != want {
			t.Errorf("Hundredths(%v) = %d, want %d", in, got, want)
		}
	}
}

// TestHistoryRules checks each rule of docs/SCORING.md on its own, against
// the same call without the history that triggers it.
func TestHistoryRules(t *testing.T) {
	const none = -1
	mobileA := func(h LinkHistory) Signals {
		return Signals{ANIMatch: true, LineType: Mobile, Attestation: AttestA, DaysSinceLastCall: none, Link: h}
	}
	withAtt := func(s Signals, a Attestation) Signals { s.Attestation = a; return s }
	usualA := LinkHistory{Calls: 4, Attested: 4, DaysSilent: 3}
	tests := []struct {
		name    string
		in      Signals
		conf    int
		rec     Recommendation
		sources []string
	}{
		{"a number that always came with A, now C", withAtt(mobileA(usualA), AttestC), 50, Confirm, []string{"ani:mobile", "stir:unusual"}},
		{"... now with no attestation", withAtt(mobileA(usualA), AttestNone), 50, Confirm, []string{"ani:mobile", "stir:unusual"}},
		{"... now B is usual enough", withAtt(mobileA(usualA), AttestB), 50, Reuse, []string{"ani:mobile"}},
		{"... now A", mobileA(usualA), 55, Reuse, []string{"ani:mobile", "stir:A"}},
		{"a number mostly unsigned, now none", withAtt(mobileA(LinkHistory{Calls: 5, Attested: 2, DaysSilent: 3}), AttestNone), 50, Reuse, []string{"ani:mobile"}},
		{"a link made only under C, now A", mobileA(LinkHistory{Calls: 2, DaysSilent: 3}), 55, Confirm, []string{"ani:mobile", "stir:A", "ani:unattested"}},
		{"... confirmed once, now A", mobileA(LinkHistory{Calls: 2, Yes: 1, DaysSilent: 3}), 60, Confirm, []string{"ani:mobile", "stir:A", "ani:confirmed", "ani:unattested"}},
		{"... once a signed call was saved on it", mobileA(LinkHistory{Calls: 3, Attested: 1, DaysSilent: 3}), 55, Reuse, []string{"ani:mobile", "stir:A"}},
		{"... now C", withAtt(mobileA(LinkHistory{Calls: 2, DaysSilent: 3}), AttestC), 50, Reuse, []string{"ani:mobile"}},
		{"a disputed link", mobileA(LinkHistory{Calls: 3, Attested: 3, Disputes: 1}), 45, Confirm, []string{"ani:mobile", "stir:A", "ani:disputed"}},
		{"a disputed link called yesterday stays at confirm", Signals{ANIMatch: true, LineType: Mobile, Attestation: AttestA, DaysSinceLastCall: 1,
			Link: LinkHistory{Calls: 3, Attested: 3, Disputes: 1}}, 50, Confirm, []string{"ani:mobile", "stir:A", "ani:disputed", "recency:1day"}},
		{"twice disputed", mobileA(LinkHistory{Calls: 3, Attested: 3, Disputes: 2}), 35, Confirm, []string{"ani:mobile", "stir:A", "ani:disputed"}},
		{"three times disputed", mobileA(LinkHistory{Calls: 3, Attested: 3, Disputes: 3}), 25, Ignore, []string{"ani:mobile", "stir:A", "ani:disputed"}},
		{"a dispute on a line now shared is the sharing", Signals{ANIMatch: true, LineType: Mobile, ANIShared: true, Attestation: AttestA, DaysSinceLastCall: none,
			Link: LinkHistory{Calls: 3, Attested: 3, Disputes: 1}}, 43, Confirm, []string{"ani:mobile", "ani:shared", "stir:A"}},
		{"disputed, then confirmed as often", mobileA(LinkHistory{Calls: 3, Attested: 3, Disputes: 1, Yes: 1}), 55, Reuse, []string{"ani:mobile", "stir:A"}},
		{"a link silent 50 days", mobileA(LinkHistory{Calls: 3, Attested: 3, DaysSilent: 50}), 55, Confirm, []string{"ani:mobile", "stir:A", "ani:dormant"}},
		{"... 49 days", mobileA(LinkHistory{Calls: 3, Attested: 3, DaysSilent: 49}), 55, Reuse, []string{"ani:mobile", "stir:A"}},
		{"a dormant link with a CRM id", Signals{ANIMatch: true, LineType: Mobile, Attestation: AttestA, ExternalIDMatch: true, DaysSinceLastCall: none,
			Link: LinkHistory{Calls: 3, Attested: 3, DaysSilent: 60}}, 95, Reuse, []string{"ani:mobile", "stir:A", "external_id"}},
		{"a landline alone at 0.5", Signals{ANIMatch: true, LineType: Landline, Attestation: AttestA, DaysSinceLastCall: 2, Link: LinkHistory{Calls: 1, Attested: 1}},
			50, Confirm, []string{"ani:landline", "stir:A", "recency:2day", "ani:household"}},
		{"a line of unknown type alone", Signals{ANIMatch: true, Attestation: AttestA, DaysSinceLastCall: 2, Link: LinkHistory{Calls: 1, Attested: 1}},
			50, Confirm, []string{"ani:unknown", "stir:A", "recency:2day", "ani:household"}},
		{"a landline with a customer_ref", Signals{ANIMatch: true, LineType: Landline, CustomerRefMatch: true, DaysSinceLastCall: 2},
			95, Reuse, []string{"ani:landline", "customer_ref", "recency:2day"}},
		{"history chose among the line's links", Signals{ANIMatch: true, LineType: Mobile, Attestation: AttestA, DaysSinceLastCall: none,
			Link: LinkHistory{Calls: 3, Attested: 3}, HistoryChose: true}, 55, Reuse, []string{"ani:mobile", "stir:A", "ani:history"}},
	}
	for _, tt := range tests {
		got := Assess(tt.in, DefaultWeights(), DefaultThresholds())
		if got.Confidence != tt.conf || got.Recommendation != tt.rec || !slices.Equal(got.Sources, tt.sources) {
			t.Errorf("%s: Assess = %d %s %q, want %d %s %q", tt.name, got.Confidence, got.Recommendation, got.Sources, tt.conf, tt.rec, tt.sources)
		}
	}
}

func TestHistoryRulesConfigurable(t *testing.T) {
	w, th := DefaultWeights(), DefaultThresholds()
	err := Apply(&w, &th, map[string]float64{"ani_disputed": 0.1, "ani_confirmed": 0, "dormant_days": 0},
		map[string]float64{"household_reuse": 0.5, "usual_attestation": 0.9})
	if err != nil {
		t.Fatal(err)
	}
	landline := Signals{ANIMatch: true, LineType: Landline, Attestation: AttestA, DaysSinceLastCall: 2, Link: LinkHistory{Calls: 3, Attested: 2, Disputes: 1, Yes: 0, DaysSilent: 200}}
	got := Assess(landline, w, th)
	// 40 + 5 - 10 (one dispute) + 5 recency = 40: confirm by score, and no cap is named.
	if got.Confidence != 40 || got.Recommendation != Confirm || slices.Contains(got.Sources, "ani:household") {
		t.Errorf("Assess(landline) = %d %s %q, want 40 confirm without ani:household", got.Confidence, got.Recommendation, got.Sources)
	}
	landline.Link.Disputes, landline.Attestation = 0, AttestNone // 2 of 3 attested is under 0.9: none is not unusual
	if got := Assess(landline, w, th); got.Recommendation != Confirm || got.Confidence != 45 {
		t.Errorf("Assess(landline, none) = %d %s %q, want 45 confirm", got.Confidence, got.Recommendation, got.Sources)
	}
	landline.Attestation = AttestA // 50: reuse once household_reuse allows it, dormancy off
	if got := Assess(landline, w, th); got.Recommendation != Reuse {
		t.Errorf("Assess(landline, A) = %d %s %q, want reuse", got.Confidence, got.Recommendation, got.Sources)
	}
}

// TestHistoryRulesOff checks that each rule's reuse threshold at 0 turns
// the rule off, and only that rule.
func TestHistoryRulesOff(t *testing.T) {
	mobile := func(a Attestation, h LinkHistory) Signals {
		return Signals{ANIMatch: true, LineType: Mobile, Attestation: a, DaysSinceLastCall: -1, Link: h}
	}
	tests := []struct {
		threshold string
		in        Signals
	}{
		{"unusual_reuse", mobile(AttestC, LinkHistory{Calls: 2, Attested: 2})},
		{"unattested_reuse", mobile(AttestA, LinkHistory{Calls: 2})},
		{"dormant_reuse", mobile(AttestA, LinkHistory{Calls: 2, Attested: 2, DaysSilent: 60})},
		{"disputed_reuse", Signals{ANIMatch: true, LineType: Mobile, Attestation: AttestA, DaysSinceLastCall: 1, Link: LinkHistory{Calls: 2, Attested: 2, Disputes: 1}}},
		{"household_reuse", Signals{ANIMatch: true, LineType: Landline, Attestation: AttestA, DaysSinceLastCall: 1}},
	}
	for _, tt := range tests {
		if got := Assess(tt.in, DefaultWeights(), DefaultThresholds()); got.Recommendation != Confirm {
			t.Errorf("%s on: %d %s %q, want confirm", tt.threshold, got.Confidence, got.Recommendation, got.Sources)
		}
		w, th := DefaultWeights(), DefaultThresholds()
		if err := Apply(&w, &th, nil, map[string]float64{tt.threshold: 0}); err != nil {
			t.Fatal(err)
		}
		if got := Assess(tt.in, w, th); got.Recommendation != Reuse {
			t.Errorf("%s off: %d %s %q, want reuse", tt.threshold, got.Confidence, got.Recommendation, got.Sources)
		}
	}
}
