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
// lays out the answers as the service writes them, the likeliest last
// (DEFLATE's nearer matches cost fewer bits): 288 bytes for the bench's
// returning caller against the first's 328, and it also covers an end's
// answer.
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
		`"greeting":{"tier":"confirm","text":"Hello!"},"greeting":{"tier":"ignore","text":"Hello!"},"billable":true,` +
		`{"call_id":"CA","customer_ref":"cust_","call_start":"2026-0T00:00:00.000Z","identity":{"confidence":0.9,"level":"very_high","recommendation":"reuse",` +
		`"sources":["ani:mobile","external_id"],"candidates":[],"line_type":"mobile","line_type_source":"request"},` +
		`"open_intents":[{"intent":"","status":"open","attempt_count":1,"opened_at":"2026-","last_call_at":"2026-"}],` +
		`"variables":{"":{"value":"","source":"","ttl_seconds":}},"greeting":{"tier":"reuse","text":"Hello!"},"billable":false,` +
		`"match":{"customer_ref":"cust_","open_intents":[{"intent":"","status":"open","attempt_count":1,"opened_at":"2026-","last_call_at":"2026-"}],"variables":{"":""}},"confidence":0.9}`),
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

// packResponse is how a response is stored.
func packResponse(body []byte) string {
	if len(body) < minCompressed {
		return string(body)
	}
	var buf bytes.Buffer
	buf.WriteByte(responseDict2)
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
	if int(stored[0]) >= len(responseDicts) || responseDicts[stored[0]] == nil {
		return nil, fmt.Errorf("inflate response: no dictionary %d", stored[0])
	}
	r := inflaters.get()
	defer inflaters.put(r)
	if err := r.(flate.Resetter).Reset(strings.NewReader(stored[1:]), responseDicts[stored[0]]); err != nil {
		return nil, fmt.Errorf("inflate response: %w", err)
	}
	body, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("inflate response: %w", err)
	}
	return body, nil
}
