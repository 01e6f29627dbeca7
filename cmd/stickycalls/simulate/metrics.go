package simulate

import (
	"cmp"
	"slices"
)

// Names of the rows that group calls rather than people.
const (
	RowCRM     = "with_crm_id"     // REST calls whose start carried the caller's CRM id
	RowNoRef   = "end_without_ref" // calls whose agent ended without a customer_ref
	RowOverall = "overall"
)

// bins is the number of confidence bins of the histograms (0.05 wide).
const bins = 20

// observation is what happened on one call.
type observation struct {
	c          *call
	voice      bool
	rec, ref   string  // what the start answered
	conf       float64 // identity.confidence of the start
	right      bool    // ref was owned by the caller when the call began
	among      bool    // a confirm on a shared line whose candidates name the caller
	returning  bool    // see player.returning
	first      bool    // the caller had never been saved before
	asked, yes bool    // the confirm question, and an honest yes
	omitted    bool    // the end carried no customer_ref
	savedWrong bool    // the call was saved to another person's customer
}

// Row counts one segment's calls. Rates are over its calls unless named
// otherwise; a rate over nothing is 0.
type Row struct {
	Name         string
	People       int // 0 for rows of calls
	Calls        int
	VoiceCalls   int
	Reused       int // reuse for anyone
	WrongReuse   int // reuse for a customer the caller does not own
	WrongConfirm int // confirm for a customer the caller does not own
	Returning    int // calls of callers the service has a customer for, with a hint linked to it
	Recalled     int // returning calls with reuse or confirm for the caller (or a confirm naming the caller among its candidates)
	RecalledTop  int // returning calls with reuse or confirm whose customer_ref is the caller's
	Automated    int // returning calls with reuse for the caller
	FirstCalls   int // calls of people never saved before
	FirstMatched int // first calls that got reuse or confirm (necessarily someone else)
	Asked        int // confirm questions asked (voice)
	Yes, No      int // honest answers to them
	SavedWrong   int // calls saved to another person's customer
}

// ReuseRate is the share of calls with reuse for anyone.
func (r Row) ReuseRate() float64 { return ratio(r.Reused, r.Calls) }

// WrongReuseRate is the share of calls reused as another person.
func (r Row) WrongReuseRate() float64 { return ratio(r.WrongReuse, r.Calls) }

// WrongConfirmRate is the share of calls asked to confirm another person.
func (r Row) WrongConfirmRate() float64 { return ratio(r.WrongConfirm, r.Calls) }

// Recall is the share of returning calls recognized (reuse or confirm) as
// the caller, a confirm on a shared line counting when its candidates name
// the caller.
func (r Row) Recall() float64 { return ratio(r.Recalled, r.Returning) }

// RecallTop is the share of returning calls whose start named the caller
// as its customer_ref (reuse or confirm).
func (r Row) RecallTop() float64 { return ratio(r.RecalledTop, r.Returning) }

// Automation is the share of returning calls reused as the caller.
func (r Row) Automation() float64 { return ratio(r.Automated, r.Returning) }

// FirstMatchedRate is the share of new callers' calls matched to someone.
func (r Row) FirstMatchedRate() float64 { return ratio(r.FirstMatched, r.FirstCalls) }

// SavedWrongRate is the share of calls saved to another person's customer.
func (r Row) SavedWrongRate() float64 { return ratio(r.SavedWrong, r.Calls) }

func ratio(a, b int) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

// add counts o.
func (r *Row) add(o observation) {
	r.Calls++
	wrong := (o.rec == "reuse" || o.rec == "confirm") && !o.right
	r.VoiceCalls += b2i(o.voice)
	r.Reused += b2i(o.rec == "reuse")
	r.WrongReuse += b2i(wrong && o.rec == "reuse")
	r.WrongConfirm += b2i(wrong && o.rec == "confirm")
	if o.returning {
		r.Returning++
		r.RecalledTop += b2i(o.right && (o.rec == "reuse" || o.rec == "confirm"))
		r.Recalled += b2i((o.right && (o.rec == "reuse" || o.rec == "confirm")) || o.among)
		r.Automated += b2i(o.right && o.rec == "reuse")
	}
	if o.first {
		r.FirstCalls++
		r.FirstMatched += b2i(o.rec == "reuse" || o.rec == "confirm")
	}
	r.Asked += b2i(o.asked)
	r.Yes += b2i(o.asked && o.yes)
	r.No += b2i(o.asked && !o.yes)
	r.SavedWrong += b2i(o.savedWrong)
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// tally counts observations by row, and the confidence of every match.
type tally struct {
	w            *World
	rows         map[string]*Row
	overall      Row
	right, wrong [bins]int
	wrongReused  [bins]int // the part of wrong that said reuse
}

func newTally(w *World) *tally {
	t := &tally{w: w, rows: map[string]*Row{}}
	for _, s := range Segments() {
		t.rows[string(s)] = &Row{Name: string(s)}
	}
	for _, per := range w.People {
		t.rows[string(per.Segment)].People++
	}
	t.rows[RowCRM], t.rows[RowNoRef] = &Row{Name: RowCRM}, &Row{Name: RowNoRef}
	t.overall = Row{Name: RowOverall, People: len(w.People)}
	return t
}

func (t *tally) add(o observation) {
	t.rows[string(o.c.person.Segment)].add(o)
	t.overall.add(o)
	if o.c.sendCRM {
		t.rows[RowCRM].add(o)
	}
	if o.omitted {
		t.rows[RowNoRef].add(o)
	}
	if o.rec == "reuse" || o.rec == "confirm" {
		bin := min(max(int(o.conf*bins+1e-9), 0), bins-1)
		switch {
		case o.right:
			t.right[bin]++
		case o.rec == "reuse":
			t.wrong[bin]++
			t.wrongReused[bin]++
		default:
			t.wrong[bin]++
		}
	}
}

func (t *tally) report() *Report {
	r := &Report{Params: t.w.Params, Overall: t.overall, Right: t.right, Wrong: t.wrong, WrongReused: t.wrongReused, Gaps: gapsOf(t.w)}
	for _, s := range Segments() {
		r.Segments = append(r.Segments, *t.rows[string(s)])
	}
	r.Groups = []Row{*t.rows[RowCRM], *t.rows[RowNoRef]}
	return r
}

// Gaps describes the time between a person's consecutive calls.
type Gaps struct {
	N                                 int     // gaps measured
	P10, P25, P50, P75, P90           float64 // percentiles, in days
	Day, Week, Month, Quarter, Longer int     // gaps < 1 day, 1–7, 7–30, 30–90, ≥ 90 days
}

// gapsOf measures the gaps of every person but spoofers.
func gapsOf(w *World) Gaps {
	last := map[*Person]float64{}
	var gaps []float64
	for _, c := range w.calls {
		if prev, ok := last[c.person]; ok && !c.spoof {
			gaps = append(gaps, c.day-prev)
		}
		last[c.person] = c.day
	}
	slices.SortFunc(gaps, cmp.Compare[float64])
	g := Gaps{N: len(gaps)}
	if len(gaps) == 0 {
		return g
	}
	at := func(q float64) float64 { return gaps[int(q*float64(len(gaps)-1))] }
	g.P10, g.P25, g.P50, g.P75, g.P90 = at(0.1), at(0.25), at(0.5), at(0.75), at(0.9)
	for _, d := range gaps {
		switch {
		case d < 1:
			g.Day++
		case d < 7:
			g.Week++
		case d < 30:
			g.Month++
		case d < 90:
			g.Quarter++
		default:
			g.Longer++
		}
	}
	return g
}
