package voice_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stickycalls/stickycalls/context/callcontext"
	"github.com/stickycalls/stickycalls/lookup"
	"github.com/stickycalls/stickycalls/voice"
)

// fakeLookup stands in for lookups.twilio.com: it answers a saved Lookup
// response, or hangs until the request is given up.
type fakeLookup struct {
	srv      *httptest.Server
	requests atomic.Int64
	hang     atomic.Bool
}

func newFakeLookup(t *testing.T) *fakeLookup {
	f := &fakeLookup{}
	mobile, err := os.ReadFile("../lookup/testdata/mobile.json")
	if err != nil {
		t.Fatal(err)
	}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.requests.Add(1)
		if f.hang.Load() {
			<-r.Context().Done()
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(mobile)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

// RoundTrip sends every request to the fake server.
func (f *fakeLookup) RoundTrip(r *http.Request) (*http.Response, error) {
	u, _ := url.Parse(f.srv.URL)
	r = r.Clone(r.Context())
	r.URL.Scheme, r.URL.Host = u.Scheme, u.Host
	return http.DefaultTransport.RoundTrip(r)
}

func (f *fakeLookup) lines(store lookup.Cache) callcontext.LineTyper {
	creds := map[string]lookup.Credentials{"default": {AccountSID: "AC" + strings.Repeat("1", 32), AuthToken: "lookup0token"}}
	return lookup.NewClient(creds, store, lookup.Options{Timeout: 50 * time.Millisecond, Transport: f})
}

// A second call from the same mobile number within the cache TTL makes no
// Lookup request; the line type Lookup gave makes the caller a reuse.
func TestLookupCachedPerNumber(t *testing.T) {
	f := newFakeLookup(t)
	e := newEnvWith(t, voice.Action{Dial: agent}, f.lines)
	e.remember("CA8000", "+14155558888", "Kim Park", "unknown")
	if f.requests.Load() != 0 {
		t.Fatalf("a REST start with telco.line_type made %d Lookup requests, want 0", f.requests.Load())
	}
	first := e.incoming("CA8001", "+14155558888")
	if s, _ := first.find("Say"); !strings.Contains(s.Text, "Welcome back, Kim Park") {
		t.Errorf("mobile from Lookup: Say = %q, want the personal greeting", s.Text)
	}
	e.incoming("CA8002", "+14155558888")
	if n := f.requests.Load(); n != 1 {
		t.Errorf("two calls from one number made %d Lookup requests, want 1", n)
	}
}

// A hanging Lookup costs its own timeout, not the call: the caller still
// gets the TwiML of an unknown line type within the webhook's deadline.
func TestLookupHanging(t *testing.T) {
	f := newFakeLookup(t)
	f.hang.Store(true)
	e := newEnvWith(t, voice.Action{Dial: agent}, f.lines)
	e.remember("CA9000", "+14155559999", "Lee Chan", "unknown")
	n := e.incoming("CA9001", "+14155559999")
	g, ok := n.find("Gather") // unknown line type: 0.45, confirm
	if !ok || !strings.Contains(g.Nodes[0].Text, "Lee Chan") {
		t.Errorf("hanging Lookup: TwiML %+v, want the confirm question of an unknown line type", n)
	}
	if f.requests.Load() == 0 {
		t.Error("Lookup was never asked")
	}
}
