package redisstore

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/stickycalls/stickycalls/context/callcontext"
	"github.com/stickycalls/stickycalls/context/identity"
	"github.com/stickycalls/stickycalls/context/storage"
)

// callBase is the part of a call record that no script changes, stored
// in the record's "b" field as a MessagePack array, about half the size
// of the JSON map earlier versions stored in "base" (jsonBase, still
// read). The scripts read one element: the matched customer, the sixth
// (matchedOf in callPrelude). The recommendation is the start's; a
// confirmation's answer sets "rec", which then stands.
type callBase struct {
	_msgpack    struct{} `msgpack:",as_array"`
	ANI         string
	DNIS        string
	IDs         []string // the external ids: key, value, key, value…
	Attestation identity.Attestation
	LineType    identity.LineType
	Matched     string
	Contestable bool
	Rec         identity.Recommendation
}

// jsonBase is "base" as earlier versions stored it. The call's id is in
// the record's key; the oldest records have it here too.
type jsonBase struct {
	ID          string               `json:"id,omitempty"`
	ANI         string               `json:"ani,omitempty"`
	DNIS        string               `json:"dnis,omitempty"`
	ExternalIDs []storage.ExternalID `json:"external_ids,omitempty"`
	Attestation identity.Attestation `json:"att,omitempty"`
	LineType    identity.LineType    `json:"lt,omitempty"`
	Matched     string               `json:"m,omitempty"`
	Contestable bool                 `json:"mc,omitempty"`
}

func baseOf(c storage.CallRecord) string {
	b := callBase{ANI: c.ANI, DNIS: c.DNIS, Attestation: c.Attestation, LineType: c.LineType, Matched: c.Matched, Contestable: c.Contestable, Rec: c.Recommendation}
	for _, id := range c.ExternalIDs {
		b.IDs = append(b.IDs, id.Key, id.Value)
	}
	if b.ANI == "" && b.DNIS == "" && b.IDs == nil && b.Attestation == "" && b.LineType == "" && b.Matched == "" && !b.Contestable && b.Rec == "" {
		return ""
	}
	out, _ := msgpack.Marshal(&b) // strings and a bool always encode
	return string(out)
}

// decodeBase reads the base of call id ("b", or "base" of earlier
// versions, in either encoding) into c.
func decodeBase(id, raw string, c *storage.CallRecord) error {
	c.ID = id
	switch {
	case raw == "":
		return nil
	case raw[0] == '{':
		b := jsonBase{ID: id}
		if err := json.Unmarshal([]byte(raw), &b); err != nil {
			return err
		}
		c.ID, c.ANI, c.DNIS, c.ExternalIDs = b.ID, b.ANI, b.DNIS, b.ExternalIDs
		c.Attestation, c.LineType, c.Matched, c.Contestable = b.Attestation, b.LineType, b.Matched, b.Contestable
		return nil
	}
	var b callBase
	if err := msgpack.Unmarshal([]byte(raw), &b); err != nil {
		return err
	}
	if len(b.IDs)%2 != 0 {
		return errors.New("odd external id list")
	}
	for i := 0; i < len(b.IDs); i += 2 {
		c.ExternalIDs = append(c.ExternalIDs, storage.ExternalID{Key: b.IDs[i], Value: b.IDs[i+1]})
	}
	c.ANI, c.DNIS, c.Attestation, c.LineType, c.Matched, c.Contestable = b.ANI, b.DNIS, b.Attestation, b.LineType, b.Matched, b.Contestable
	c.Recommendation = b.Rec
	return nil
}

// packPrint is how a request's fingerprint is kept: callapi.Fingerprint
// gives SHA-256 in hex, and a call record (and an Idempotency-Key's
// record) keeps its first 12 bytes, raw: 12 bytes instead of 64. Prints
// are only compared between requests for one call or one key, for which
// 96 bits are plenty. A print that is not such a hash is
// kept as it is. Prints stored before are the whole hash in hex; the
// scripts compare either (samePrint).
func packPrint(p string) string {
	if len(p) != 2*sha256.Size {
		return p
	}
	var b [12]byte
	if _, err := hex.Decode(b[:], []byte(p[:24])); err != nil {
		return p
	}
	return string(b[:])
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
func callHash(c storage.CallRecord) map[string]string {
	return map[string]string{
		"b": baseOf(c), "ref": refField(c), "cf": answerField(c.Confirmed, c.Denied),
		"st": ts(c.Started), "sp": packPrint(c.StartPrint), "sr": packResponse(c.StartResponse), "sl": ts(c.StartLease), "slp": packPrint(c.StartLeasePrint),
		"en": ts(c.Ended), "ep": packPrint(c.EndPrint), "er": packResponse(c.EndResponse), "el": ts(c.EndLease), "elp": packPrint(c.EndLeasePrint),
		"co": ts(c.Completed), "cs": c.CompletionStatus, "cr": c.CompletedRef, "cc": flag(c.CompletionCreated), "cd": strconv.FormatInt(c.CompletedDuration, 10),
		"exp": ts(c.Expires), "rv": revealedField(shown(c)), "aa": c.AgentAction,
		"ds": c.DialStatus,
	}
}

// refField is the call's customer as "ref" keeps it: left out while it is
// the customer the start matched, which "base" holds (a caller who says
// no to the confirm question gets another).
func refField(c storage.CallRecord) string {
	if c.CustomerRef == c.Matched {
		return ""
	}
	return c.CustomerRef
}

// shown are the customers a start revealed besides the one it matched,
// which it always reveals: "rv" lists them (Erase's script also reads
// the matched customer from "base"); records stored before list both.
func shown(c storage.CallRecord) []string {
	if c.Matched == "" {
		return c.Revealed
	}
	return slices.DeleteFunc(slices.Clone(c.Revealed), func(ref string) bool { return ref == c.Matched })
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
	allFields   = []string{"b", "ref", "cf", "st", "sp", "sr", "sl", "slp", "en", "ep", "er", "el", "elp", "co", "cs", "cr", "cc", "cd", "exp", "rv", "aa", "ds"}
	startFields = []string{"b", "ref", "st", "sp", "sr", "sl", "slp", "exp", "rv"}
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

// decodeCall rebuilds the call record of call id from its fields; no
// fields is the zero record.
func decodeCall(id string, m map[string]string) (storage.CallRecord, error) {
	var c storage.CallRecord
	if len(m) == 0 {
		return c, nil
	}
	if err := decodeBase(id, cmp.Or(m["b"], m["base"]), &c); err != nil {
		return c, fmt.Errorf("decode call record: base: %w", err)
	}
	c.CustomerRef, c.AgentAction, c.DialStatus = cmp.Or(m["ref"], c.Matched), m["aa"], m["ds"]
	c.Recommendation = cmp.Or(identity.Recommendation(m["rec"]), c.Recommendation)
	c.Confirmed, c.Denied = m["cf"] == "1", m["cf"] == "0"
	c.StartPrint, c.StartLeasePrint, c.EndPrint, c.EndLeasePrint = m["sp"], m["slp"], m["ep"], m["elp"]
	var err error
	if c.StartResponse, err = unpackResponse(m["sr"]); err != nil {
		return c, fmt.Errorf("decode call record: %w", err)
	}
	if c.EndResponse, err = unpackResponse(m["er"]); err != nil {
		return c, fmt.Errorf("decode call record: %w", err)
	}
	c.CompletionStatus, c.CompletedRef, c.CompletionCreated = m["cs"], m["cr"], m["cc"] == "1"
	if cd := m["cd"]; cd != "" {
		if c.CompletedDuration, err = strconv.ParseInt(cd, 10, 64); err != nil {
			return c, fmt.Errorf("decode call record: duration: %w", err)
		}
	}
	if c.Matched != "" {
		c.Revealed = []string{c.Matched}
	}
	if rv := strings.Trim(m["rv"], "|"); rv != "" {
		for _, ref := range strings.Split(rv, "|") {
			if ref != c.Matched {
				c.Revealed = append(c.Revealed, ref)
			}
		}
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

// packCall encodes call record fields as a script stores them: a
// MessagePack map, empty fields left out.
func packCall(h map[string]string, names []string) string {
	m := make(map[string]string, len(names))
	for _, f := range names {
		if v := h[f]; v != "" {
			m[f] = v
		}
	}
	b, _ := msgpack.Marshal(m) // a map of strings always encodes
	return string(b)
}

// unpackCall decodes a stored call record's fields; "" is none. A script
// packs a record without fields as an empty array.
func unpackCall(raw string) (map[string]string, error) {
	m := map[string]string{}
	if raw == "" || raw == "\x90" {
		return m, nil
	}
	if err := msgpack.Unmarshal([]byte(raw), &m); err != nil {
		return nil, fmt.Errorf("decode call record: %w", err)
	}
	return m, nil
}

// merge is one change of a call record by mergeScript.
type merge struct {
	id      string
	period  string // of the counter
	counter string // usage field to count, or ""
	ttl     int64
	mode    string // "start", "merge" or "confirm"
	ref     string // the customer whose call set gets the call, if the record names it
	tally   storage.Tally
	always  []any // field, value pairs
	fresh   []any // the pairs a new record starts with
}

func (m merge) run(n names) run {
	keys := []string{n.call(m.id), n.usage(m.period), n.tallies(m.tally.At)}
	if m.ref != "" {
		keys = append(keys, n.refCalls(m.ref))
	}
	args := append([]any{m.counter, m.ttl, m.mode, m.ref, len(m.always) / 2, m.tally.Field, storage.TallyRetention.Milliseconds()}, m.always...)
	return run{mergeScript, keys, append(args, m.fresh...)}
}

// opField is the prefix of an op's fields in a call hash.
func opField(op storage.Op) string {
	if op == storage.OpStart {
		return "s"
	}
	return "e"
}

// claimOutcomes maps the claim script's codes.
var claimOutcomes = map[int64]storage.Outcome{
	0: storage.Claimed, 1: storage.Replay, 2: storage.Conflict,
	3: storage.KeyReused, 4: storage.InFlight, 5: storage.OverQuota,
}

// claimArgs are the claim's arguments (A in callPrelude's claim).
func claimArgs(c storage.Claim) []any {
	expires, keyExpires := c.Now.Add(c.Retention), c.Now.Add(c.KeyTTL)
	op := opField(c.Op)
	fresh := map[string]string{"b": baseOf(storage.CallRecord{}), "exp": ts(expires), op + "l": ts(c.Now.Add(c.Lease)), op + "lp": packPrint(c.Fingerprint)}
	if c.Op == storage.OpStart && c.Quota == 0 {
		fresh["sq"] = "1" // counted when saved
	}
	return []any{
		ts(c.Now), op, packPrint(c.Fingerprint), ts(c.Now.Add(c.Lease)), ts(c.Now.Add(-c.Replay)), c.Quota,
		packCall(fresh, slices.Collect(maps.Keys(fresh))), ts(expires), ttl(expires, c.Now), ts(keyExpires), ttl(keyExpires, c.Now),
	}
}

// Claim implements callcontext.Store in one script in the scope's slot. A
// start's claim on a single node also reads its customers (startScript);
// on a Cluster the index reads ride in the claim's wave and the customers
// are read in a second.
func (s *Store) Claim(ctx context.Context, sc callcontext.Scope, c storage.Claim) (storage.ClaimResult, error) {
	if c.Query != nil && c.Op == storage.OpStart && !s.cluster {
		return s.claimStart(ctx, sc, c)
	}
	n := s.names(sc)
	keys := []string{n.call(c.CallID), n.usage(c.Period)}
	if c.Key != "" {
		keys = append(keys, n.idem(c.Op, c.Key))
	}
	r := s.resolver(sc, c.Now)
	var reads *indexReads
	cmds, err := s.wave(ctx, "claim", []run{{claimScript, keys, claimArgs(c)}}, func(p redis.Pipeliner) {
		if c.Query != nil {
			reads = r.queue(ctx, p, *c.Query)
		}
	})
	if err != nil {
		return storage.ClaimResult{}, err
	}
	res, payload, err := claimed(cmds[0])
	if err == nil && res.Outcome == storage.Claimed {
		if res.Call, err = callOf(c.CallID, payload); err == nil && reads != nil {
			res.Found, err = r.resolve(ctx, *c.Query, reads)
		}
	}
	return res, err
}

// claimed reads a claim's outcome; on Claimed the rest of the reply, on
// Replay the response.
func claimed(cmd *redis.Cmd) (storage.ClaimResult, []any, error) {
	v, _ := cmd.Val().([]any)
	code, payload, err := reply(cmd)
	if err != nil {
		return storage.ClaimResult{}, nil, err
	}
	res := storage.ClaimResult{Outcome: claimOutcomes[code]}
	if code == 1 {
		body, _ := payload.(string)
		if res.Response, err = unpackResponse(body); err != nil {
			return res, nil, err
		}
	}
	return res, v[1:], nil
}

// callOf decodes the record a claim returned as it stood.
func callOf(id string, payload []any) (storage.CallRecord, error) {
	raw := ""
	if len(payload) > 0 {
		raw, _ = payload[0].(string)
	}
	m, err := unpackCall(raw)
	if err != nil {
		return storage.CallRecord{}, err
	}
	return decodeCall(id, m)
}

// Release implements callcontext.Store in one script in the scope's slot.
func (s *Store) Release(ctx context.Context, sc callcontext.Scope, c storage.Claim) error {
	n := s.names(sc)
	keys := []string{n.call(c.CallID), n.usage(c.Period)}
	if c.Key != "" {
		keys = append(keys, n.idem(c.Op, c.Key))
	}
	_, err := s.one(ctx, "release", run{releaseScript, keys, []any{ts(c.Now), opField(c.Op), packPrint(c.Fingerprint)}})
	return err
}

// usageField is the counter a finished call adds to.
func usageField(billable bool) string {
	if billable {
		return "billable"
	}
	return "non_billable"
}

// ConfirmCall implements callcontext.Store in one script.
func (s *Store) ConfirmCall(ctx context.Context, sc callcontext.Scope, callID string, c storage.Confirmation) error {
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
func (s *Store) NoteCall(ctx context.Context, sc callcontext.Scope, callID string, n storage.CallNote) error {
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
func (s *Store) Call(ctx context.Context, sc callcontext.Scope, id string) (storage.CallRecord, error) {
	k := s.names(sc).call(id)
	raw, err := s.rdb.Get(ctx, k).Result()
	var m map[string]string
	switch {
	case errors.Is(err, redis.Nil):
		return storage.CallRecord{}, callcontext.ErrNotFound
	case redis.HasErrorPrefix(err, "WRONGTYPE"): // a hash of an earlier version
		if m, err = s.rdb.HGetAll(ctx, k).Result(); err != nil {
			return storage.CallRecord{}, storeErr("read call", err)
		}
	case err != nil:
		return storage.CallRecord{}, storeErr("read call", err)
	default:
		if m, err = unpackCall(raw); err != nil {
			return storage.CallRecord{}, err
		}
	}
	return decodeCall(id, m)
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
