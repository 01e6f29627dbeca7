package redisstore

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/stickycalls/stickycalls/context/callcontext"
	"github.com/stickycalls/stickycalls/context/identity"
)

// callBase is the part of a call record that no script reads or changes,
// stored as JSON in the call hash's "base" field.
type callBase struct {
	ID          string                   `json:"id"`
	ANI         string                   `json:"ani,omitempty"`
	DNIS        string                   `json:"dnis,omitempty"`
	ExternalIDs []callcontext.ExternalID `json:"external_ids,omitempty"`
	Attestation identity.Attestation     `json:"att,omitempty"`
	LineType    identity.LineType        `json:"lt,omitempty"`
	Matched     string                   `json:"m,omitempty"`
	Contestable bool                     `json:"mc,omitempty"`
}

func baseOf(c callcontext.CallRecord) string {
	b, _ := json.Marshal(callBase{c.ID, c.ANI, c.DNIS, c.ExternalIDs, c.Attestation, c.LineType, c.Matched, c.Contestable})
	return string(b)
}

// answerField encodes the caller's answer to the confirm question: "1"
// yes, "0" no, "" none yet or nothing heard.
func answerField(confirmed, denied bool) string {
	switch {
	case confirmed:
		return "1"
	case denied:
		return "0"
	}
	return ""
}

// callHash is a call record as the fields of its hash: "base"; "ref",
// "rec", "cf" (customer, recommendation, answer: see answerField); "st", "sp", "sr",
// "sl", "slp" (started, start print, response, lease, lease print); the
// same with "e" for the end ("en" is ended); "co", "cs", "cr", "cc", "cd"
// (completion time, status, customer, created, duration); "aa" (the AI
// agent's instruction for when its stream ends); "ds" (the dial status);
// "exp". Flags are "1" or
// "", times are ts encoded, and "" is the zero value.
func callHash(c callcontext.CallRecord) map[string]string {
	return map[string]string{
		"base": baseOf(c), "ref": c.CustomerRef, "rec": string(c.Recommendation), "cf": answerField(c.Confirmed, c.Denied),
		"st": ts(c.Started), "sp": c.StartPrint, "sr": string(c.StartResponse), "sl": ts(c.StartLease), "slp": c.StartLeasePrint,
		"en": ts(c.Ended), "ep": c.EndPrint, "er": string(c.EndResponse), "el": ts(c.EndLease), "elp": c.EndLeasePrint,
		"co": ts(c.Completed), "cs": c.CompletionStatus, "cr": c.CompletedRef, "cc": flag(c.CompletionCreated), "cd": strconv.FormatInt(c.CompletedDuration, 10),
		"exp": ts(c.Expires), "rv": revealedField(c.Revealed), "aa": c.AgentAction,
		"ds": c.DialStatus,
	}
}

// revealedField lists refs as "|a|b|", so a script can look for "|ref|".
func revealedField(refs []string) string {
	if len(refs) == 0 {
		return ""
	}
	return "|" + strings.Join(refs, "|") + "|"
}

// Field groups of a call hash.
var (
	allFields   = []string{"base", "ref", "rec", "cf", "st", "sp", "sr", "sl", "slp", "en", "ep", "er", "el", "elp", "co", "cs", "cr", "cc", "cd", "exp", "rv", "aa", "ds"}
	startFields = []string{"base", "ref", "rec", "st", "sp", "sr", "sl", "slp", "exp", "rv"}
	endFields   = []string{"en", "ep", "er", "el", "elp"}
	doneFields  = []string{"co", "cs", "cr", "cc", "cd"}
)

func flag(b bool) string {
	if b {
		return "1"
	}
	return ""
}

// pairs lists the named fields of h as field, value pairs.
func pairs(h map[string]string, names []string) []any {
	out := make([]any, 0, 2*len(names))
	for _, f := range names {
		out = append(out, f, h[f])
	}
	return out
}

// decodeCall rebuilds a call record from its hash; no fields is the zero
// record.
func decodeCall(m map[string]string) (callcontext.CallRecord, error) {
	var c callcontext.CallRecord
	if len(m) == 0 {
		return c, nil
	}
	var b callBase
	if err := json.Unmarshal([]byte(m["base"]), &b); err != nil {
		return c, fmt.Errorf("decode call record: %w", err)
	}
	c.ID, c.ANI, c.DNIS, c.ExternalIDs = b.ID, b.ANI, b.DNIS, b.ExternalIDs
	c.Attestation, c.LineType, c.Matched, c.Contestable = b.Attestation, b.LineType, b.Matched, b.Contestable
	c.CustomerRef, c.Recommendation, c.AgentAction, c.DialStatus = m["ref"], identity.Recommendation(m["rec"]), m["aa"], m["ds"]
	c.Confirmed, c.Denied = m["cf"] == "1", m["cf"] == "0"
	c.StartPrint, c.StartResponse, c.StartLeasePrint = m["sp"], bytesOf(m["sr"]), m["slp"]
	c.EndPrint, c.EndResponse, c.EndLeasePrint = m["ep"], bytesOf(m["er"]), m["elp"]
	c.CompletionStatus, c.CompletedRef, c.CompletionCreated = m["cs"], m["cr"], m["cc"] == "1"
	if cd := m["cd"]; cd != "" {
		var err error
		if c.CompletedDuration, err = strconv.ParseInt(cd, 10, 64); err != nil {
			return c, fmt.Errorf("decode call record: duration: %w", err)
		}
	}
	if rv := strings.Trim(m["rv"], "|"); rv != "" {
		c.Revealed = strings.Split(rv, "|")
	}
	times := map[string]*time.Time{"st": &c.Started, "sl": &c.StartLease, "en": &c.Ended, "el": &c.EndLease, "co": &c.Completed, "exp": &c.Expires}
	for f, dst := range times {
		t, err := parseTS(m[f])
		if err != nil {
			return c, fmt.Errorf("decode call record: %w", err)
		}
		*dst = t
	}
	return c, nil
}

func bytesOf(s string) []byte {
	if s == "" {
		return nil
	}
	return []byte(s)
}

// merge is one change of a call record by mergeScript.
type merge struct {
	id      string
	period  string // of the counter
	counter string // usage field to count, or ""
	ttl     int64
	mode    string // "start", "merge" or "confirm"
	ref     string // the customer whose call set gets the call, if the record names it
	tally   callcontext.Tally
	always  []any // field, value pairs
	fresh   []any // the pairs a new record starts with
}

func (m merge) run(n names) run {
	keys := []string{n.call(m.id), n.usage(m.period), n.tallies(m.tally.At)}
	if m.ref != "" {
		keys = append(keys, n.refCalls(m.ref))
	}
	args := append([]any{m.counter, m.ttl, m.mode, m.ref, len(m.always) / 2, m.tally.Field, callcontext.TallyRetention.Milliseconds()}, m.always...)
	return run{mergeScript, keys, append(args, m.fresh...)}
}

// opField is the prefix of an op's fields in a call hash.
func opField(op callcontext.Op) string {
	if op == callcontext.OpStart {
		return "s"
	}
	return "e"
}

// claimOutcomes maps the claim script's codes.
var claimOutcomes = map[int64]callcontext.Outcome{
	0: callcontext.Claimed, 1: callcontext.Replay, 2: callcontext.Conflict,
	3: callcontext.KeyReused, 4: callcontext.InFlight, 5: callcontext.OverQuota,
}

// Claim implements callcontext.Store in one script in the scope's slot.
func (s *Store) Claim(ctx context.Context, sc callcontext.Scope, c callcontext.Claim) (callcontext.ClaimResult, error) {
	n := s.names(sc)
	keys := []string{n.call(c.CallID), n.usage(c.Period)}
	if c.Key != "" {
		keys = append(keys, n.idem(c.Op, c.Key))
	}
	expires, keyExpires := c.Now.Add(c.Retention), c.Now.Add(c.KeyTTL)
	args := []any{
		ts(c.Now), opField(c.Op), c.Fingerprint, ts(c.Now.Add(c.Lease)), ts(c.Now.Add(-c.Replay)), c.Quota,
		baseOf(callcontext.CallRecord{ID: c.CallID}), ts(expires), ttl(expires, c.Now), ts(keyExpires), ttl(keyExpires, c.Now),
	}
	// The query's index reads ride in the claim's wave; wasted on a replay.
	r := s.resolver(sc, c.Now)
	var reads *indexReads
	cmds, err := s.wave(ctx, "claim", []run{{claimScript, keys, args}}, func(p redis.Pipeliner) {
		if c.Query != nil {
			reads = r.queue(ctx, p, *c.Query)
		}
	})
	if err != nil {
		return callcontext.ClaimResult{}, err
	}
	code, payload, err := reply(cmds[0])
	if err != nil {
		return callcontext.ClaimResult{}, err
	}
	res := callcontext.ClaimResult{Outcome: claimOutcomes[code]}
	switch code {
	case 0:
		if res.Call, err = decodeCall(fields(payload)); err == nil && reads != nil {
			res.Found, err = r.resolve(ctx, *c.Query, reads)
		}
	case 1:
		body, _ := payload.(string)
		res.Response = []byte(body)
	}
	return res, err
}

// Release implements callcontext.Store in one script in the scope's slot.
func (s *Store) Release(ctx context.Context, sc callcontext.Scope, c callcontext.Claim) error {
	n := s.names(sc)
	keys := []string{n.call(c.CallID), n.usage(c.Period)}
	if c.Key != "" {
		keys = append(keys, n.idem(c.Op, c.Key))
	}
	_, err := s.one(ctx, "release", run{releaseScript, keys, []any{ts(c.Now), opField(c.Op), c.Fingerprint}})
	return err
}

// usageField is the counter a finished call adds to.
func usageField(billable bool) string {
	if billable {
		return "billable"
	}
	return "non_billable"
}

// SaveStart implements callcontext.Store in one wave: the call record and
// counters in the scope's slot, the line type in the ANI's. The line type
// is a cache, so it may be written while the call record is not.
func (s *Store) SaveStart(ctx context.Context, sc callcontext.Scope, st callcontext.StartCommit) error {
	n, c := s.names(sc), st.Call
	h := callHash(c)
	h["sl"], h["slp"] = "", ""
	m := merge{id: c.ID, period: st.Period, counter: usageField(st.Billable), ttl: ttl(c.Expires, c.Started), mode: "start",
		ref: c.CustomerRef, tally: st.Tally, always: pairs(h, startFields)}
	runs := []run{m.run(n)}
	for _, ref := range c.Revealed {
		if ref != c.CustomerRef { // the merge files the call under its own customer
			runs = append(runs, run{addCallScript, []string{n.refCalls(ref)}, []any{n.call(c.ID), ttl(c.Expires, c.Started)}})
		}
	}
	if c.ANI != "" && st.LineType != "" && st.LineType != identity.Unknown {
		until := c.Started.Add(st.LinkTTL)
		runs = append(runs, run{setFieldScript, []string{n.ani(c.ANI)}, []any{ttl(until, c.Started), "lt", string(st.LineType), "ltx", ts(until)}})
	}
	_, err := s.wave(ctx, "save start", runs, nil)
	return err
}

// ConfirmCall implements callcontext.Store in one script.
func (s *Store) ConfirmCall(ctx context.Context, sc callcontext.Scope, callID string, c callcontext.Confirmation) error {
	m := merge{id: callID, mode: "confirm", ref: c.CustomerRef, tally: c.Tally,
		always: []any{"cf", answerField(c.Confirmed, c.Denied), "ref", c.CustomerRef, "rec", string(c.Recommendation)}}
	cmd, err := s.one(ctx, "confirm call", m.run(s.names(sc)))
	if err != nil {
		return err
	}
	if cmd.Val() == int64(0) {
		return callcontext.ErrNotFound
	}
	return nil
}

// NoteCall implements callcontext.Store in one script.
func (s *Store) NoteCall(ctx context.Context, sc callcontext.Scope, callID string, n callcontext.CallNote) error {
	m := merge{id: callID, mode: "confirm"}
	for _, f := range [][2]string{{"aa", n.AgentAction}, {"ds", n.DialStatus}} {
		if f[1] != "" {
			m.always = append(m.always, f[0], f[1])
		}
	}
	cmd, err := s.one(ctx, "instruct call", m.run(s.names(sc)))
	if err != nil {
		return err
	}
	if cmd.Val() == int64(0) {
		return callcontext.ErrNotFound
	}
	return nil
}

// Call implements callcontext.Store.
func (s *Store) Call(ctx context.Context, sc callcontext.Scope, id string) (callcontext.CallRecord, error) {
	m, err := s.rdb.HGetAll(ctx, s.names(sc).call(id)).Result()
	if err != nil {
		return callcontext.CallRecord{}, storeErr("read call", err)
	}
	if len(m) == 0 {
		return callcontext.CallRecord{}, callcontext.ErrNotFound
	}
	return decodeCall(m)
}

// Tallies implements callcontext.Store: the hours' hashes, read in one
// pipeline (one wave).
func (s *Store) Tallies(ctx context.Context, sc callcontext.Scope, from, to time.Time) ([]callcontext.HourTally, error) {
	n := s.names(sc)
	var hours []time.Time
	for h := from.UTC().Truncate(time.Hour); !h.After(to); h = h.Add(time.Hour) {
		hours = append(hours, h)
	}
	cmds := make([]*redis.MapStringStringCmd, len(hours))
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, h := range hours {
			cmds[i] = p.HGetAll(ctx, n.tallies(h))
		}
		return nil
	})
	if err != nil {
		return nil, storeErr("read tallies", err)
	}
	var out []callcontext.HourTally
	for i, c := range cmds {
		if len(c.Val()) == 0 {
			continue
		}
		counts := make(map[string]int64, len(c.Val()))
		for f, v := range c.Val() {
			counts[f], _ = strconv.ParseInt(v, 10, 64)
		}
		out = append(out, callcontext.HourTally{Hour: hours[i], Counts: counts})
	}
	return out, nil
}

// Usage implements callcontext.Store.
func (s *Store) Usage(ctx context.Context, sc callcontext.Scope, period string) (callcontext.UsageCount, error) {
	v, err := s.rdb.HMGet(ctx, s.names(sc).usage(period), "requests", "billable", "non_billable").Result()
	if err != nil {
		return callcontext.UsageCount{}, storeErr("read usage", err)
	}
	var n [3]int64
	for i, x := range v {
		if str, ok := x.(string); ok {
			if n[i], err = strconv.ParseInt(str, 10, 64); err != nil {
				return callcontext.UsageCount{}, fmt.Errorf("decode usage: %w", err)
			}
		}
	}
	return callcontext.UsageCount{Requests: n[0], Billable: n[1], NonBillable: n[2]}, nil
}

// LeaseStream implements callcontext.Store in one script in the scope's slot.
func (s *Store) LeaseStream(ctx context.Context, sc callcontext.Scope, callID, holder string, now, expires time.Time) (bool, error) {
	cmd, err := s.one(ctx, "lease stream", run{leaseScript, []string{s.names(sc).stream(callID)}, []any{holder, ts(now), ts(expires), ttl(expires, now)}})
	if err != nil {
		return false, err
	}
	return cmd.Val() == int64(1), nil
}

// ReleaseStream implements callcontext.Store.
func (s *Store) ReleaseStream(ctx context.Context, sc callcontext.Scope, callID, holder string) error {
	_, err := s.one(ctx, "release stream", run{unleaseScript, []string{s.names(sc).stream(callID)}, []any{holder}})
	return err
}
