// Package simulate generates a deterministic world of callers and a call
// history, plays it through the service's HTTP API (REST and the Twilio
// voice webhooks) and measures, per segment of callers, how often the
// service recognizes the right person and how often it names the wrong one.
//
// It talks to the service only through the *http.Client it is given, so
// the same code plays against a handler in process (with an injected clock,
// months in seconds) and against a running server. Everything random comes
// from PCG streams seeded by Params.Seed: the same seed gives the same
// world, the same requests and, in process, the same Report.
package simulate

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"time"
)

// Segment is the kind of caller a person is; each is reported on its own.
type Segment string

// The segments, in report order.
const (
	Mobile        Segment = "mobile"
	Landline      Segment = "landline"
	VoIP          Segment = "voip"
	Household     Segment = "household"
	RecycledLong  Segment = "recycled_90d+"
	RecycledShort Segment = "recycled_45-89d"
	Ported        Segment = "ported"
	Withheld      Segment = "withheld"
	Spoofer       Segment = "spoofer"
)

// Segments lists every segment in report order.
func Segments() []Segment {
	return []Segment{Mobile, Landline, VoIP, Household, RecycledLong, RecycledShort, Ported, Withheld, Spoofer}
}

// share is the share of people in segment s (spoofers included: they are
// people who call too). Mobile takes what the others leave.
func (s Segment) share() float64 {
	switch s {
	case Landline, Household:
		return 0.10
	case VoIP:
		return 0.06
	case RecycledLong, RecycledShort:
		return 0.025
	case Ported:
		return 0.05
	case Withheld:
		return 0.04
	case Spoofer:
		return 0.03
	}
	return 0
}

// Params shape the world.
type Params struct {
	Seed       uint64
	People     int       // people who call, spoofers included (--customers)
	Calls      int       // calls in the whole history (--calls)
	Days       int       // length of the history
	VoiceShare float64   // share of calls through the Twilio voice webhooks
	Start      time.Time // midnight UTC of the history's first day
}

// DefaultStart is the first day of the default history, a Monday.
func DefaultStart() time.Time { return time.Date(2025, 1, 6, 0, 0, 0, 0, time.UTC) }

// lineKind is a line type as telcos and Lookup name it in this world.
type lineKind string

const (
	kindMobile   lineKind = "mobile"
	kindLandline lineKind = "landline"
	kindVoIP     lineKind = "voip"
)

// profile is how a number's calls are attested (STIR/SHAKEN).
type profile int

const (
	attestMobile   profile = iota // A ~90 %, B ~10 %
	attestLandline                // a carrier that signs: A ~70 %, B ~30 %
	attestNever                   // a carrier that never signs: none
	attestVoIP                    // B 40 %, C 40 %, none 20 %
	attestSpoof                   // C 40 %, none 40 %, failed 20 %
)

// draw picks one call's attestation.
func (p profile) draw(r *rand.Rand) string {
	x := r.Float64()
	switch p {
	case attestMobile:
		return pick(x, 0.9, "A", "B")
	case attestLandline:
		return pick(x, 0.7, "A", "B")
	case attestVoIP:
		return pick3(x, 0.4, 0.8, "B", "C", "none")
	case attestSpoof:
		return pick3(x, 0.4, 0.8, "C", "none", "failed")
	}
	return "none"
}

func pick(x, p float64, a, b string) string {
	if x < p {
		return a
	}
	return b
}

func pick3(x, p, q float64, a, b, c string) string {
	if x < p {
		return a
	}
	return pick(x, q, b, c)
}

// era is a line a person calls from, from a day on.
type era struct {
	from    float64 // day of the history
	number  string
	kind    lineKind
	profile profile
}

// Person is one caller of the simulated business.
type Person struct {
	ID      int
	Name    string // first name, what agents save as the "name" variable
	Segment Segment
	CRM     string // CRM id, "" for none
	eras    []era  // empty for withheld callers
	from    float64
	to      float64 // the window the person calls in, in days
	minimum int     // calls at least (a returning caller needs two)
	weight  float64 // share of the calls beyond the minimum
	victim  *Person // a spoofer's target
	oldLine bool    // a recycled number's first owner: victims are not chosen among them
}

// lineAt is the person's line on day d.
func (p *Person) lineAt(d float64) era {
	e := p.eras[0]
	for _, x := range p.eras[1:] {
		if d >= x.from {
			e = x
		}
	}
	return e
}

// World is the generated people, their numbers and their calls, in time
// order. It is immutable once made.
type World struct {
	Params  Params
	People  []*Person
	calls   []call
	numbers map[string][]era // every era of every number, for Lookup's truth
}

// NewWorld generates the world of p. It is deterministic in p.
func NewWorld(p Params) (*World, error) {
	if p.People < 20 || p.Calls < p.People || p.Days < 150 {
		return nil, fmt.Errorf("simulate: want at least 20 people, as many calls as people and 150 days (recycled numbers age 90 days or more)")
	}
	if p.Start.IsZero() {
		p.Start = DefaultStart()
	}
	g := newGenerator(p)
	w := &World{Params: p, numbers: map[string][]era{}}
	w.People = g.people()
	w.calls = g.schedule(w.People)
	for _, per := range w.People {
		for _, e := range per.eras {
			if per.Segment != Spoofer {
				w.numbers[e.number] = append(w.numbers[e.number], e)
			}
		}
	}
	return w, nil
}

// kindAt is the line type Lookup gives for number on day d, and whether
// the number exists.
func (w *World) kindAt(number string, d float64) (lineKind, bool) {
	eras, ok := w.numbers[number]
	if !ok {
		return "", false
	}
	k := eras[0].kind
	for _, e := range eras[1:] {
		if d >= e.from {
			k = e.kind
		}
	}
	return k, true
}

// day is the time t as a day of the history.
func (w *World) day(t time.Time) float64 {
	return t.Sub(w.Params.Start).Hours() / 24
}

func splitFields(s string) []string { return strings.Fields(s) }
