package simulate

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/url"
	"strconv"
	"time"
)

// linkLife is how long a link lives after its last call (API.md §4).
const linkLife = 90 * 24 * time.Hour

// answer is what the simulation reads of a start (or of a call as it now
// stands, GET /v1/calls/{call_id}).
type answer struct {
	CustomerRef string `json:"customer_ref"`
	Identity    struct {
		Confidence     float64 `json:"confidence"`
		Recommendation string  `json:"recommendation"`
		Candidates     []struct {
			CustomerRef string `json:"customer_ref"`
		} `json:"candidates"`
	} `json:"identity"`
}

func (a answer) matched() bool {
	return a.Identity.Recommendation == "reuse" || a.Identity.Recommendation == "confirm"
}

// player plays the calls in order and keeps the truth the service cannot
// see: which person owns which customer ref, and which of a person's
// numbers and CRM ids the service has linked to them.
type player struct {
	w     *World
	c     client
	r     *rand.Rand // the agents' and callers' choices
	ids   *rand.Rand // voice CallSids
	clock time.Time
	owner map[string]int               // ref → the first person saved to it
	refs  map[int][]string             // person → the refs they own, oldest first
	anis  map[int]map[string]time.Time // person → number → last saved to one of their refs
	crmAt map[int]time.Time            // person → when their CRM id was last linked to one of their refs
	made  int                          // refs agents made up
	tally *tally
}

// Play plays every call of w against t, in time order, one at a time, and
// reports what the service answered. With t.SetClock the service's clock
// follows the history; the same world and target give the same Report.
func Play(ctx context.Context, w *World, t Target) (*Report, error) {
	t.PublicURL = cmpOr(t.PublicURL, t.BaseURL)
	t.CallPrefix = cmpOr(t.CallPrefix, "call_sim_")
	p := &player{
		w: w, c: client{t: t},
		r:     rand.New(rand.NewPCG(w.Params.Seed, 2)),
		ids:   rand.New(rand.NewPCG(w.Params.Seed, 3^t.SIDSeed)),
		owner: map[string]int{}, refs: map[int][]string{}, anis: map[int]map[string]time.Time{}, crmAt: map[int]time.Time{},
		tally: newTally(w),
	}
	for i := range w.calls {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if err := p.play(ctx, i, &w.calls[i]); err != nil {
			return nil, fmt.Errorf("simulate: call %d of %d: %w", i+1, len(w.calls), err)
		}
	}
	return p.tally.report(), nil
}

// tick moves the service's clock to t, never backwards.
func (p *player) tick(t time.Time) {
	if t.After(p.clock) {
		p.clock = t
	}
	if p.c.t.SetClock != nil {
		p.c.t.SetClock(p.clock)
	}
}

// play plays one call and counts it.
func (p *player) play(ctx context.Context, n int, c *call) error {
	p.tick(c.at)
	o := observation{c: c, returning: p.returning(c), first: len(p.refs[c.person.ID]) == 0}
	var err error
	if c.voice && p.c.t.AuthToken != "" {
		o.voice = true
		err = p.voice(ctx, c, &o)
	} else {
		err = p.rest(ctx, n, c, &o)
	}
	if err != nil {
		return err
	}
	p.tally.add(o)
	return nil
}

// returning reports whether the service has a customer for the caller and
// the call carries a hint linked to it within the link lifetime: one of
// the caller's numbers, or their CRM id.
func (p *player) returning(c *call) bool {
	id := c.person.ID
	if len(p.refs[id]) == 0 {
		return false
	}
	if t, ok := p.anis[id][c.ani]; ok && !c.withheld && p.clock.Sub(t) < linkLife {
		return true
	}
	t, ok := p.crmAt[id]
	return ok && c.sendCRM && p.clock.Sub(t) < linkLife
}

// observe notes what a start answered.
func (p *player) observe(o *observation, a answer) {
	o.rec, o.ref, o.conf = a.Identity.Recommendation, a.CustomerRef, a.Identity.Confidence
	o.right = p.owns(o.c.person, a.CustomerRef)
	for _, c := range a.Identity.Candidates {
		o.among = o.among || (a.Identity.Recommendation == "confirm" && p.owns(o.c.person, c.CustomerRef))
	}
}

func (p *player) owns(per *Person, ref string) bool {
	id, ok := p.owner[ref]
	return ok && id == per.ID
}

// rest plays a call through POST /v1/calls/start and an agent's end.
func (p *player) rest(ctx context.Context, n int, c *call, o *observation) error {
	id := p.c.t.CallPrefix + strconv.Itoa(n)
	req := startBody{CallID: id, Hints: hints{ANI: c.ani, DNIS: p.c.t.Number}, Telco: telco{Attestation: c.attest}}
	if c.sendKind {
		req.Telco.LineType = string(c.kind)
	}
	if c.sendCRM {
		req.Hints.ExternalIDs = map[string]string{"crm_id": c.person.CRM}
	}
	var a answer
	if _, err := p.c.api(ctx, "POST", "/v1/calls/start", req, &a); err != nil {
		return err
	}
	p.observe(o, a)
	p.tick(c.at.Add(time.Duration(c.duration) * time.Second))
	return p.end(ctx, id, c, a, o)
}

// voice plays a call through the Twilio webhooks: incoming, the confirm
// answer when asked, the completion, and an agent's end on 60 % of calls.
func (p *player) voice(ctx context.Context, c *call, o *observation) error {
	sid := "CA" + p.hex(16)
	form := url.Values{
		"CallSid": {sid}, "AccountSid": {p.c.t.AccountSID}, "From": {c.ani}, "To": {p.c.t.Number},
		"CallStatus": {"ringing"}, "Direction": {"inbound"}, "ApiVersion": {"2010-04-01"},
	}
	if v := verstat(c.attest); v != "" {
		form.Set("StirVerstat", v)
	}
	twiml, err := p.c.webhook(ctx, "/voice/incoming", form)
	if err != nil {
		return err
	}
	cur, err := p.callView(ctx, sid)
	if err != nil {
		return err
	}
	p.observe(o, cur)
	if o.asked, err = asksConfirm(twiml); err != nil {
		return err
	}
	if o.asked {
		if cur, err = p.confirm(ctx, c, o, form, cur); err != nil {
			return err
		}
	}
	agentEnds := p.r.Float64() < 0.6
	p.tick(c.at.Add(time.Duration(c.duration) * time.Second))
	done := with(form, "CallStatus", "completed")
	done.Set("CallDuration", strconv.Itoa(c.duration))
	if _, err := p.c.webhook(ctx, "/voice/status", done); err != nil {
		return err
	}
	if agentEnds {
		p.tick(p.clock.Add(30 * time.Second))
		return p.end(ctx, sid, c, cur, o)
	}
	return p.completed(ctx, c, cur, o)
}

// confirm answers the confirm question honestly: yes when the customer
// asked about is the caller, else no (by speech, or sometimes by pressing 2).
func (p *player) confirm(ctx context.Context, c *call, o *observation, form url.Values, cur answer) (answer, error) {
	p.tick(c.at.Add(15 * time.Second))
	o.yes = p.owns(c.person, cur.CustomerRef)
	f := with(form, "CallStatus", "in-progress")
	switch {
	case o.yes && p.r.Float64() < 0.5:
		f.Set("Digits", "1")
	case o.yes:
		f.Set("SpeechResult", "Yes, this is "+c.person.Name+".")
		f.Set("Confidence", "0.92")
	case p.r.Float64() < 0.3:
		f.Set("Digits", "2")
	default:
		f.Set("SpeechResult", "No.")
		f.Set("Confidence", "0.9")
	}
	if _, err := p.c.webhook(ctx, "/voice/confirm", f); err != nil {
		return answer{}, err
	}
	return p.callView(ctx, f.Get("CallSid"))
}
