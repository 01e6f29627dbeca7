package redisstore

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/stickycalls/stickycalls/context/callcontext"
	"github.com/stickycalls/stickycalls/context/identity"
	"github.com/stickycalls/stickycalls/context/storage"
)

// maxStartCustomers bounds the customers a start's script reads; a start
// whose hints point at more reads the rest as Resolve does.
const maxStartCustomers = 16

// claimStart claims a start and reads what its query finds in one script
// (single node and Sentinel).
func (s *Store) claimStart(ctx context.Context, sc callcontext.Scope, c storage.Claim) (storage.ClaimResult, error) {
	n, q := s.names(sc), *c.Query
	keys := []string{n.call(c.CallID), n.usage(c.Period), "", "", ""}
	if c.Key != "" {
		keys[2] = n.idem(c.Op, c.Key)
	}
	if q.ANI != "" {
		keys[3] = n.ani(q.ANI)
	}
	if q.CustomerRef != "" {
		keys[4] = n.customer(q.CustomerRef)
	}
	for _, id := range q.ExternalIDs {
		keys = append(keys, n.owner(id.String()))
	}
	args := append(claimArgs(c), "{"+n.space+":c:", "}", c.CallID, ts(c.Now.Add(c.Retention)), maxStartCustomers, q.CustomerRef)
	cmd, err := s.one(ctx, "claim start", run{startScript, keys, args})
	if err != nil {
		return storage.ClaimResult{}, err
	}
	res, payload, err := claimed(cmd)
	if err != nil || res.Outcome != storage.Claimed {
		return res, err
	}
	if len(payload) < 4 {
		return res, fmt.Errorf("redis: unexpected start script reply %#v", cmd.Val())
	}
	if res.Call, err = callOf(c.CallID, payload); err == nil {
		res.Found, err = s.startFound(ctx, sc, c, payload[1:])
	}
	return res, err
}

// startFound reports what the start script read: the ANI's fields, the
// owner hashes and the customers, as Resolve would.
func (s *Store) startFound(ctx context.Context, sc callcontext.Scope, c storage.Claim, read []any) (storage.Found, error) {
	q, r := *c.Query, s.resolver(sc, c.Now)
	d := indexData{owners: map[string]map[string]string{}}
	if q.ANI != "" {
		d.ani = fields(read[0])
	}
	owners, _ := read[1].([]any)
	for i, id := range q.ExternalIDs {
		if i < len(owners) {
			d.owners[id.String()] = fields(owners[i])
		}
	}
	recs, _ := read[2].([]any)
	for i := 0; i+1 < len(recs); i += 2 {
		ref, _ := recs[i].(string)
		raw, ok := recs[i+1].(string)
		if err := r.keepRaw(cmp.Or(ref, q.CustomerRef), raw, ok); err != nil {
			return storage.Found{}, err
		}
	}
	ani, ownerRefs, err := r.interpret(d)
	if err != nil {
		return storage.Found{}, err
	}
	return r.found(ctx, q, ani, ownerRefs)
}

// lineTypeSlack is how far past a remembered line type's expiry its ANI
// key's TTL is set, so that the starts of the week after leave it alone.
const lineTypeSlack = 7 * 24 * time.Hour

// SaveStart implements callcontext.Store in one wave: the call record, the
// start's count and tally, the line type and the customers it revealed
// (filed for Erase) in one script on a single node; on a Cluster the line
// type and the filing run in their own slots beside it. The line type is
// a cache, so it may be written while the call record is not.
func (s *Store) SaveStart(ctx context.Context, sc callcontext.Scope, st storage.StartCommit) error {
	n, c := s.names(sc), st.Call
	h := callHash(c)
	h["sl"], h["slp"] = "", ""
	at := st.Tally.At
	if at.IsZero() {
		at = c.Started
	}
	code := "n"
	if st.Billable {
		code = "b"
	}
	refs := revealedRefs(c)
	keys := []string{n.call(c.ID), n.tallies(at)}
	args := []any{packCall(h, startFields), ttl(c.Expires, c.Started), code, st.Tally.Field, storage.TallyRetention.Milliseconds(),
		c.ID, ts(c.Expires), revealedField(refs), "", "", "", 0, ts(c.Started)}
	var lt []any
	if c.ANI != "" && st.LineType != "" && st.LineType != identity.Unknown {
		until := c.Started.Add(st.LinkTTL)
		lt = []any{string(st.LineType), ts(until), ts(until.Add(lineTypeSlack)), ttl(until.Add(lineTypeSlack), c.Started)}
	}
	if !s.cluster {
		if lt != nil {
			keys = append(keys, n.ani(c.ANI))
			copy(args[8:], lt)
		}
		for _, ref := range refs {
			keys = append(keys, n.customer(ref))
		}
		_, err := s.one(ctx, "save start", run{saveStartScript, keys, args})
		return err
	}
	runs := []run{{saveStartScript, keys, args}}
	if lt != nil {
		runs = append(runs, run{lineTypeScript, []string{n.ani(c.ANI)}, lt})
	}
	for _, ref := range refs {
		runs = append(runs, run{fileCallScript, []string{n.customer(ref)}, []any{c.ID, ts(c.Expires), ts(c.Started)}})
	}
	_, err := s.wave(ctx, "save start", runs, nil)
	return err
}

// revealedRefs are the customers a start's call is filed under: the one
// it names and those it revealed.
func revealedRefs(c storage.CallRecord) []string {
	refs := slices.Clone(c.Revealed)
	if c.CustomerRef != "" && !slices.Contains(refs, c.CustomerRef) {
		refs = append(refs, c.CustomerRef)
	}
	return refs
}
