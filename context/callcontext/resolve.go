package callcontext

import (
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/stickycalls/stickycalls/context/callapi"
	"github.com/stickycalls/stickycalls/context/identity"
	"github.com/stickycalls/stickycalls/context/storage"
)

// resolution is the customer a call's hints resolve to, with the signals
// that score it.
type resolution struct {
	Record     *storage.Record // nil when nothing matched
	Signals    identity.Signals
	Candidates []string // refs sharing the line, most recent first
}

// resolve picks the customer: a customer_ref that exists wins; else the
// customer with most matching external ids (ties: most recent call); else
// the customer whose link to the ANI had the most recent call among the
// links credible for a call with attestation att (all of them when none
// is). An index entry counts only when the customer's own record holds the
// link.
func resolve(f storage.Found, h callapi.Hints, ani string, att identity.Attestation, t identity.Thresholds, now time.Time) resolution {
	live := liveIn(f, now)
	aniRefs := lineRefs(f, ani, now, live)
	credible := slices.DeleteFunc(slices.Clone(aniRefs), func(ref string) bool {
		return !t.Credible(linkHistory(live(ref).ANIs[ani], now), att)
	})
	sharers := aniRefs
	if len(credible) > 0 {
		sharers = credible
	}
	owners := map[string]int{} // ref → matching external ids
	for _, id := range externalIDList(h.ExternalIDs) {
		ref := f.Owners[id.String()]
		if r := live(ref); r != nil && r.ExternalIDs[id.String()].Expires.After(now) {
			owners[ref]++
		}
	}
	var res resolution
	switch r := live(h.CustomerRef); {
	case r != nil:
		res.Record = r
		res.Signals.CustomerRefMatch = true
	case len(owners) > 0:
		res.Record = mostIDs(owners, live)
	case len(aniRefs) > 0:
		res.Record = live(sharers[0])
		res.Signals.HistoryChose = sharers[0] != aniRefs[0]
	default:
		res.Signals.DaysSinceLastCall = -1
		return res
	}
	ref := res.Record.Ref
	s := &res.Signals
	s.ANIMatch = slices.Contains(aniRefs, ref)
	if !slices.Contains(sharers, ref) {
		sharers = aniRefs
	}
	s.ANIShared = s.ANIMatch && len(sharers) >= 2
	if s.ANIMatch {
		s.Link = linkHistory(res.Record.ANIs[ani], now)
		s.HistoryChose = s.HistoryChose || (len(aniRefs) >= 2 && !s.ANIShared)
	}
	s.ANIConflict = len(aniRefs) > 0 && !s.ANIMatch
	s.ExternalIDMatch = owners[ref] > 0
	s.ExternalIDConflict = len(owners) > 1 || (len(owners) == 1 && owners[ref] == 0)
	s.DaysSinceLastCall = -1
	if !res.Record.LastCall.IsZero() {
		s.DaysSinceLastCall = int(now.Sub(res.Record.LastCall) / (24 * time.Hour))
	}
	if s.ANIShared && !s.ExternalIDMatch && !s.CustomerRefMatch {
		res.Candidates = sharers
	}
	return res
}

// liveIn looks up the customers of f that exist at now.
func liveIn(f storage.Found, now time.Time) func(string) *storage.Record {
	return func(ref string) *storage.Record {
		r, ok := f.Customers[ref]
		if !ok || !alive(&r, now) {
			return nil
		}
		return &r
	}
}

// lineRefs lists the customers verifiably linked to ani, most recent first.
func lineRefs(f storage.Found, ani string, now time.Time, live func(string) *storage.Record) []string {
	if ani == "" {
		return nil
	}
	var refs []string
	for ref, l := range f.ANI.Links {
		if r := live(ref); r != nil && l.Expires.After(now) && r.ANIs[ani].Expires.After(now) {
			refs = append(refs, ref)
		}
	}
	slices.SortFunc(refs, func(a, b string) int {
		if c := f.ANI.Links[b].LastCall.Compare(f.ANI.Links[a].LastCall); c != 0 {
			return c
		}
		return strings.Compare(a, b)
	})
	return refs
}

func mostIDs(owners map[string]int, live func(string) *storage.Record) *storage.Record {
	var best *storage.Record
	for _, ref := range slices.Sorted(maps.Keys(owners)) {
		r := live(ref)
		if best == nil || owners[ref] > owners[best.Ref] ||
			(owners[ref] == owners[best.Ref] && r.LastCall.After(best.LastCall)) {
			best = r
		}
	}
	return best
}

// externalIDList turns a hints map into a sorted list.
func externalIDList(m map[string]string) []storage.ExternalID {
	ids := make([]storage.ExternalID, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		ids = append(ids, storage.ExternalID{Key: k, Value: m[k]})
	}
	return ids
}
