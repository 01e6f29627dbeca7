package redisstore

import (
	"bytes"
	"compress/flate"
	"fmt"
	"io"
	"runtime"
	"strings"

	"github.com/stickycalls/stickycalls/context/storage"
	"github.com/stickycalls/stickycalls/context/storecodec"
)

// Customer records are stored as MessagePack maps keyed by the records'
// JSON names (BenchmarkRecordCodec: encode and decode of a returning
// customer take about a third of encoding/json's time and the record is
// about two thirds of its JSON size). Records written as JSON before are
// still read: a MessagePack map never starts with '{', and the next write
// of such a customer stores it in MessagePack.

// encodeRecord encodes a customer record for its hash's "rec" field.
func encodeRecord(r storage.Record) ([]byte, error) {
	b, err := storecodec.Encode(&r)
	if err != nil {
		return nil, fmt.Errorf("encode customer %q: %w", r.Ref, err)
	}
	return b, nil
}

// decodeRecord decodes a stored customer record, in either encoding.
func decodeRecord(raw []byte) (storage.Record, error) {
	var r storage.Record
	return r, storecodec.Decode(raw, &r)
}

// Stored responses: a call record keeps the answers replays return. A
// start's answer (about 1.7 KB of JSON for a returning caller with ten
// variables) was most of a call record's memory; compressed with DEFLATE
// and a dictionary of the answers' own shape it takes a sixth of it
// (TestStartMemory). A compressed response starts with its dictionary's
// number; JSON starts with '{', so responses stored uncompressed before
// are read as they are.
const responseDict2 = 2

// responseDicts are the dictionaries by number. Their bytes must never
// change: stored responses need them to inflate; another dictionary gets
// another number. The first is what earlier versions wrote. The second
// lays out the answers as the service writes them, with the built-in
// greetings, the likeliest last (DEFLATE's nearer matches cost fewer
// bits), and covers an end's answer too: the bench's returning caller's
// answer compresses to 321 bytes with it, 363 with the same layout
// without the greetings (before its match object is left out).
var responseDicts = [...][]byte{
	1: []byte(`{"call_id":"","customer_ref":"","call_start":"T00:00:00.000Z","identity":{"confidence":0.,"level":"very_high",` +
		`"level":"high","level":"medium","level":"low","recommendation":"reuse","recommendation":"confirm","recommendation":"ignore",` +
		`"sources":["ani:mobile","ani:landline","ani:voip","external_id","customer_ref","recency:1day","recency:"],"candidates":[],` +
		`"line_type":"mobile","line_type_source":"request","line_type_source":"lookup","line_type_source":"remembered"},` +
		`"open_intents":[{"intent":"","status":"open","attempt_count":1,"opened_at":"","last_call_at":""}],` +
		`"variables":{"value":"","source":"","ttl_seconds":},"greeting":{"tier":"","text":""},"billable":false,"billable":true,` +
		`"match":{"customer_ref":"","open_intents":[],"variables":{}},"confidence":0.`),
	responseDict2: []byte(`"level":"high","level":"medium","level":"low","recommendation":"confirm","recommendation":"ignore",` +
		`"ani:landline","ani:voip","customer_ref","recency:1day","recency:","line_type":"landline","line_type":"voip",` +
		`"line_type_source":"lookup","line_type_source":"remembered"},"candidates":[{"customer_ref":"cust_","confidence":0.` +
		`"call_end":"2026-0T00:00:00.000Z","duration_seconds":,"intents_updated":,"variables_updated":,"billable":true}` +
		`"greeting":{"tier":"confirm","text":"Hello! Am I speaking with ? Press 1 or say yes."},` +
		`"greeting":{"tier":"ignore","text":"Hello! Thanks for calling. May I have your name?"},"billable":true,` +
		`{"call_id":"CA","customer_ref":"cust_","call_start":"2026-0T00:00:00.000Z","identity":{"confidence":0.9,"level":"very_high","recommendation":"reuse",` +
		`"sources":["ani:mobile","external_id"],"candidates":[],"line_type":"mobile","line_type_source":"request"},` +
		`"open_intents":[{"intent":"","status":"open","attempt_count":1,"opened_at":"2026-","last_call_at":"2026-"}],` +
		`"variables":{"":{"value":"","source":"","ttl_seconds":}},` +
		`"greeting":{"tier":"reuse","text":"Welcome back, ! I see you called times about . Has that been resolved?"},"billable":false,` +
		`"confidence":0.9}`),
}

// minCompressed is the shortest response worth compressing. An end's
// answer (about 230 bytes) compresses to about 60 in 10 µs, which moves
// an ended call's record down a size class of Redis's allocator: 256
// bytes less for the 7 days it is kept.
const minCompressed = 128

// Compressors are kept on free lists rather than in a sync.Pool: a
// flate.Writer takes about 800 KB and half a millisecond to make, and a
// sync.Pool drops what it holds at every other garbage collection, which
// a busy server runs many times a second, so most starts paid for a new
// one (BenchmarkPackResponse).
var (
	deflaters = newFreeList(func() *flate.Writer {
		w, _ := flate.NewWriterDict(nil, flate.DefaultCompression, responseDicts[responseDict2]) // a valid level never fails
		return w
	})
	inflaters = newFreeList(func() io.ReadCloser { return flate.NewReaderDict(nil, responseDicts[responseDict2]) })
)

// freeList keeps up to a few values per CPU for reuse, through garbage
// collections.
type freeList[T any] struct {
	free  chan T
	fresh func() T
}

func newFreeList[T any](fresh func() T) *freeList[T] {
	return &freeList[T]{free: make(chan T, 4*runtime.GOMAXPROCS(0)), fresh: fresh}
}

func (l *freeList[T]) get() T {
	select {
	case v := <-l.free:
		return v
	default:
		return l.fresh()
	}
}

func (l *freeList[T]) put(v T) {
	select {
	case l.free <- v:
	default:
	}
}

// A start's answer ends with the public API's "match" object, which
// repeats the customer, the open intents and the variables' values. A
// stored answer leaves it out when it can be rebuilt from the rest
// (about 48 bytes of a returning caller's compressed answer), and says so
// with matchLeftOut on its first byte. packResponse rebuilds the object
// before it leaves it out, and keeps the whole answer when the rebuild
// differs by a byte, so a replay is always the first answer, byte for byte.
const matchLeftOut = 0x80

var (
	matchField      = []byte(`,"match":{`)
	confidenceField = []byte(`,"confidence":`)
)

// withoutMatch is body without its match object, if rebuildMatch gives it
// back exactly.
func withoutMatch(body []byte) ([]byte, bool) {
	i, j := bytes.LastIndex(body, matchField), bytes.LastIndex(body, confidenceField)
	if i < 0 || j < i {
		return nil, false
	}
	out := append(append(make([]byte, 0, len(body)-(j-i)), body[:i]...), body[j:]...)
	if m, err := rebuildMatch(out); err != nil || !bytes.Equal(m, body[i:j]) {
		return nil, false
	}
	return out, true
}

// withMatch puts back the match object withoutMatch left out.
func withMatch(body []byte) ([]byte, error) {
	m, err := rebuildMatch(body)
	if err != nil {
		return nil, fmt.Errorf("rebuild match: %w", err)
	}
	j := bytes.LastIndex(body, confidenceField)
	return append(append(append(make([]byte, 0, len(body)+len(m)), body[:j]...), m...), body[j:]...), nil
}

// rebuildMatch makes an answer's `,"match":{…}` from its other fields,
// copying their JSON as it stands: the customer_ref, the open_intents and
// each variable's name and value (decoding the answer instead took 30 µs).
// The answer is compact JSON, as encoding/json writes it; anything else
// fails, or rebuilds differently and is then stored whole.
func rebuildMatch(answer []byte) ([]byte, error) {
	ref, err := topField(answer, `,"customer_ref":`)
	if err != nil {
		return nil, err
	}
	intents, err := topField(answer, `,"open_intents":`)
	if err != nil {
		return nil, err
	}
	vars, err := topField(answer, `,"variables":`)
	if err != nil {
		return nil, err
	}
	m := append(append([]byte{}, matchField...), `"customer_ref":`...)
	m = append(append(m, ref...), `,"open_intents":`...)
	m = append(append(m, intents...), `,"variables":{`...)
	// {"name":{"value":"…","source":"…",…},…} → {"name":"…",…}
	for i := 1; i < len(vars) && vars[i] != '}'; {
		name, end, err := jsonValue(vars, i)
		if err != nil || end+1 >= len(vars) || vars[end] != ':' || vars[end+1] != '{' {
			return nil, fmt.Errorf("variables: %q", vars)
		}
		entry, next, err := jsonValue(vars, end+1)
		if err != nil {
			return nil, err
		}
		value, err := topField(append([]byte{','}, entry[1:]...), `,"value":`)
		if err != nil {
			return nil, err
		}
		if m[len(m)-1] != '{' {
			m = append(m, ',')
		}
		m = append(append(append(m, name...), ':'), value...)
		if i = next; i < len(vars) && vars[i] == ',' {
			i++
		}
	}
	return append(m, '}', '}'), nil
}

// topField is the JSON value after the first key (written `,"key":`) in
// doc. Inside a JSON string a quote is escaped, so the key cannot be
// found in one.
func topField(doc []byte, key string) ([]byte, error) {
	i := bytes.Index(doc, []byte(key))
	if i < 0 {
		return nil, fmt.Errorf("no %s", key)
	}
	v, _, err := jsonValue(doc, i+len(key))
	return v, err
}

// jsonValue returns the JSON value starting at doc[i] and where it ends.
func jsonValue(doc []byte, i int) (value []byte, end int, err error) {
	depth, inString := 0, false
	for j := i; j < len(doc); j++ {
		c := doc[j]
		switch {
		case inString && c == '\\':
			j++
		case inString:
			inString = c != '"'
			if !inString && depth == 0 {
				return doc[i : j+1], j + 1, nil
			}
		case c == '"':
			inString = true
		case c == '{' || c == '[':
			depth++
		case c == '}' || c == ']':
			if depth--; depth == 0 {
				return doc[i : j+1], j + 1, nil
			}
			if depth < 0 {
				return doc[i:j], j, nil
			}
		case c == ',' && depth == 0:
			return doc[i:j], j, nil
		}
	}
	return nil, 0, fmt.Errorf("unterminated JSON value at %d", i)
}

// packResponse is how a response is stored.
func packResponse(body []byte) string {
	if len(body) < minCompressed {
		return string(body)
	}
	var buf bytes.Buffer
	if short, ok := withoutMatch(body); ok {
		buf.WriteByte(responseDict2 | matchLeftOut)
		body = short
	} else {
		buf.WriteByte(responseDict2)
	}
	w := deflaters.get()
	defer deflaters.put(w)
	w.Reset(&buf)
	w.Write(body) // writes to a bytes.Buffer do not fail
	w.Close()
	return buf.String()
}

// unpackResponse reads a stored response.
func unpackResponse(stored string) ([]byte, error) {
	if stored == "" {
		return nil, nil
	}
	if stored[0] == '{' {
		return []byte(stored), nil
	}
	dict := stored[0] &^ matchLeftOut
	if int(dict) >= len(responseDicts) || responseDicts[dict] == nil {
		return nil, fmt.Errorf("inflate response: no dictionary %d", dict)
	}
	r := inflaters.get()
	defer inflaters.put(r)
	if err := r.(flate.Resetter).Reset(strings.NewReader(stored[1:]), responseDicts[dict]); err != nil {
		return nil, fmt.Errorf("inflate response: %w", err)
	}
	body, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("inflate response: %w", err)
	}
	if stored[0]&matchLeftOut != 0 {
		return withMatch(body)
	}
	return body, nil
}
