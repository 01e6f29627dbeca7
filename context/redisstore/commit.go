package redisstore

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/stickycalls/stickycalls/context/callcontext"
	"github.com/stickycalls/stickycalls/context/storage"
)

// maxEraseAttempts bounds how often Erase starts again when the customer
// changed under it.
const maxEraseAttempts = 8

// committer is one CommitEnd in progress.
type committer struct {
	s       *Store
	n       names
	e       storage.EndCommit
	now     time.Time // the end's time, from which TTLs are measured
	token   string    // lock token when the end writes several customers
	mark    [2]string // the field and value of the end's mark on the call (see guardScript)
	deleted map[string]storage.Record
}

// CommitEnd implements callcontext.Store. Index entries go first, with the
// call's guard (guardScript: the other half of the call's ending has not
// committed, nor is committing, since the call was read); then the
// customers, each checked against its version, the target (the last write)
// last: its script is the commit point; then the call record, the counters
// and the index clean-up. An end that writes several customers locks them
// all first, so that either all are written or (ErrVersion) none. An end
// that writes one customer takes three waves. On a single node one script
// does it all (commitAll).
func (s *Store) CommitEnd(ctx context.Context, sc callcontext.Scope, e storage.EndCommit) error {
	c := &committer{s: s, n: s.names(sc), e: e, now: commitTime(e), deleted: map[string]storage.Record{}}
	if !s.cluster && !slices.ContainsFunc(e.Writes, func(w storage.Write) bool { return w.Delete }) {
		return c.commitAll(ctx)
	}
	if len(e.Writes) > 1 {
		c.token = newToken()
	}
	if err := c.prepare(ctx); err != nil {
		return err
	}
	if err := c.write(ctx); err != nil {
		return err
	}
	return c.finish(ctx)
}

// commitTime is the time of an end or completion, from which its TTLs are
// measured.
func commitTime(e storage.EndCommit) time.Time {
	if e.Completion && !e.Call.Completed.IsZero() {
		return e.Call.Completed
	}
	return e.Call.Ended
}

func newToken() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// prepare sets the index entries the end adds, guards the call and, for
// several writes, locks every customer at the version read.
func (c *committer) prepare(ctx context.Context) error {
	var runs []run
	for _, l := range c.e.ANILinks {
		link, _ := json.Marshal(l.Link)
		runs = append(runs, run{setFieldScript, []string{c.n.ani(l.ANI)}, []any{ttl(l.Link.Expires, c.now), linkField(l.Ref), string(link)}})
	}
	for _, o := range c.e.Owners {
		runs = append(runs, run{setFieldScript, []string{c.n.owner(o.ID.String())}, []any{ttl(o.Expires, c.now), o.Ref, ts(o.Expires)}})
	}
	indexRuns := len(runs)
	other, mark := c.guard()
	now := time.Now()
	c.mark = [2]string{mark[1], ts(now.Add(c.s.lockTTL))}
	runs = append(runs, run{guardScript, []string{c.n.call(c.e.Call.ID)}, []any{other[0], other[1], mark[0], mark[1], ts(now), c.mark[1]}})
	if c.token != "" {
		for _, w := range c.e.Writes {
			ref := w.Record.Ref
			runs = append(runs, run{lockScript, []string{c.n.customer(ref), c.n.lock(ref)}, []any{w.Prev, c.token, c.s.lockTTL.Milliseconds()}})
		}
	}
	cmds, err := c.s.wave(ctx, "commit end: index", runs, nil)
	if err != nil {
		c.unlock(ctx)
		return err
	}
	for _, cmd := range cmds[indexRuns:] {
		if cmd.Val() != int64(0) {
			c.unlock(ctx)
			return fmt.Errorf("commit end: call or customer %w", storage.ErrVersion)
		}
	}
	return nil
}

// guard is the field of the other half of the call's ending with its
// value as the commit read it (see commitScript's g), and the fields of
// the other half's and this half's marks (see guardScript).
func (c *committer) guard() (other [2]string, marks [2]string) {
	if c.e.Completion {
		return [2]string{"en", ts(c.e.Call.Ended)}, [2]string{"em", "cm"}
	}
	return [2]string{"co", ts(c.e.Call.Completed)}, [2]string{"cm", "em"}
}

// unlock removes the end's locks, if it took any, and its mark on the
// call. It runs even when the context is done, so that a failed end does
// not hold its customers, nor the other half of the call's ending.
func (c *committer) unlock(ctx context.Context) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
	defer cancel()
	runs := []run{{unguardScript, []string{c.n.call(c.e.Call.ID)}, []any{c.mark[0], c.mark[1]}}}
	if c.token != "" {
		for _, w := range c.e.Writes {
			runs = append(runs, run{unlockScript, []string{c.n.lock(w.Record.Ref)}, []any{c.token}})
		}
	}
	c.s.wave(ctx, "commit end: unlock", runs, nil) // the locks and the mark expire by themselves if this fails
}

// write writes the other customers in one wave, then the target.
func (c *committer) write(ctx context.Context) error {
	w := c.e.Writes
	if len(w) == 0 {
		return nil
	}
	if len(w) > 1 {
		if err := c.writeAll(ctx, w[:len(w)-1]); err != nil {
			c.unlock(ctx)
			return err
		}
	}
	if err := c.writeAll(ctx, w[len(w)-1:]); err != nil {
		c.unlock(ctx)
		return err
	}
	return nil
}

func (c *committer) writeAll(ctx context.Context, writes []storage.Write) error {
	runs := make([]run, len(writes))
	for i, w := range writes {
		rec, err := encodeRecord(w.Record)
		if err != nil {
			return err
		}
		ref, del := w.Record.Ref, ""
		if w.Delete {
			del = "1"
		}
		runs[i] = run{writeScript, []string{c.n.customer(ref), c.n.lock(ref)},
			[]any{w.Prev, c.token, del, w.Record.Version, string(rec), ttl(w.Record.Expires, c.now), ts(c.now)}}
	}
	cmds, err := c.s.wave(ctx, "commit end: customers", runs, nil)
	if err != nil {
		return err
	}
	for i, cmd := range cmds {
		code, old, err := reply(cmd)
		if err != nil {
			return err
		}
		if code != 0 {
			return fmt.Errorf("commit end: customer %q: %w", writes[i].Record.Ref, storage.ErrVersion)
		}
		if raw, _ := old.(string); writes[i].Delete && raw != "" {
			rec, err := decodeRecord([]byte(raw))
			if err != nil {
				return fmt.Errorf("decode customer %q: %w", writes[i].Record.Ref, err)
			}
			c.deleted[writes[i].Record.Ref] = rec
		}
	}
	return nil
}

// merge is the change of the call record: the end's (or completion's)
// fields, and the call counted. A record gone by the time it merges
// (erased, or expired) is written anew with the call's and the end's
// fields but not the start's: its answer is not brought back, nor
// compressed again on every end for that rare case.
func (c *committer) merge() run {
	call := c.e.Call
	call.Started, call.StartPrint, call.StartResponse = time.Time{}, "", nil
	h := callHash(call)
	m := merge{id: call.ID, period: c.e.Period, ttl: ttl(call.Expires, c.now), mode: "merge", ref: call.CustomerRef, tally: c.e.Tally, fresh: pairs(h, allFields)}
	if c.e.Counted {
		m.counter = usageField(c.e.Billable)
	}
	if c.e.Completion {
		m.always = append(pairs(h, doneFields), "cm", "")
	} else {
		h["el"], h["elp"] = "", ""
		m.always = append(pairs(h, endFields), "em", "")
	}
	return m.run(c.n)
}

// commitAll commits the whole end in one script (single node and
// Sentinel; an end that deletes a customer takes the ordered waves, which
// read the deleted record to clean its index entries).
func (c *committer) commitAll(ctx context.Context) error {
	var sets, writes, owners, unlinks [][]string
	for _, l := range c.e.ANILinks {
		link, _ := json.Marshal(l.Link)
		sets = append(sets, []string{c.n.ani(l.ANI), fmt.Sprint(ttl(l.Link.Expires, c.now)), linkField(l.Ref), string(link)})
	}
	for _, o := range c.e.Owners {
		sets = append(sets, []string{c.n.owner(o.ID.String()), fmt.Sprint(ttl(o.Expires, c.now)), o.Ref, ts(o.Expires)})
		owners = append(owners, []string{c.n.owner(o.ID.String()), o.Ref})
	}
	for _, w := range c.e.Writes {
		rec, err := encodeRecord(w.Record)
		if err != nil {
			return err
		}
		ref := w.Record.Ref
		writes = append(writes, []string{c.n.customer(ref), c.n.lock(ref), fmt.Sprint(w.Prev), fmt.Sprint(w.Record.Version), string(rec), fmt.Sprint(ttl(w.Record.Expires, c.now))})
	}
	for _, l := range c.e.ANIUnlinks {
		unlinks = append(unlinks, []string{c.n.ani(l.ANI), linkField(l.Ref)})
	}
	other, _ := c.guard()
	m := c.merge()
	args := make([]string, len(m.args))
	for i, a := range m.args {
		args[i] = fmt.Sprint(a)
	}
	plan, err := msgpack.Marshal(map[string]any{"s": sets, "w": writes, "m": []any{m.keys, args}, "o": owners, "d": unlinks, "n": ts(c.now), "g": other})
	if err != nil {
		return fmt.Errorf("commit end: %w", err)
	}
	cmd, err := c.s.one(ctx, "commit end", run{commitScript, nil, []any{string(plan)}})
	if err != nil {
		return err
	}
	if code, _, err := reply(cmd); err != nil || code != 0 {
		return cmp.Or(err, fmt.Errorf("commit end: customer %w", storage.ErrVersion))
	}
	return nil
}

// finish merges the end's (or completion's) fields into the call record
// and counts the call, then cleans the index: other owner candidates of
// the ids this end set, the ANI links it drops and the entries of the
// customers it deleted.
func (c *committer) finish(ctx context.Context) error {
	runs := []run{c.merge()}
	for _, o := range c.e.Owners {
		runs = append(runs, run{ownerOnlyScript, []string{c.n.owner(o.ID.String())}, []any{o.Ref}})
	}
	_, err := c.s.wave(ctx, "commit end: call", runs, func(p redis.Pipeliner) {
		for _, l := range c.e.ANIUnlinks {
			p.HDel(ctx, c.n.ani(l.ANI), linkField(l.Ref))
		}
		for ref, rec := range c.deleted {
			unindex(ctx, p, c.n, ref, rec)
		}
	})
	return err
}

// unindex removes a customer's index entries.
func unindex(ctx context.Context, p redis.Pipeliner, n names, ref string, rec storage.Record) {
	for ani := range rec.ANIs {
		p.HDel(ctx, n.ani(ani), linkField(ref))
	}
	for id := range rec.ExternalIDs {
		p.HDel(ctx, n.owner(id), ref)
	}
}

// Erase implements callcontext.Store. It reads the customer, removes its
// index entries and call records, then deletes the customer if it is still
// at the version read (else it starts again): a failed erase leaves the
// customer, so a retry finishes the job.
func (s *Store) Erase(ctx context.Context, sc callcontext.Scope, ref string) error {
	n := s.names(sc)
	for range maxEraseAttempts {
		done, err := s.eraseOnce(ctx, n, ref)
		if done || err != nil {
			return err
		}
	}
	return fmt.Errorf("erase %q: %w", ref, storage.ErrVersion)
}

// filedCalls are the ids of the calls filed in a customer's "cs" field
// (see fileCall in scripts.go): a line "<call id> <expiry>" each.
func filedCalls(cs string) []string {
	var ids []string
	for line := range strings.Lines(cs) {
		if id, _, ok := strings.Cut(line, " "); ok {
			ids = append(ids, id)
		}
	}
	return ids
}

func (s *Store) eraseOnce(ctx context.Context, n names, ref string) (bool, error) {
	h, err := s.rdb.HGetAll(ctx, n.customer(ref)).Result()
	if err != nil {
		return false, storeErr("erase", err)
	}
	raw, ok := h["rec"]
	if !ok {
		return true, callcontext.ErrNotFound
	}
	version := h["v"]
	rec, err := decodeRecord([]byte(raw))
	if err != nil {
		return false, fmt.Errorf("decode customer %q: %w", ref, err)
	}
	args := []any{ref, len(rec.Calls)}
	for _, c := range rec.Calls {
		args = append(args, n.call(c.ID))
	}
	for f := range h {
		if id, ok := strings.CutPrefix(f, "c:"); ok { // a call an earlier version's start filed
			args = append(args, n.call(id))
		}
	}
	for _, id := range filedCalls(h["cs"]) {
		args = append(args, n.call(id))
	}
	_, err = s.wave(ctx, "erase: index and calls", []run{{eraseCallsScript, []string{n.refCalls(ref)}, args}}, func(p redis.Pipeliner) {
		unindex(ctx, p, n, ref, rec)
	})
	if err != nil {
		return false, err
	}
	cmd, err := s.one(ctx, "erase: customer", run{writeScript, []string{n.customer(ref), n.lock(ref)}, []any{version, "", "1", 0, "", 0, ""}})
	if err != nil {
		return false, err
	}
	code, _, err := reply(cmd)
	return code == 0, err
}
