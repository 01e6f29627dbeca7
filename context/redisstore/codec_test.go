package redisstore

import (
	"bytes"
	"compress/flate"
	"encoding/json"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/stickycalls/stickycalls/context/storage"
)

// returningCustomer is a customer after a few calls: two ANIs, a CRM id,
// an open intent and a closed one, ten variables and ten calls.
func returningCustomer() storage.Record {
	t := time.Date(2026, 11, 3, 14, 5, 6, 123456789, time.UTC)
	link := storage.Link{LastCall: t, Expires: t.Add(90 * 24 * time.Hour), Calls: 4, Attested: 3, Yes: 1, Seen: t}
	r := storage.Record{
		Ref: "cust_8f3a2b", Version: 7, Created: t.Add(-30 * 24 * time.Hour), FirstCall: t.Add(-30 * 24 * time.Hour), LastCall: t,
		ANIs:        map[string]storage.Link{"+14155550123": link, "+14155550987": {LastCall: t.Add(-time.Hour), Expires: t.Add(89 * 24 * time.Hour)}},
		ExternalIDs: map[string]storage.Link{"crm_id:CRM-0012345": link},
		Intents:     []storage.Intent{{Name: "refund", Status: "open", Attempts: 2, Opened: t.Add(-48 * time.Hour), LastCall: t}},
		History:     []storage.Intent{{Name: "billing", Status: "resolved", Attempts: 1, Opened: t.Add(-30 * 24 * time.Hour), LastCall: t.Add(-29 * 24 * time.Hour), Closed: t.Add(-29 * 24 * time.Hour)}},
		Variables:   map[string]storage.Variable{},
		Yes:         1, Expires: t.Add(90 * 24 * time.Hour),
	}
	for i := range 10 {
		r.Variables[fmt.Sprintf("var_%d", i)] = storage.Variable{Value: fmt.Sprintf("value number %d", i), Source: "call_abc", Expires: t.Add(30 * 24 * time.Hour)}
		r.Calls = append(r.Calls, storage.CallRef{ID: fmt.Sprintf("CA%032d", i), At: t.Add(-time.Duration(i) * 24 * time.Hour), Ended: true})
	}
	return r
}

func TestRecordCodec(t *testing.T) {
	r := returningCustomer()
	raw, err := encodeRecord(r)
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeRecord(raw)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(r, got); diff != "" {
		t.Errorf("decodeRecord(encodeRecord(r)) differs (-want +got):\n%s", diff)
	}
	legacy, _ := json.Marshal(r)
	if got, err := decodeRecord(legacy); err != nil || !cmp.Equal(r, got) {
		t.Errorf("decodeRecord(JSON) = %v, %v; want the record", cmp.Diff(r, got), err)
	}
	t.Logf("returning customer: %d bytes in MessagePack, %d in JSON", len(raw), len(legacy))
}

// BenchmarkRecordCodec encodes and decodes a returning customer's record,
// as an end does (a start only decodes it).
func BenchmarkRecordCodec(b *testing.B) {
	r := returningCustomer()
	codecs := map[string]struct {
		enc func(storage.Record) ([]byte, error)
		dec func([]byte) (storage.Record, error)
	}{
		"json": {func(r storage.Record) ([]byte, error) { return json.Marshal(r) },
			func(raw []byte) (storage.Record, error) {
				var r storage.Record
				return r, json.Unmarshal(raw, &r)
			}},
		"msgpack": {encodeRecord, decodeRecord},
	}
	for name, c := range codecs {
		b.Run(name, func(b *testing.B) {
			raw, _ := c.enc(r)
			b.ReportAllocs()
			for b.Loop() {
				raw, err := c.enc(r)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := c.dec(raw); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(raw)), "bytes")
		})
		b.Run(name+"/decode", func(b *testing.B) {
			raw, _ := c.enc(r)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.dec(raw); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func TestResponseCodec(t *testing.T) {
	long, _ := json.Marshal(returningCustomer())
	// Earlier versions compressed with the first dictionary.
	var old bytes.Buffer
	old.WriteByte(1)
	w, _ := flate.NewWriterDict(&old, flate.DefaultCompression, responseDicts[1])
	w.Write(long)
	w.Close()
	if got, err := unpackResponse(old.String()); err != nil || string(got) != string(long) {
		t.Errorf("unpackResponse(compressed with dictionary 1) = %d bytes, %v; want them back", len(got), err)
	}
	if _, err := unpackResponse("\x07" + old.String()[1:]); err == nil {
		t.Error("unpackResponse(compressed with dictionary 7) succeeded; there is none")
	}
	for _, body := range [][]byte{nil, []byte(`{"short":true}`), long} {
		stored := packResponse(body)
		got, err := unpackResponse(stored)
		if err != nil || string(got) != string(body) {
			t.Errorf("unpackResponse(packResponse(%d bytes)) = %d bytes, %v; want them back", len(body), len(got), err)
		}
		if len(body) >= minCompressed && len(stored) >= len(body)/2 {
			t.Errorf("packResponse(%d bytes) = %d bytes, want compressed", len(body), len(stored))
		}
	}
}

// TestResponseMatch checks that a start's answer comes back byte for byte
// whether or not its match object could be left out: the object as the
// service writes it is rebuilt, any other is kept.
func TestResponseMatch(t *testing.T) {
	const head = `{"call_id":"CA1","customer_ref":"cust_1","call_start":"2026-03-01T09:00:00.000Z",` +
		`"identity":{"confidence":0.9,"level":"very_high","recommendation":"reuse","sources":["ani:mobile"],"candidates":[]},` +
		`"open_intents":[{"intent":"refund","status":"open","attempt_count":2,"opened_at":"2026-02-01T09:00:00.000Z","last_call_at":"2026-02-01T09:00:00.000Z"}],` +
		`"variables":{"city":{"value":"Lyon \u003c3 \"left bank\"","source":"CA0","ttl_seconds":86400},"name":{"value":"Ada","source":"CA0","ttl_seconds":86400}},` +
		`"greeting":{"tier":"reuse","text":"Welcome back, Ada!"},"billable":false`
	const tail = `,"confidence":0.9}`
	rebuilt := `,"match":{"customer_ref":"cust_1","open_intents":[{"intent":"refund","status":"open","attempt_count":2,"opened_at":"2026-02-01T09:00:00.000Z","last_call_at":"2026-02-01T09:00:00.000Z"}],` +
		`"variables":{"city":"Lyon \u003c3 \"left bank\"","name":"Ada"}}`
	for _, tc := range []struct {
		name, body string
		leftOut    bool
	}{
		{"the service's match", head + rebuilt + tail, true},
		{"a match with other values", head + strings.Replace(rebuilt, `"Ada"`, `"Bea"`, 1) + tail, false},
		{"no match", head + tail, false},
		{"an end's answer", `{"call_id":"CA1","customer_ref":"cust_1","call_start":"2026-03-01T09:00:00.000Z","call_end":"2026-03-01T09:05:00.000Z","duration_seconds":300,"intents_updated":1,"variables_updated":2,"billable":true}`, false},
	} {
		stored := packResponse([]byte(tc.body))
		if got := stored[0]&matchLeftOut != 0; got != tc.leftOut {
			t.Errorf("%s: match left out %v, want %v", tc.name, got, tc.leftOut)
		}
		if got, err := unpackResponse(stored); err != nil || string(got) != tc.body {
			t.Errorf("%s: unpackResponse(packResponse(body)) = %s, %v; want the body", tc.name, got, err)
		}
	}
}

// FuzzResponse checks that any answer comes back byte for byte, whatever
// rebuildMatch makes of it.
func FuzzResponse(f *testing.F) {
	f.Add(`{"customer_ref":"c","open_intents":[],"variables":{"a":{"value":"x\\\"}"}},"match":{"customer_ref":"c","open_intents":[],"variables":{"a":"x\\\"}"}},"confidence":1}`)
	f.Add(`{"customer_ref":"c","open_intents":[{"intent":"a"}],"variables":{},"match":{"customer_ref":"c","open_intents":[{"intent":"a"}],"variables":{}},"confidence":0.4}`)
	f.Add(`{"customer_ref":"c","variables":{"a":{"value":[1,{"}":"]"}]}},"match":{},"confidence":`)
	f.Fuzz(func(t *testing.T, body string) {
		padded := body + strings.Repeat(" ", max(0, minCompressed-len(body)))
		if got, err := unpackResponse(packResponse([]byte(padded))); err != nil || string(got) != padded {
			t.Errorf("unpackResponse(packResponse(%q)) = %q, %v", padded, got, err)
		}
	})
}

// TestCallBase checks that a call record's base reads back, and reads as
// earlier versions stored it, in JSON.
func TestCallBase(t *testing.T) {
	want := storage.CallRecord{ID: "CA1", ANI: "+14155550100", DNIS: "+18005550100", Attestation: "A", LineType: "mobile",
		ExternalIDs: []storage.ExternalID{{Key: "crm_id", Value: "C1"}, {Key: "zendesk", Value: "Z9"}}, Matched: "cust_1", Contestable: true, Recommendation: "confirm"}
	raw := baseOf(want)
	var got storage.CallRecord
	if err := decodeBase("CA1", raw, &got); err != nil || !cmp.Equal(got, want) {
		t.Errorf("decodeBase(baseOf(c)) = %v, %v", cmp.Diff(want, got), err)
	}
	legacy := `{"id":"CA1","ani":"+14155550100","dnis":"+18005550100","external_ids":[{"key":"crm_id","value":"C1"},{"key":"zendesk","value":"Z9"}],"att":"A","lt":"mobile","m":"cust_1","mc":true}`
	legacyWant := want
	legacyWant.Recommendation = "" // earlier versions kept it beside the base
	got = storage.CallRecord{}
	if err := decodeBase("CA1", legacy, &got); err != nil || !cmp.Equal(got, legacyWant) {
		t.Errorf("decodeBase(JSON) = %v, %v", cmp.Diff(legacyWant, got), err)
	}
	t.Logf("base: %d bytes, %d in JSON", len(raw), len(legacy))
	if baseOf(storage.CallRecord{ID: "CA1"}) != "" {
		t.Error("baseOf(a record with only an id) is not empty")
	}
}

// BenchmarkPackResponse packs a returning caller's start answer as a busy
// server does: with garbage collections in between, which emptied the
// sync.Pool the compressors were kept in before.
func BenchmarkPackResponse(b *testing.B) {
	body, _ := json.Marshal(returningCustomer())
	for b.Loop() {
		packResponse(body)
		b.StopTimer()
		runtime.GC()
		b.StartTimer()
	}
}
