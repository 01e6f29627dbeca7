// Package storecodec is how the stores encode what they keep: MessagePack
// maps keyed by the types' JSON names, which decode in about a third of
// encoding/json's time and take about two thirds of its size (the Redis
// store measured it: BenchmarkRecordCodec). Values written as JSON before
// still decode: every value is a struct or a map, so JSON starts with '{'
// and MessagePack never does. Times decode in UTC, as they did from JSON,
// so a value read back marshals to the same JSON it was written from.
package storecodec

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"reflect"
	"time"

	"github.com/vmihailenco/msgpack/v5"
)

// Encode encodes v, a struct or a map.
func Encode(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := msgpack.NewEncoder(&buf)
	enc.SetCustomStructTag("json")
	enc.SetOmitEmpty(true)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Decode decodes raw, MessagePack or JSON, into v.
func Decode(raw []byte, v any) error {
	if len(raw) > 0 && raw[0] == '{' {
		return json.Unmarshal(raw, v)
	}
	dec := msgpack.NewDecoder(bytes.NewReader(raw))
	dec.SetCustomStructTag("json")
	return dec.Decode(v)
}

// The MessagePack library decodes a timestamp in the process's local zone;
// this decoder of its timestamp extension (-1) gives the same instant in
// UTC. Registering it replaces the library's for the whole process.
func init() {
	msgpack.RegisterExtDecoder(-1, time.Time{}, func(d *msgpack.Decoder, v reflect.Value, extLen int) error {
		b := make([]byte, extLen)
		if err := d.ReadFull(b); err != nil {
			return err
		}
		t, err := timestamp(b)
		if err != nil {
			return err
		}
		*v.Addr().Interface().(*time.Time) = t
		return nil
	})
}

// timestamp reads the MessagePack timestamp extension's 4, 8 or 12 bytes
// (seconds; seconds and nanoseconds packed in 34 and 30 bits; nanoseconds
// then seconds). The zero time is encoded as -62135596800 seconds and
// comes back as time.Time{}.
func timestamp(b []byte) (time.Time, error) {
	var sec, nsec int64
	switch len(b) {
	case 4:
		sec = int64(binary.BigEndian.Uint32(b))
	case 8:
		v := binary.BigEndian.Uint64(b)
		sec, nsec = int64(v&0x3ffffffff), int64(v>>34)
	case 12:
		nsec, sec = int64(binary.BigEndian.Uint32(b)), int64(binary.BigEndian.Uint64(b[4:]))
	default:
		return time.Time{}, fmt.Errorf("msgpack: a timestamp of %d bytes", len(b))
	}
	return time.Unix(sec, nsec).UTC(), nil
}
