package bench

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/stickycalls/stickycalls/context/callcontext"
	"github.com/stickycalls/stickycalls/context/identity"
	"github.com/stickycalls/stickycalls/context/keys"
	"github.com/stickycalls/stickycalls/context/storage"
	"github.com/stickycalls/stickycalls/voice"
)

// The seeded customers. Customer i called once, seedAge ago, from a mobile
// number with a CRM id, and the end of that call opened an intent and
// saved ten variables; its call record has expired since.
const (
	seedAge         = 10 * 24 * time.Hour
	seedLinkTTL     = 90 * 24 * time.Hour // the service's default link TTL
	seedVariableTTL = 30 * 24 * time.Hour // the service's default variable TTL
	seedIntent      = "refund_request"
	seedChunk       = 10_000 // customers built and handed to Seed at once
	benchDNIS       = "+18005550100"
)

// CustomerRef, CustomerANI and CustomerCRM are seeded customer i's ref,
// mobile number and CRM id. The backup tests generate their customers
// here too.
func CustomerRef(i int) string { return fmt.Sprintf("cust_%024x", i) }
func CustomerANI(i int) string { return fmt.Sprintf("+1415%07d", i) }
func CustomerCRM(i int) string { return fmt.Sprintf("crm_%07d", i) }
func seedCallID(i int) string  { return fmt.Sprintf("seed_%d", i) }

// seedVariables are the ten variables customer i's end saved.
func seedVariables(i int) map[string]string {
	return map[string]string{
		"name": fmt.Sprintf("Customer %d", i), "tier": "gold", "language": "en-US", "city": "San Francisco",
		"last_order": fmt.Sprintf("A-%d", i), "balance": fmt.Sprintf("%d.00", i%1000), "agent": fmt.Sprintf("agent_%d", i%50),
		"channel": "phone", "product": "fiber-500", "note": "prefers callbacks in the morning",
	}
}

// SeedRecord is customer i as the end of its call at ended wrote it.
func SeedRecord(i int, ended time.Time) storage.Record {
	link := storage.Link{LastCall: ended, Expires: ended.Add(seedLinkTTL)}
	aniLink := link
	aniLink.Calls, aniLink.Seen = 1, ended // the seeded call, which came with no attestation
	vars := map[string]storage.Variable{}
	for k, v := range seedVariables(i) {
		vars[k] = storage.Variable{Value: v, Source: seedCallID(i), Expires: ended.Add(seedVariableTTL)}
	}
	return storage.Record{
		Ref: CustomerRef(i), Version: 1, Created: ended, FirstCall: ended, LastCall: ended,
		ANIs:        map[string]storage.Link{CustomerANI(i): aniLink},
		ExternalIDs: map[string]storage.Link{"crm_id:" + CustomerCRM(i): link},
		Intents:     []storage.Intent{{Name: seedIntent, Status: "open", Attempts: 1, Opened: ended, LastCall: ended}},
		Variables:   vars,
		Calls:       []storage.CallRef{{ID: seedCallID(i), At: ended, Ended: true, Created: true}},
		Expires:     ended.Add(seedLinkTTL),
	}
}

// seedStore is a store that can bulk-load customers.
type seedStore interface {
	callcontext.Store
	keys.Store
	CacheLineType(ctx context.Context, e164 string, lt identity.LineType, expires time.Time) error
	Seed(ctx context.Context, sc callcontext.Scope, recs []storage.Record, now time.Time) error
	Close() error
}

// seedCustomers loads customers from up to to (exclusive) into sc, in
// chunks, with workers chunks at once.
func seedCustomers(ctx context.Context, s seedStore, sc callcontext.Scope, from, to, workers int, now time.Time) error {
	chunks := make(chan int)
	errc := make(chan error, workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for first := range chunks {
				recs := make([]storage.Record, 0, seedChunk)
				for i := first; i < min(first+seedChunk, to); i++ {
					recs = append(recs, SeedRecord(i, now.Add(-seedAge)))
				}
				if err := s.Seed(ctx, sc, recs, now); err != nil {
					errc <- err
					return
				}
			}
		}()
	}
	var err error
feed:
	for first := from; first < to; first += seedChunk {
		select {
		case chunks <- first:
		case err = <-errc:
			break feed
		}
	}
	close(chunks)
	wg.Wait()
	close(errc)
	if err != nil {
		return fmt.Errorf("seed: %w", err)
	}
	if err := <-errc; err != nil {
		return fmt.Errorf("seed: %w", err)
	}
	return nil
}

// cacheLineTypes caches Lookup's answer "mobile" for the numbers of the
// first n customers, as a Lookup of each would have.
func cacheLineTypes(ctx context.Context, s seedStore, n int, now time.Time) error {
	for i := range n {
		if err := s.CacheLineType(ctx, CustomerANI(i), "mobile", now.Add(30*24*time.Hour)); err != nil {
			return fmt.Errorf("cache line type: %w", err)
		}
	}
	return nil
}

// mix spreads request numbers over the customers (splitmix64).
func mix(i int64) uint64 {
	z := uint64(i) + 0x9e3779b97f4a7c15
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// startedCall is a call a returning-caller start began, for an end.
type startedCall struct {
	id, ref string
}

// callPool holds started calls, oldest first.
type callPool struct {
	mu    sync.Mutex
	calls []startedCall
}

func (p *callPool) push(c startedCall) {
	p.mu.Lock()
	p.calls = append(p.calls, c)
	p.mu.Unlock()
}

func (p *callPool) pop() (startedCall, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.calls) == 0 {
		return startedCall{}, false
	}
	c := p.calls[0]
	p.calls = p.calls[1:]
	return c, true
}

func (p *callPool) len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.calls)
}

// workloads builds the bench's requests against one server.
type workloads struct {
	base      string // the server's URL
	key       string // API key, prod mode of tenant default
	customers int    // seeded so far
	voiceSet  int    // customers whose line type Lookup has cached
	twilio    twilioAccount
	pool      *callPool
}

// twilioAccount is the tenant's Twilio account the voice webhooks are
// signed for.
type twilioAccount struct{ sid, token string }

func callID(i int64) string { return "bench_" + strconv.FormatInt(i, 10) }

func (w *workloads) returning(i int64) int { return int(mix(i) % uint64(w.customers)) }

func (w *workloads) post(path, contentType string, body []byte) *http.Request {
	req, _ := http.NewRequest("POST", w.base+path, bytes.NewReader(body))
	req.Header.Set("Content-Type", contentType)
	if w.key != "" {
		req.Header.Set("Authorization", "Bearer "+w.key)
	}
	return req
}

// Workload names, as the report shows them.
const (
	returningName = "start, returning caller"
	newName       = "start, new caller"
	endName       = "end, intent + 5 variables"
	voiceName     = "voice/incoming, Lookup cached"
)

// startBody is a returning caller's start: mobile number and CRM id.
func (w *workloads) startBody(i int64) []byte {
	c := w.returning(i)
	return fmt.Appendf(nil, `{"call_id":%q,"identity_hints":{"ani":%q,"external_ids":{"crm_id":%q}},"telco":{"line_type":"mobile"}}`,
		callID(i), CustomerANI(c), CustomerCRM(c))
}

// newBody is the start of a caller never seen.
func (w *workloads) newBody(i int64) []byte {
	return fmt.Appendf(nil, `{"call_id":%q,"identity_hints":{"ani":"+1650%07d"},"telco":{"line_type":"mobile"}}`, callID(i), mix(i)%10_000_000)
}

// endBody ends a started call with an intent and five variables.
func (w *workloads) endBody(i int64, c startedCall) []byte {
	return fmt.Appendf(nil, `{"call_id":%q,"customer_ref":%q,"intent":%q,"intent_status":"open",`+
		`"variables":{"last_order":"A-%d","balance":"%d.00","agent":"agent_%d","note":"called about order A-%d","channel":"phone"}}`,
		c.id, c.ref, seedIntent, i, i%1000, i%50, i)
}

// voiceForm is Twilio's incoming-call webhook from a seeded customer whose
// line type Lookup has cached.
func (w *workloads) voiceForm(i int64) url.Values {
	return url.Values{
		"CallSid": {fmt.Sprintf("CA%032x", i)}, "AccountSid": {w.twilio.sid},
		"From": {CustomerANI(int(mix(i) % uint64(w.voiceSet)))}, "To": {benchDNIS},
		"CallStatus": {"ringing"}, "Direction": {"inbound"}, "ApiVersion": {"2010-04-01"},
	}
}

// floorName names the floor making waves ordered round trips.
func floorName(waves int) string {
	if waves == 1 {
		return "floor (decode, 1 EVALSHA, encode)"
	}
	return fmt.Sprintf("floor (decode, %d ordered EVALSHAs, encode)", waves)
}

// floorTarget sends the floor making waves round trips the returning
// caller's start, key included.
func (w *workloads) floorTarget(waves int) target {
	return target{name: floorName(waves), build: func(i int64) (*http.Request, error) {
		return w.post(fmt.Sprintf("/floor/%d", waves), "application/json", w.startBody(i)), nil
	}}
}

// startReturning starts calls of random seeded customers and keeps them
// for the end workload.
func (w *workloads) startReturning() target {
	return target{name: returningName,
		build: func(i int64) (*http.Request, error) {
			return w.post("/v1/calls/start", "application/json", w.startBody(i)), nil
		},
		ok: func(i int64) { w.pool.push(startedCall{callID(i), CustomerRef(w.returning(i))}) },
	}
}

func (w *workloads) startNew() target {
	return target{name: newName, build: func(i int64) (*http.Request, error) {
		return w.post("/v1/calls/start", "application/json", w.newBody(i)), nil
	}}
}

// end ends the oldest started call.
func (w *workloads) end() target {
	return target{name: endName, build: func(i int64) (*http.Request, error) {
		c, ok := w.pool.pop()
		if !ok {
			return nil, errExhausted
		}
		return w.post("/v1/calls/end", "application/json", w.endBody(i, c)), nil
	}}
}

// voiceIncoming sends the signed webhook, as Twilio does.
func (w *workloads) voiceIncoming() target {
	return target{name: voiceName, build: func(i int64) (*http.Request, error) {
		form := w.voiceForm(i)
		req := w.post("/voice/incoming", "application/x-www-form-urlencoded", []byte(form.Encode()))
		req.Header.Del("Authorization")
		req.Header.Set("X-Twilio-Signature", voice.Sign(w.twilio.token, w.base+"/voice/incoming", form))
		return req, nil
	}}
}
