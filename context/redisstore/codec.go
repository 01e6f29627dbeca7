package redisstore

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/stickycalls/stickycalls/context/callcontext"
)

// Customer records are stored as MessagePack maps keyed by the records'
// JSON names (BenchmarkRecordCodec: encode and decode of a returning
// customer take about a third of encoding/json's time and the record is
// about two thirds of its JSON size). Records written as JSON before are
// still read: a MessagePack map never starts with '{', and the next write
// of such a customer stores it in MessagePack.

// encodeRecord encodes a customer record for its hash's "rec" field.
func encodeRecord(r callcontext.Record) ([]byte, error) {
	var buf bytes.Buffer
	enc := msgpack.NewEncoder(&buf)
	enc.SetCustomStructTag("json")
	enc.SetOmitEmpty(true)
	if err := enc.Encode(&r); err != nil {
		return nil, fmt.Errorf("encode customer %q: %w", r.Ref, err)
	}
	return buf.Bytes(), nil
}

// decodeRecord decodes a stored customer record, in either encoding.
func decodeRecord(raw []byte) (callcontext.Record, error) {
	var r callcontext.Record
	if len(raw) > 0 && raw[0] == '{' {
		return r, json.Unmarshal(raw, &r)
	}
	dec := msgpack.NewDecoder(bytes.NewReader(raw))
	dec.SetCustomStructTag("json")
	return r, dec.Decode(&r)
}
