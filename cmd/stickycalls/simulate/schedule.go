package simulate

import (
	"cmp"
	"math"
	"slices"
	"sort"
	"time"
)

// call is one call of the history, with everything drawn in advance so
// that playing it needs no world randomness.
type call struct {
	at       time.Time
	day      float64
	person   *Person
	ani      string // as the caller ID shows it; a withheld token for withheld callers
	withheld bool
	kind     lineKind // the line's true type that day
	attest   string   // A, B, C, failed or none
	voice    bool     // through the Twilio webhooks, else REST
	sendKind bool     // REST: telco.line_type is sent
	sendCRM  bool     // REST: external_ids.crm_id is sent
	spoof    bool
	intent   string
	open     bool // the intent is still open after this call
	duration int  // seconds
}

// intents are the reasons people call.
const intents = "billing delivery_status refund_request technical_issue appointment plan_change"

// Withheld caller IDs: the words REST clients pass, and Twilio's placeholders.
const (
	withheldWords  = "anonymous restricted private unknown +266696687"
	withheldTwilio = "+266696687 +7378742833 +86282452253 +2562533 +8656696"
)

// schedule draws every call and returns them in time order.
func (g *generator) schedule(people []*Person) []call {
	n := g.allot(people)
	var out []call
	first := map[*Person]float64{}
	for i, per := range people {
		if per.Segment == Spoofer {
			continue
		}
		days := g.days(per, n[i])
		first[per] = days[0].day
		for _, d := range days {
			out = append(out, g.call(per, d))
		}
	}
	victims := g.victims(people)
	for i, per := range people {
		if per.Segment == Spoofer && len(victims) > 0 {
			out = append(out, g.spoofs(per, n[i], victims, first)...)
		}
	}
	slices.SortStableFunc(out, func(a, b call) int {
		return cmp.Or(a.at.Compare(b.at), cmp.Compare(a.person.ID, b.person.ID))
	})
	return out
}

// allot gives each person their minimum and shares the rest of the calls
// by weight.
func (g *generator) allot(people []*Person) []int {
	n := make([]int, len(people))
	cum := make([]float64, len(people))
	rest, total := g.p.Calls, 0.0
	for i, per := range people {
		n[i] = per.minimum
		rest -= per.minimum
		total += per.weight
		cum[i] = total
	}
	for ; rest > 0 && total > 0; rest-- {
		x := g.r.Float64() * total
		n[sort.SearchFloat64s(cum, x)]++
	}
	return n
}

// dayCall is the day of one call and the intent it is about.
type dayCall struct {
	day    float64
	intent string
	open   bool
}

// days places n calls in the person's window: episodes (an issue, then 1
// to 4 calls within days) starting at random days, the first at once.
func (g *generator) days(per *Person, n int) []dayCall {
	names := splitFields(intents)
	var out []dayCall
	for left := n; left > 0; {
		size := min(episodeSize(g.r.Float64()), left)
		left -= size
		t := per.from
		if len(out) > 0 {
			t = per.from + g.r.Float64()*(per.to-per.from)
		}
		intent := names[g.r.IntN(len(names))]
		for j := range size {
			if j > 0 {
				t += min(g.r.ExpFloat64()*1.5, 6) + 0.01
			}
			open := j < size-1 || g.r.Float64() < 0.2
			out = append(out, dayCall{day: min(t, per.to-0.001), intent: intent, open: open})
		}
	}
	slices.SortStableFunc(out, func(a, b dayCall) int { return cmp.Compare(a.day, b.day) })
	return out
}

// episodeSize maps x in [0,1) to 1 (40 %), 2 (30 %), 3 (20 %) or 4 calls.
func episodeSize(x float64) int {
	switch {
	case x < 0.4:
		return 1
	case x < 0.7:
		return 2
	case x < 0.9:
		return 3
	}
	return 4
}

// call draws the details of one call of per on a day.
func (g *generator) call(per *Person, d dayCall) call {
	c := call{day: d.day, at: g.clock(d.day), person: per, intent: d.intent, open: d.open,
		voice: g.r.Float64() < g.p.VoiceShare, duration: 30 + g.r.IntN(570)}
	if per.Segment == Withheld {
		c.withheld, c.attest = true, "none"
		c.ani = g.withheld(c.voice)
	} else {
		e := per.lineAt(d.day)
		c.ani, c.kind, c.attest = e.number, e.kind, e.profile.draw(g.r)
	}
	if !c.voice {
		c.sendKind = g.r.Float64() < 0.6
		c.sendCRM = per.CRM != "" && g.r.Float64() < 0.5
	}
	return c
}

// withheld draws a withheld caller ID as a REST client or Twilio shows it.
func (g *generator) withheld(voice bool) string {
	ids := splitFields(withheldWords)
	if voice {
		ids = splitFields(withheldTwilio)
	}
	return ids[g.r.IntN(len(ids))]
}

// victims are the mobile customers whose numbers spoofers show.
func (g *generator) victims(people []*Person) []*Person {
	var out []*Person
	for _, per := range people {
		if per.Segment == Mobile && !per.oldLine {
			out = append(out, per)
		}
	}
	return out
}

// spoofs draws a spoofer's n calls, in one episode of a few days, from a
// victim's number: 30 % before the victim first called, when possible.
func (g *generator) spoofs(per *Person, n int, victims []*Person, first map[*Person]float64) []call {
	v := victims[g.r.IntN(len(victims))]
	per.victim, per.eras = v, []era{{number: v.eras[0].number, kind: kindMobile, profile: attestSpoof}}
	end := float64(g.p.Days) - 4
	day := first[v] + g.r.Float64()*max(end-first[v], 0)
	if g.r.Float64() < 0.3 && first[v] > 2 {
		day = g.r.Float64() * (first[v] - 2)
	}
	per.from, per.to = day, math.Min(day+6, float64(g.p.Days)-0.01)
	var out []call
	for _, d := range g.daysIn(per, n) {
		c := g.call(per, d)
		c.spoof = true
		out = append(out, c)
	}
	return out
}

// daysIn places n calls as one episode.
func (g *generator) daysIn(per *Person, n int) []dayCall {
	names := splitFields(intents)
	out := []dayCall{{day: per.from, intent: names[g.r.IntN(len(names))], open: n > 1}}
	for i := 1; i < n; i++ {
		d := min(out[i-1].day+g.r.Float64()*2+0.01, per.to)
		out = append(out, dayCall{day: d, intent: out[0].intent, open: i < n-1})
	}
	return out
}

// clock turns a day of the history into a time within business hours
// (08:00 to 20:00 UTC), keeping order.
func (g *generator) clock(day float64) time.Time {
	whole := math.Floor(day)
	frac := day - whole
	return g.p.Start.Add(time.Duration(whole)*24*time.Hour + 8*time.Hour + time.Duration(frac*12*float64(time.Hour))).Truncate(time.Second)
}
