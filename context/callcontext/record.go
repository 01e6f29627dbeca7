package callcontext

import (
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/stickycalls/stickycalls/context/callapi"
	"github.com/stickycalls/stickycalls/context/identity"
	"github.com/stickycalls/stickycalls/context/storage"
	"github.com/stickycalls/stickycalls/context/tally"
)

// What a customer record keeps at most (and callapi.MaxOpenIntents open
// intents).
const maxHistory = 50 // closed intents kept

// prune drops what has expired from r as of now: links, variables, open
// intents without a call for too long (closed as abandoned), old history
// and call references. It then recomputes r.Expires.
func prune(r *storage.Record, now time.Time, d Durations) {
	maps.DeleteFunc(r.ANIs, func(_ string, l storage.Link) bool { return !l.Expires.After(now) })
	maps.DeleteFunc(r.ExternalIDs, func(_ string, l storage.Link) bool { return !l.Expires.After(now) })
	maps.DeleteFunc(r.Variables, func(_ string, v storage.Variable) bool { return !v.Expires.After(now) })
	open := r.Intents[:0:0]
	for _, in := range r.Intents {
		if in.LastCall.Add(d.IntentTTL).After(now) {
			open = append(open, in)
			continue
		}
		closeIntent(r, in, "abandoned", in.LastCall.Add(d.IntentTTL))
	}
	r.Intents = open
	r.History = slices.DeleteFunc(r.History, func(in storage.Intent) bool { return !in.Closed.Add(d.HistoryTTL).After(now) })
	if n := len(r.History); n > maxHistory {
		r.History = r.History[n-maxHistory:]
	}
	r.Calls = slices.DeleteFunc(r.Calls, func(c storage.CallRef) bool { return !c.At.Add(d.CallRetention).After(now) })
	r.Expires = latestExpiry(r, d)
}

func latestExpiry(r *storage.Record, d Durations) time.Time {
	var t time.Time
	later := func(u time.Time) {
		if u.After(t) {
			t = u
		}
	}
	for _, l := range r.ANIs {
		later(l.Expires)
	}
	for _, l := range r.ExternalIDs {
		later(l.Expires)
	}
	for _, v := range r.Variables {
		later(v.Expires)
	}
	for _, in := range r.Intents {
		later(in.LastCall.Add(d.IntentTTL))
	}
	return t
}

// alive reports whether the customer still exists at now: a live link, an
// open intent or a live variable.
func alive(r *storage.Record, now time.Time) bool { return r.Ref != "" && r.Expires.After(now) }

func closeIntent(r *storage.Record, in storage.Intent, status string, at time.Time) {
	in.Status, in.Closed = status, at
	r.History = append(r.History, in)
}

// applyIntent records one call's intent and returns its transition. Open
// counts the call on an open intent (followed up) or opens it; resolved
// and abandoned close it, or record it in history.
func applyIntent(r *storage.Record, name, status string, now time.Time) string {
	i := slices.IndexFunc(r.Intents, func(in storage.Intent) bool { return in.Name == name })
	switch {
	case status == "open" && i >= 0:
		r.Intents[i].Attempts++
		r.Intents[i].LastCall = now
		return tally.IntentFollowedUp
	case status == "open":
		r.Intents = append(r.Intents, storage.Intent{Name: name, Status: "open", Attempts: 1, Opened: now, LastCall: now})
		if len(r.Intents) > callapi.MaxOpenIntents {
			closeIntent(r, r.Intents[0], "abandoned", now)
			r.Intents = r.Intents[1:]
		}
		return tally.IntentOpened
	case i >= 0:
		in := r.Intents[i]
		r.Intents = slices.Delete(r.Intents, i, i+1)
		closeIntent(r, in, status, now)
	default:
		closeIntent(r, storage.Intent{Name: name, Opened: now, LastCall: now}, status, now)
	}
	return status // resolved or abandoned
}

// applyVariables merges vars into r and returns how many changed.
func applyVariables(r *storage.Record, vars map[string]*string, source string, expires time.Time) int {
	if r.Variables == nil {
		r.Variables = map[string]storage.Variable{}
	}
	n := 0
	for k, v := range vars {
		if v == nil {
			if _, ok := r.Variables[k]; ok {
				delete(r.Variables, k)
				n++
			}
			continue
		}
		r.Variables[k] = storage.Variable{Value: *v, Source: source, Expires: expires}
		n++
	}
	return n
}

// link links ani and ids to r with l's times, keeping what a live link
// has seen.
func linkTo(r *storage.Record, ani string, ids []storage.ExternalID, l storage.Link) {
	if ani != "" {
		if r.ANIs == nil {
			r.ANIs = map[string]storage.Link{}
		}
		r.ANIs[ani] = renewed(r.ANIs[ani], l)
	}
	for _, id := range ids {
		if r.ExternalIDs == nil {
			r.ExternalIDs = map[string]storage.Link{}
		}
		r.ExternalIDs[id.String()] = l
	}
}

// renewed is l with the times of t, and its history if it is still live.
func renewed(l storage.Link, t storage.Link) storage.Link {
	if !l.Expires.After(t.LastCall) {
		l = storage.Link{}
	}
	l.LastCall, l.Expires = t.LastCall, t.Expires
	return l
}

// witness adds what call showed to r's link to ani: one more call, vouched
// for by the carrier or not, and confirmed or not. A yes from a call whose
// attestation is unusual for the link (as a spoofer's) does not count. The
// link is made if absent; its times are the caller's to set.
func witness(r *storage.Record, ani string, call storage.CallRecord, yes bool, t identity.Thresholds, now time.Time) {
	if r.ANIs == nil {
		r.ANIs = map[string]storage.Link{}
	}
	l := r.ANIs[ani]
	yes = yes && !linkHistory(l, call.Started).Unusual(call.Attestation, t.UsualAttestation)
	l.Calls++
	l.Seen = now
	if call.Attestation == identity.AttestA || call.Attestation == identity.AttestB {
		l.Attested++
	}
	if yes {
		l.Yes++
		r.Yes++
	}
	r.ANIs[ani] = l
}

// dispute records on r's live link to ani that call's caller was someone
// else, once per call.
func disputeLink(r *storage.Record, ani, callID string, now time.Time) {
	l, ok := r.ANIs[ani]
	i := slices.IndexFunc(r.Calls, func(c storage.CallRef) bool { return c.ID == callID })
	if !ok || !l.Expires.After(now) || (i >= 0 && r.Calls[i].Disputed) {
		return
	}
	l.Disputes++
	r.ANIs[ani] = l
	r.Disputes++
	if i < 0 {
		r.Calls = append(r.Calls, storage.CallRef{ID: callID, At: now})
		i = len(r.Calls) - 1
	}
	r.Calls[i].Disputed = true
}

// empty reports whether r holds nothing of its own: no link, open intent
// or variable.
func empty(r *storage.Record) bool {
	return len(r.ANIs) == 0 && len(r.ExternalIDs) == 0 && len(r.Intents) == 0 && len(r.Variables) == 0
}

// name is the stored name variable, if any.
func nameOf(r *storage.Record) string { return r.Variables["name"].Value }

func customerView(r *storage.Record, now time.Time) callapi.CustomerView {
	v := callapi.CustomerView{
		CustomerRef: r.Ref, FirstCallAt: optTimestamp(r.FirstCall), LastCallAt: optTimestamp(r.LastCall),
		Links:       callapi.LinksView{ANIs: []callapi.ANILinkView{}, ExternalIDs: []callapi.ExtLinkView{}},
		OpenIntents: intentViews(r), ClosedIntents: []callapi.ClosedIntentView{},
		Variables: map[string]callapi.StoredVariableView{}, Confirmations: r.Yes, Disputes: r.Disputes,
	}
	for _, ani := range slices.Sorted(maps.Keys(r.ANIs)) {
		l := r.ANIs[ani]
		v.Links.ANIs = append(v.Links.ANIs, callapi.ANILinkView{ANI: ani, LastCallAt: callapi.Timestamp(l.LastCall), ExpiresAt: callapi.Timestamp(l.Expires),
			Calls: l.Calls, AttestedCalls: l.Attested, Confirmations: l.Yes, Disputes: l.Disputes})
	}
	for _, id := range slices.Sorted(maps.Keys(r.ExternalIDs)) {
		l := r.ExternalIDs[id]
		key, value, _ := strings.Cut(id, ":")
		v.Links.ExternalIDs = append(v.Links.ExternalIDs, callapi.ExtLinkView{Key: key, Value: value, LastCallAt: callapi.Timestamp(l.LastCall), ExpiresAt: callapi.Timestamp(l.Expires)})
	}
	for _, in := range r.History {
		v.ClosedIntents = append(v.ClosedIntents, callapi.ClosedIntentView{Intent: in.Name, Status: in.Status, AttemptCount: in.Attempts, ClosedAt: callapi.Timestamp(in.Closed)})
	}
	for k, x := range r.Variables {
		v.Variables[k] = callapi.StoredVariableView{
			VariableView: callapi.VariableView{Value: x.Value, Source: x.Source, TTLSeconds: secondsLeft(x.Expires, now)},
			ExpiresAt:    callapi.Timestamp(x.Expires),
		}
	}
	return v
}
