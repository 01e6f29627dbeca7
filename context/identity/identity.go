// Package identity scores how likely it is that a caller is a customer on
// file. It is pure: no clock, no I/O. Callers pass everything in Signals.
package identity

import (
	"fmt"
	"strconv"
)

// LineType is the kind of telephone line a number belongs to.
type LineType string

// Line types, as Twilio Lookup and API clients name them.
const (
	Unknown  LineType = "unknown"
	Mobile   LineType = "mobile"
	Landline LineType = "landline"
	VoIP     LineType = "voip"
)

// ParseLineType reports the line type named s and whether s names one.
func ParseLineType(s string) (LineType, bool) {
	switch lt := LineType(s); lt {
	case Unknown, Mobile, Landline, VoIP:
		return lt, true
	}
	return Unknown, false
}

// Attestation is a STIR/SHAKEN verification result.
type Attestation string

// Attestation values. None is also what an absent attestation means.
const (
	AttestA      Attestation = "A"
	AttestB      Attestation = "B"
	AttestC      Attestation = "C"
	AttestFailed Attestation = "failed"
	AttestNone   Attestation = "none"
)

// ParseAttestation reports the attestation named s and whether s names one.
func ParseAttestation(s string) (Attestation, bool) {
	switch a := Attestation(s); a {
	case AttestA, AttestB, AttestC, AttestFailed, AttestNone:
		return a, true
	}
	return AttestNone, false
}

// Level is the coarse band a confidence falls in.
type Level string

// Levels, from most to least sure.
const (
	VeryHigh Level = "very_high"
	High     Level = "high"
	Medium   Level = "medium"
	Low      Level = "low"
)

// Recommendation tells a client what to do with the remembered context.
type Recommendation string

// Recommendations.
const (
	Reuse   Recommendation = "reuse"
	Confirm Recommendation = "confirm"
	Ignore  Recommendation = "ignore"
)

// Signals is what is known about the resolved customer for one call.
type Signals struct {
	ANIMatch           bool     // the caller's ANI is linked to the resolved customer
	LineType           LineType // of the ANI; "" means Unknown
	ANIShared          bool     // the ANI is linked to two or more customers
	ANIConflict        bool     // the ANI points only at other customers
	ExternalIDMatch    bool     // an external id is linked to the resolved customer
	ExternalIDConflict bool     // an external id points at another customer
	CustomerRefMatch   bool     // a customer_ref hint named an existing customer
	Attestation        Attestation
	// DaysSinceLastCall is the whole days since the resolved customer's last
	// call, or a negative number when it has none.
	DaysSinceLastCall int
	// Link is what the resolved customer's link to this ANI has seen; zero
	// for a link with no recorded history.
	Link LinkHistory
	// HistoryChose reports that the line's history set aside a link that
	// "most recent call" alone would have chosen or counted (see Credible).
	HistoryChose bool
}

// LinkHistory is what one (ANI, customer) link has seen over its calls.
type LinkHistory struct {
	Calls    int // calls saved on the link
	Attested int // of those, the ones that came with attestation A or B
	Yes      int // times the caller was asked and confirmed it was this customer
	Disputes int // times the caller said no, or an agent named another customer
	// DaysSilent is the whole days since the last call that taught the
	// link something (a call saved to a guess nobody confirmed does not);
	// negative when unknown.
	DaysSilent int
}

// attested reports whether a carrier vouched for the caller's number.
func attested(a Attestation) bool { return a == AttestA || a == AttestB }

// Unusual reports whether a call's attestation is worse than what the link
// usually brings: a C or none on a number whose calls have mostly come with
// A or B (share in hundredths; 50: at least half). A spoofed number looks
// like this; so does a number ported to a carrier that does not sign.
func (h LinkHistory) Unusual(a Attestation, share int) bool {
	return h.Attested > 0 && 100*h.Attested >= share*h.Calls && (a == AttestC || a == AttestNone)
}

// Unattested reports whether the link was only ever made under worse
// attestation than this call presents (no call on it came with A or B, and
// this one does): a stranger who called first with the number may have
// made it, so it is weak evidence for the number's real owner. A yes on
// such a link does not lift it (the stranger may be the one saying yes);
// a signed call saved on it does.
func (h LinkHistory) Unattested(a Attestation) bool {
	return h.Calls > 0 && h.Attested == 0 && attested(a)
}

// Disputed reports whether the link has been denied more often than
// confirmed.
func (h LinkHistory) Disputed() bool { return h.Disputes > h.Yes }

// Credible reports whether a link fits a call with attestation a under
// t's rules: it was not made only under worse attestation than the call's,
// and the call's is not unusual for it. A line's resolution prefers
// credible links and counts only them as its sharers when it has any. A
// disputed link stays credible: the line may be shared, so it stays a
// candidate, with less weight.
func (t Thresholds) Credible(h LinkHistory, a Attestation) bool {
	return !(t.UnattestedReuse > 0 && h.Unattested(a)) && !(t.UnusualReuse > 0 && h.Unusual(a, t.UsualAttestation))
}

// Weights are the contributions of each signal, in hundredths.
type Weights struct {
	ANIMobile, ANILandline, ANIUnknown, ANIVoIP int
	SharedFactor                                int // percent applied to the ANI contribution on a shared line
	StirFailed, StirA                           int
	ExternalID, CustomerRef                     int
	Recency                                     int
	RecencyDays                                 int // a last call within this many days earns Recency
	// History rules (docs/SCORING.md).
	Disputed    int // taken from the ANI contribution per dispute in excess of confirmations
	Confirmed   int // added to the ANI contribution when confirmations outnumber disputes
	DormantDays int // a link silent this many days cannot reuse on the number alone; 0: no limit
}

// Thresholds are the band boundaries, in hundredths.
type Thresholds struct {
	Reuse, Confirm         int
	VeryHigh, High, Medium int
	// The confidence a reuse on the number alone needs when a history rule
	// applies (docs/SCORING.md): 100, the default, is never, as the number
	// alone cannot reach it; 0 turns the rule off.
	HouseholdReuse  int // a landline or a line of unknown type
	UnusualReuse    int // a call whose attestation is worse than the link's usual
	UnattestedReuse int // a link made only under worse attestation than the call's
	DormantReuse    int // a link silent for Weights.DormantDays
	DisputedReuse   int // a link denied more often than confirmed, on a line not shared
	// UsualAttestation is the share of a link's calls that came with A or
	// B from which a C or none call on it is unusual.
	UsualAttestation int
}

// DefaultWeights are the documented default contributions.
func DefaultWeights() Weights {
	return Weights{
		ANIMobile: 50, ANILandline: 40, ANIUnknown: 40, ANIVoIP: 25,
		SharedFactor: 75, StirFailed: 30, StirA: 5,
		ExternalID: 40, CustomerRef: 50, Recency: 5, RecencyDays: 7,
		Disputed: 10, Confirmed: 5, DormantDays: 50,
	}
}

// DefaultThresholds are the documented default bands.
func DefaultThresholds() Thresholds {
	return Thresholds{Reuse: 50, Confirm: 30, VeryHigh: 90, High: 70, Medium: 50,
		HouseholdReuse: 100, UnusualReuse: 100, UnattestedReuse: 100, DormantReuse: 100, DisputedReuse: 100, UsualAttestation: 50}
}

// Match is the outcome of scoring. Confidence is in hundredths so that no
// float arithmetic lands a score beside a threshold.
type Match struct {
	Confidence     int
	Level          Level
	Recommendation Recommendation
	Sources        []string
}

// Score is the confidence as a number with two decimals, as the API shows it.
func (m Match) Score() float64 { return float64(m.Confidence) / 100 }

// Assess scores the signals with the given weights and thresholds.
func Assess(s Signals, w Weights, t Thresholds) Match {
	m := Match{Sources: []string{}}
	ani := 0
	if s.ANIMatch {
		lt := s.LineType
		if lt == "" {
			lt = Unknown
		}
		ani = aniWeight(lt, w)
		m.Sources = append(m.Sources, "ani:"+string(lt))
		if s.ANIShared {
			ani = roundPercent(ani, w.SharedFactor)
			m.Sources = append(m.Sources, "ani:shared")
		}
		if s.Attestation == AttestFailed {
			ani = max(ani-w.StirFailed, 0)
			m.Sources = append(m.Sources, "stir:failed")
		}
		if s.Attestation == AttestA {
			ani += w.StirA
			m.Sources = append(m.Sources, "stir:A")
		}
		// A dispute on a line now known to be shared is explained by the
		// sharing: another member called.
		switch net := s.Link.Yes - s.Link.Disputes; {
		case net < 0 && !s.ANIShared:
			ani = max(ani+net*w.Disputed, 0)
			m.Sources = append(m.Sources, "ani:disputed")
		case net > 0:
			ani += w.Confirmed
			m.Sources = append(m.Sources, "ani:confirmed")
		}
	}
	if s.ANIConflict {
		m.Sources = append(m.Sources, "ani:conflict")
	}
	c := ani
	if s.ExternalIDMatch {
		c += w.ExternalID
		m.Sources = append(m.Sources, "external_id")
	}
	if s.ExternalIDConflict {
		m.Sources = append(m.Sources, "external_id:conflict")
	}
	if s.CustomerRefMatch {
		c += w.CustomerRef
		m.Sources = append(m.Sources, "customer_ref")
	}
	matched := s.ANIMatch || s.ExternalIDMatch || s.CustomerRefMatch
	if matched && s.DaysSinceLastCall >= 0 && s.DaysSinceLastCall < w.RecencyDays {
		c += w.Recency
		m.Sources = append(m.Sources, "recency:"+strconv.Itoa(max(s.DaysSinceLastCall, 1))+"day")
	}
	m.Confidence = min(max(c, 0), 100)
	m.Level = t.level(m.Confidence)
	m.Recommendation = t.recommend(m.Confidence)
	// A shared line alone cannot tell the household's members apart.
	aniAlone := s.ANIMatch && !s.ExternalIDMatch && !s.CustomerRefMatch
	if s.ANIShared && aniAlone && m.Recommendation == Reuse {
		m.Recommendation = Confirm
	}
	if aniAlone && m.Recommendation == Reuse {
		if source, capped := s.cap(m.Confidence, w, t); capped {
			m.Recommendation = Confirm
			if source != "" {
				m.Sources = append(m.Sources, source)
			}
		}
	}
	if s.HistoryChose && matched {
		m.Sources = append(m.Sources, "ani:history")
	}
	if !matched {
		m = Match{Level: Low, Recommendation: Ignore, Sources: []string{}}
	}
	return m
}

// cap reports whether a history rule keeps a reuse of confidence c on the
// number alone at confirm, and the source that names it ("" when a source
// already does). The first rule that applies is named.
func (s Signals) cap(c int, w Weights, t Thresholds) (string, bool) {
	lt := s.LineType
	rules := []struct {
		applies bool
		need    int
		source  string
	}{
		{s.Link.Disputed() && !s.ANIShared, t.DisputedReuse, ""}, // ani:disputed
		{s.Link.Unusual(s.Attestation, t.UsualAttestation), t.UnusualReuse, "stir:unusual"},
		{s.Link.Unattested(s.Attestation), t.UnattestedReuse, "ani:unattested"},
		{w.DormantDays > 0 && s.Link.DaysSilent >= w.DormantDays, t.DormantReuse, "ani:dormant"},
		{lt == "" || lt == Unknown || lt == Landline, t.HouseholdReuse, "ani:household"},
	}
	for _, r := range rules {
		if r.applies && c < r.need {
			return r.source, true
		}
	}
	return "", false
}

func aniWeight(lt LineType, w Weights) int {
	switch lt {
	case Mobile:
		return w.ANIMobile
	case Landline:
		return w.ANILandline
	case VoIP:
		return w.ANIVoIP
	}
	return w.ANIUnknown
}

// roundPercent returns v×pct/100 rounded half up (v and pct are non-negative).
func roundPercent(v, pct int) int { return (v*pct + 50) / 100 }

func (t Thresholds) level(c int) Level {
	switch {
	case c >= t.VeryHigh:
		return VeryHigh
	case c >= t.High:
		return High
	case c >= t.Medium:
		return Medium
	}
	return Low
}

func (t Thresholds) recommend(c int) Recommendation {
	switch {
	case c >= t.Reuse:
		return Reuse
	case c >= t.Confirm:
		return Confirm
	}
	return Ignore
}

// Hundredths converts a configured fraction such as 0.25 to hundredths.
func Hundredths(f float64) int {
	if f < 0 {
		return -Hundredths(-f)
	}
	return int(f*100 + 0.5)
}

// Apply overrides weights and thresholds by their configuration names
// (ani_mobile, reuse, ...). It reports an unknown name as an error.
func Apply(w *Weights, t *Thresholds, weights, thresholds map[string]float64) error {
	wf := map[string]*int{
		"ani_mobile": &w.ANIMobile, "ani_landline": &w.ANILandline, "ani_unknown": &w.ANIUnknown,
		"ani_voip": &w.ANIVoIP, "ani_shared_factor": &w.SharedFactor, "stir_failed": &w.StirFailed,
		"stir_a": &w.StirA, "external_id": &w.ExternalID, "customer_ref": &w.CustomerRef, "recency": &w.Recency,
		"ani_disputed": &w.Disputed, "ani_confirmed": &w.Confirmed,
	}
	tf := map[string]*int{"reuse": &t.Reuse, "confirm": &t.Confirm, "very_high": &t.VeryHigh, "high": &t.High, "medium": &t.Medium,
		"household_reuse": &t.HouseholdReuse, "unusual_reuse": &t.UnusualReuse, "unattested_reuse": &t.UnattestedReuse,
		"dormant_reuse": &t.DormantReuse, "disputed_reuse": &t.DisputedReuse, "usual_attestation": &t.UsualAttestation}
	days := map[string]*int{"recency_days": &w.RecencyDays, "dormant_days": &w.DormantDays}
	for name, v := range weights {
		if p, ok := days[name]; ok {
			*p = int(v)
			continue
		}
		p, ok := wf[name]
		if !ok {
			return fmt.Errorf("unknown scoring weight %q", name)
		}
		*p = Hundredths(v)
	}
	for name, v := range thresholds {
		p, ok := tf[name]
		if !ok {
			return fmt.Errorf("unknown scoring threshold %q", name)
		}
		*p = Hundredths(v)
	}
	return nil
}
