package redisstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/stickycalls/stickycalls/context/callcontext"
	"github.com/stickycalls/stickycalls/context/identity"
	"github.com/stickycalls/stickycalls/context/storage"
)

// maxLineCustomers bounds how many customers of one ANI a start reads, as
// in the bbolt store.
const maxLineCustomers = 10

// linkField is the ANI index field of a customer's link.
func linkField(ref string) string { return "l:" + ref }

// resolver reads customers for one Resolve, each at most once.
type resolver struct {
	s    *Store
	n    names
	now  time.Time
	recs map[string]*storage.Record // ref → record; nil when absent
}

// Resolve implements callcontext.Store. It reads the index entries and the
// customer_ref's record in one wave and the customers they point at in a
// second; an entry counts only if the customer's own record holds the live
// link, and the link reported is the record's.
func (s *Store) Resolve(ctx context.Context, sc callcontext.Scope, q storage.Query, now time.Time) (storage.Found, error) {
	r := s.resolver(sc, now)
	if q.ANI == "" && len(q.ExternalIDs) == 0 && q.CustomerRef == "" {
		return r.found(ctx, q, aniIndex{}, nil)
	}
	var reads *indexReads
	if _, err := s.wave(ctx, "resolve", nil, func(p redis.Pipeliner) { reads = r.queue(ctx, p, q) }); err != nil {
		return storage.Found{Customers: map[string]storage.Record{}, Owners: map[string]string{}}, err
	}
	return r.resolve(ctx, q, reads)
}

func (s *Store) resolver(sc callcontext.Scope, now time.Time) *resolver {
	return &resolver{s: s, n: s.names(sc), now: now, recs: map[string]*storage.Record{}}
}

// resolve finishes a resolution whose index reads have come back.
func (r *resolver) resolve(ctx context.Context, q storage.Query, reads *indexReads) (storage.Found, error) {
	ani, owners, err := r.index(q, reads)
	if err != nil {
		return storage.Found{Customers: map[string]storage.Record{}, Owners: map[string]string{}}, err
	}
	return r.found(ctx, q, ani, owners)
}

// found reads the customers the index entries point at and reports them.
func (r *resolver) found(ctx context.Context, q storage.Query, ani aniIndex, owners map[string][]string) (storage.Found, error) {
	f := storage.Found{Customers: map[string]storage.Record{}, Owners: map[string]string{}}
	ownerRefs := slices.Concat(slices.Collect(maps.Values(owners))...)
	links, err := r.lineLinks(ctx, q.ANI, ani, ownerRefs)
	if err != nil {
		return f, err
	}
	if q.ANI != "" {
		f.ANI = storage.ANIEntry{LineType: ani.lineType(r.now), Links: links}
	}
	for id, refs := range owners {
		if ref := r.owner(id, refs); ref != "" {
			f.Owners[id] = ref
		}
	}
	for _, ref := range slices.Concat([]string{q.CustomerRef}, slices.Collect(maps.Values(f.Owners)), slices.Collect(maps.Keys(links))) {
		if rec := r.recs[ref]; rec != nil {
			f.Customers[ref] = *rec
		}
	}
	return f, nil
}

// indexReads are the first-wave reads of a resolution.
type indexReads struct {
	ani    *redis.MapStringStringCmd
	owners map[string]*redis.MapStringStringCmd
	ref    *redis.StringCmd
}

// queue adds the reads of the ANI's entry, each external id's owner
// candidates and the customer_ref's record to a pipeline.
func (r *resolver) queue(ctx context.Context, p redis.Pipeliner, q storage.Query) *indexReads {
	reads := &indexReads{owners: map[string]*redis.MapStringStringCmd{}}
	if q.ANI != "" {
		reads.ani = p.HGetAll(ctx, r.n.ani(q.ANI))
	}
	for _, id := range q.ExternalIDs {
		reads.owners[id.String()] = p.HGetAll(ctx, r.n.owner(id.String()))
	}
	if q.CustomerRef != "" {
		reads.ref = p.HGet(ctx, r.n.customer(q.CustomerRef), "rec")
	}
	return reads
}

// index interprets the first-wave reads.
func (r *resolver) index(q storage.Query, reads *indexReads) (aniIndex, map[string][]string, error) {
	if reads.ref != nil {
		if err := r.keep(q.CustomerRef, reads.ref); err != nil {
			return aniIndex{}, nil, err
		}
	}
	d := indexData{owners: map[string]map[string]string{}}
	for id, cmd := range reads.owners {
		d.owners[id] = cmd.Val()
	}
	if reads.ani != nil {
		d.ani = reads.ani.Val()
	}
	return r.interpret(d)
}

// indexData is what a start's index entries hold.
type indexData struct {
	ani    map[string]string            // the ANI's hash; nil when the query has no ANI
	owners map[string]map[string]string // external id → its owner hash
}

// interpret decodes the index entries: the ANI's, and each external id's
// live owner candidates.
func (r *resolver) interpret(d indexData) (aniIndex, map[string][]string, error) {
	owners := map[string][]string{}
	for id, m := range d.owners {
		for ref, exp := range m {
			if after(exp, r.now) {
				owners[id] = append(owners[id], ref)
			}
		}
	}
	if d.ani == nil {
		return aniIndex{}, owners, nil
	}
	ani, err := decodeANI(d.ani)
	return ani, owners, err
}

// after reports whether the encoded time exp is after now.
func after(exp string, now time.Time) bool {
	t, err := parseTS(exp)
	return err == nil && t.After(now)
}

// lineLinks returns the links to ani that customers' records confirm, at
// most maxLineCustomers with the latest calls. It reads the candidates
// most recent first, batch by batch, with extra (the owner candidates) in
// the first batch.
func (r *resolver) lineLinks(ctx context.Context, ani string, idx aniIndex, extra []string) (map[string]storage.Link, error) {
	cands := idx.candidates(r.now)
	links := map[string]storage.Link{}
	for first := true; first || (len(cands) > 0 && len(links) < maxLineCustomers); first = false {
		batch := cands[:min(len(cands), maxLineCustomers-len(links))]
		cands = cands[len(batch):]
		if err := r.fetch(ctx, slices.Concat(batch, extra)); err != nil {
			return nil, err
		}
		extra = nil
		for _, ref := range batch {
			if rec := r.recs[ref]; rec != nil && rec.ANIs[ani].Expires.After(r.now) {
				links[ref] = rec.ANIs[ani]
			}
		}
	}
	return links, nil
}

// owner picks, of the candidates, the customer whose record holds the live
// external id, the latest linked if several do (an end that moved the id
// failed half-way).
func (r *resolver) owner(id string, refs []string) string {
	best := ""
	var bestLink storage.Link
	slices.Sort(refs)
	for _, ref := range refs {
		rec := r.recs[ref]
		if rec == nil {
			continue
		}
		if l := rec.ExternalIDs[id]; l.Expires.After(r.now) && (best == "" || l.LastCall.After(bestLink.LastCall)) {
			best, bestLink = ref, l
		}
	}
	return best
}

// fetch reads, in one wave, the records of refs not read yet.
func (r *resolver) fetch(ctx context.Context, refs []string) error {
	cmds := map[string]*redis.StringCmd{}
	for _, ref := range refs {
		if _, done := r.recs[ref]; !done && ref != "" {
			cmds[ref] = nil
		}
	}
	if len(cmds) == 0 {
		return nil
	}
	_, err := r.s.wave(ctx, "read customers", nil, func(p redis.Pipeliner) {
		for ref := range cmds {
			cmds[ref] = p.HGet(ctx, r.n.customer(ref), "rec")
		}
	})
	if err != nil {
		return err
	}
	for ref, cmd := range cmds {
		if err := r.keep(ref, cmd); err != nil {
			return err
		}
	}
	return nil
}

// keep decodes a customer read; a missing record is remembered as absent.
func (r *resolver) keep(ref string, cmd *redis.StringCmd) error {
	raw, err := cmd.Result()
	if errors.Is(err, redis.Nil) {
		r.recs[ref] = nil
		return nil
	}
	if err != nil {
		return storeErr("read customer", err)
	}
	return r.keepRaw(ref, raw, true)
}

// keepRaw decodes a customer's stored record; !ok is a missing record.
func (r *resolver) keepRaw(ref, raw string, ok bool) error {
	if !ok {
		r.recs[ref] = nil
		return nil
	}
	rec, err := decodeRecord([]byte(raw))
	if err != nil {
		return fmt.Errorf("decode customer %q: %w", ref, err)
	}
	r.recs[ref] = &rec
	return nil
}

// Customers implements callcontext.Store in one wave.
func (s *Store) Customers(ctx context.Context, sc callcontext.Scope, refs []string) (map[string]storage.Record, error) {
	r := &resolver{s: s, n: s.names(sc), recs: map[string]*storage.Record{}}
	if err := r.fetch(ctx, refs); err != nil {
		return nil, err
	}
	out := map[string]storage.Record{}
	for ref, rec := range r.recs {
		if rec != nil {
			out[ref] = *rec
		}
	}
	return out, nil
}

// aniIndex is an ANI's index hash, decoded.
type aniIndex struct {
	lt    identity.LineType
	ltExp time.Time
	links map[string]storage.Link
}

func decodeANI(m map[string]string) (aniIndex, error) {
	e := aniIndex{lt: identity.LineType(m["lt"]), links: map[string]storage.Link{}}
	var err error
	if e.ltExp, err = parseTS(m["ltx"]); err != nil {
		return e, err
	}
	for f, v := range m {
		ref, ok := strings.CutPrefix(f, "l:")
		if !ok {
			continue
		}
		var l storage.Link
		if err := json.Unmarshal([]byte(v), &l); err != nil {
			return e, fmt.Errorf("decode link of %q: %w", ref, err)
		}
		e.links[ref] = l
	}
	return e, nil
}

func (e aniIndex) lineType(now time.Time) identity.LineType {
	if !e.ltExp.After(now) {
		return ""
	}
	return e.lt
}

// candidates lists the refs with a live link, latest call first.
func (e aniIndex) candidates(now time.Time) []string {
	var refs []string
	for ref, l := range e.links {
		if l.Expires.After(now) {
			refs = append(refs, ref)
		}
	}
	slices.SortFunc(refs, func(a, b string) int {
		if c := e.links[b].LastCall.Compare(e.links[a].LastCall); c != 0 {
			return c
		}
		return strings.Compare(a, b)
	})
	return refs
}
