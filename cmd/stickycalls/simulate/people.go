package simulate

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
)

// firstNames are what agents save as a caller's name.
const firstNames = `Olivia Liam Emma Noah Ava Oliver Sophia Elijah Isabella James Mia William
Amelia Benjamin Harper Lucas Evelyn Henry Abigail Theodore Emily Jack Ella Levi Elizabeth
Alexander Camila Jackson Luna Mateo Sofia Daniel Avery Michael Mila Mason Aria Sebastian
Scarlett Ethan Penelope Logan Layla Owen Chloe Samuel Victoria Jacob Madison Asher Eleanor
Aiden Grace John Nora Joseph Riley Wyatt Zoey David Hannah Leo Hazel Luke Lily Julian Ellie`

// generator draws the world. Its one random stream makes it deterministic.
type generator struct {
	r     *rand.Rand
	p     Params
	names []string
	used  map[string]bool // numbers handed out
}

func newGenerator(p Params) *generator {
	return &generator{r: rand.New(rand.NewPCG(p.Seed, 1)), p: p, names: strings.Fields(firstNames), used: map[string]bool{}}
}

// people draws everyone, segment by segment, in a fixed order.
func (g *generator) people() []*Person {
	var out []*Person
	add := func(s Segment) *Person {
		per := &Person{ID: len(out), Name: g.names[g.r.IntN(len(g.names))], Segment: s}
		out = append(out, per)
		return per
	}
	counts := g.counts()
	for s, n := range counts {
		switch Segments()[s] {
		case Household:
			g.households(n, add)
		case RecycledLong, RecycledShort:
			g.recycled(n, Segments()[s], add)
		default:
			for range n {
				g.single(add(Segments()[s]))
			}
		}
	}
	return out
}

// counts is how many people each segment has, in Segments order. Every
// recycled number has a first owner too, counted in mobile.
func (g *generator) counts() []int {
	out := make([]int, len(Segments()))
	rest := g.p.People
	for i, s := range Segments() {
		out[i] = int(math.Round(s.share() * float64(g.p.People)))
		rest -= out[i]
		if s == RecycledLong || s == RecycledShort {
			rest -= out[i]
		}
	}
	out[0] = max(rest, 1)
	return out
}

// single draws a person with a line (or none) of their own.
func (g *generator) single(per *Person) {
	d := float64(g.p.Days)
	g.habit(per)
	per.from, per.to = g.r.Float64()*0.85*d, d
	if per.minimum == 1 {
		per.from = g.r.Float64() * d
	}
	switch per.Segment {
	case Mobile:
		per.eras = []era{g.line(kindMobile, 0)}
	case Landline:
		per.eras = []era{g.line(kindLandline, 0)}
	case VoIP:
		per.eras = []era{g.line(kindVoIP, 0)}
	case Ported:
		g.ported(per)
	case Withheld:
		per.CRM = crmOf(per)
	case Spoofer:
		per.minimum, per.weight = 1+g.r.IntN(3), 0
		return
	}
	if per.CRM == "" && g.r.Float64() < 0.3 {
		per.CRM = crmOf(per)
	}
}

// ported moves a person's number to a carrier of another line type halfway
// through: a landline ported to a mobile, or a mobile to a VoIP service.
func (g *generator) ported(per *Person) {
	d := float64(g.p.Days)
	per.from = g.r.Float64() * 0.5 * d
	per.minimum = max(per.minimum, 3)
	port := per.from + (0.3+0.4*g.r.Float64())*(d-per.from)
	first, then := kindLandline, kindMobile
	if g.r.IntN(2) == 1 {
		first, then = kindMobile, kindVoIP
	}
	e := g.line(first, 0)
	per.eras = []era{e, {from: port, number: e.number, kind: then, profile: profileOf(then, g.r)}}
}

// households draws shared landlines until n members have one: 2 to 4
// people each, the first calling early, the others joining over time.
func (g *generator) households(n int, add func(Segment) *Person) {
	d := float64(g.p.Days)
	for n > 0 {
		size := min(2+g.r.IntN(3), n)
		n -= size
		line := g.line(kindLandline, 0)
		base := g.r.Float64() * 0.3 * d
		for i := range size {
			per := add(Household)
			g.habit(per)
			per.minimum = max(per.minimum, 2)
			per.eras, per.from, per.to = []era{line}, base, d
			if i > 0 {
				per.from = base + g.r.Float64()*(0.85*d-base)
			}
			if g.r.Float64() < 0.3 {
				per.CRM = crmOf(per)
			}
		}
	}
}

// recycled draws n numbers that change hands: a first owner (a mobile
// caller) stops calling, and after the gap of the segment the carrier
// gives the number to a new person. US carriers age a number at least 45
// days; links live 90 days.
func (g *generator) recycled(n int, s Segment, add func(Segment) *Person) {
	d := float64(g.p.Days)
	for range n {
		old := add(Mobile)
		g.habit(old)
		old.minimum, old.oldLine = max(old.minimum, 2), true
		old.eras = []era{g.line(kindMobile, 0)}
		old.from = g.r.Float64() * 0.1 * d
		old.to = 0.15*d + g.r.Float64()*0.15*d
		gap := 45 + g.r.Float64()*44
		if s == RecycledLong {
			gap = 90 + g.r.Float64()*30
		}
		per := add(s)
		g.habit(per)
		per.minimum = max(per.minimum, 2)
		per.from, per.to = min(old.to+gap, d-2), d
		per.eras = []era{{from: per.from, number: old.eras[0].number, kind: kindMobile, profile: attestMobile}}
		for _, p := range []*Person{old, per} {
			if g.r.Float64() < 0.3 {
				p.CRM = crmOf(p)
			}
		}
	}
}

// habit draws how often a person calls: a one-off caller (35 %), a regular
// (50 %) or a frequent caller (15 %), with a log-normal spread of weights.
func (g *generator) habit(per *Person) {
	spread := math.Exp(0.5 * g.r.NormFloat64())
	switch x := g.r.Float64(); {
	case x < 0.35:
		per.minimum, per.weight = 1, 0
	case x < 0.85:
		per.minimum, per.weight = 2, spread
	default:
		per.minimum, per.weight = 3, 4*spread
	}
}

// line hands out a new number of kind k.
func (g *generator) line(k lineKind, from float64) era {
	return era{from: from, number: g.number(), kind: k, profile: profileOf(k, g.r)}
}

// profileOf draws how a carrier attests a line of kind k: every mobile
// carrier signs; 60 % of landline carriers do, the rest never.
func profileOf(k lineKind, r *rand.Rand) profile {
	switch {
	case k == kindMobile:
		return attestMobile
	case k == kindVoIP:
		return attestVoIP
	case r.Float64() < 0.6:
		return attestLandline
	}
	return attestNever
}

// number draws an unused US number (NANP: area code and exchange 2-9xx).
func (g *generator) number() string {
	for {
		n := fmt.Sprintf("+1%d%02d%d%02d%04d", 2+g.r.IntN(8), g.r.IntN(100), 2+g.r.IntN(8), g.r.IntN(100), g.r.IntN(10000))
		if !g.used[n] && n[2:5] != "800" {
			g.used[n] = true
			return n
		}
	}
}

// crmOf is a person's CRM id: unique and stable.
func crmOf(per *Person) string { return fmt.Sprintf("C%07d", 3000000+per.ID) }
