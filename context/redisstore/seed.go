package redisstore

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/stickycalls/stickycalls/context/callcontext"
	"github.com/stickycalls/stickycalls/context/storage"
)

// seedBatch is how many customers one seeding pipeline writes.
const seedBatch = 1000

// Seed bulk-loads new customers, writing exactly the keys an end that
// created each of them writes for the customer: its ANI index entries and
// external id owners (index first, as CommitEnd does), then the record,
// which must not exist yet; every key gets the TTL CommitEnd would set as
// of now. It writes no call records: seeded customers are those whose calls
// are past retention. Each batch of seedBatch customers is one pipeline of
// the store's own scripts, so Seed takes len(recs)/seedBatch waves, rounded
// up. A record that is already stored, expired as of now or without a ref
// or version is an error; the batches before it stay written.
func (s *Store) Seed(ctx context.Context, sc callcontext.Scope, recs []storage.Record, now time.Time) error {
	n := s.names(sc)
	for len(recs) > 0 {
		batch := recs[:min(len(recs), seedBatch)]
		recs = recs[len(batch):]
		if err := s.seed(ctx, n, batch, now); err != nil {
			return err
		}
	}
	return nil
}

func (s *Store) seed(ctx context.Context, n names, recs []storage.Record, now time.Time) error {
	var index, customers []run
	for _, r := range recs {
		if r.Ref == "" || r.Version < 1 || !r.Expires.After(now) {
			return fmt.Errorf("seed customer %q: needs a ref, a version and an expiry after now", r.Ref)
		}
		raw, err := encodeRecord(r)
		if err != nil {
			return err
		}
		for ani, l := range r.ANIs {
			link, _ := json.Marshal(storage.Link{LastCall: l.LastCall, Expires: l.Expires}) // the index keeps the times
			index = append(index, run{setFieldScript, []string{n.ani(ani)}, []any{ttl(l.Expires, now), linkField(r.Ref), string(link)}})
		}
		for id, l := range r.ExternalIDs {
			index = append(index, run{setFieldScript, []string{n.owner(id)}, []any{ttl(l.Expires, now), r.Ref, ts(l.Expires)}})
		}
		customers = append(customers, run{writeScript, []string{n.customer(r.Ref), n.lock(r.Ref)},
			[]any{0, "", "", r.Version, string(raw), ttl(r.Expires, now), ts(now)}})
	}
	cmds, err := s.wave(ctx, "seed", append(index, customers...), nil)
	if err != nil {
		return err
	}
	for i, cmd := range cmds[len(index):] {
		code, _, err := reply(cmd)
		if err != nil {
			return err
		}
		if code != 0 {
			return fmt.Errorf("seed customer %q: already stored", recs[i].Ref)
		}
	}
	return nil
}
