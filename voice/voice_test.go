package voice_test

import (
	"context"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/stickycalls/stickycalls/context/boltstore"
	"github.com/stickycalls/stickycalls/context/callapi"
	"github.com/stickycalls/stickycalls/context/callcontext"
	"github.com/stickycalls/stickycalls/context/storage"
	"github.com/stickycalls/stickycalls/greetings"
	"github.com/stickycalls/stickycalls/lookup"
	"github.com/stickycalls/stickycalls/voice"
)

const (
	token    = "test0token0current"
	oldToken = "test0token0previous"
	number   = "+18005550100"
	agent    = "+14155550000"
)

// node is a parsed TwiML element, compared by structure: twilio-go's
// attribute order changes from run to run.
type node struct {
	XMLName xml.Name
	Attrs   []xml.Attr `xml:",any,attr"`
	Text    string     `xml:",chardata"`
	Nodes   []node     `xml:",any"`
}

func (n node) attr(name string) string {
	for _, a := range n.Attrs {
		if a.Name.Local == name {
			return a.Value
		}
	}
	return ""
}

// verbs lists the element names of a response, depth first.
func (n node) verbs() []string {
	var out []string
	for _, c := range n.Nodes {
		out = append(out, c.XMLName.Local)
		out = append(out, c.verbs()...)
	}
	return out
}

func (n node) find(name string) (node, bool) {
	for _, c := range n.Nodes {
		if c.XMLName.Local == name {
			return c, true
		}
		if f, ok := c.find(name); ok {
			return f, true
		}
	}
	return node{}, false
}

// countingStore counts the calls that reach the real store beneath it,
// and can be made to hang until the caller gives up.
type countingStore struct {
	callcontext.Store
	calls atomic.Int64
	hang  atomic.Bool
	down  atomic.Bool // every call and claim fails as an unreachable store's
}

func (s *countingStore) Call(ctx context.Context, sc callcontext.Scope, id string) (storage.CallRecord, error) {
	s.calls.Add(1)
	if s.down.Load() {
		return storage.CallRecord{}, callcontext.ErrUnavailable
	}
	return s.Store.Call(ctx, sc, id)
}

func (s *countingStore) Resolve(ctx context.Context, sc callcontext.Scope, q storage.Query, now time.Time) (storage.Found, error) {
	s.calls.Add(1)
	if s.hang.Load() {
		<-ctx.Done()
		return storage.Found{}, ctx.Err()
	}
	return s.Store.Resolve(ctx, sc, q, now)
}

func (s *countingStore) LeaseStream(ctx context.Context, sc callcontext.Scope, id, holder string, now, expires time.Time) (bool, error) {
	if s.down.Load() {
		return false, callcontext.ErrUnavailable
	}
	return s.Store.LeaseStream(ctx, sc, id, holder, now, expires)
}

func (s *countingStore) Claim(ctx context.Context, sc callcontext.Scope, c storage.Claim) (storage.ClaimResult, error) {
	s.calls.Add(1)
	if s.down.Load() {
		return storage.ClaimResult{}, callcontext.ErrUnavailable
	}
	return s.Store.Claim(ctx, sc, c)
}

type env struct {
	t     testing.TB
	mux   *http.ServeMux
	cfg   voice.Config
	srv   *httptest.Server
	store *countingStore
	calls *callcontext.Service
}

func newEnv(t testing.TB, next voice.Action) *env {
	t.Helper()
	return newEnvWith(t, next, nil)
}

// openStore opens a bbolt store in t's temporary directory, counting the
// calls that reach it, and the built-in greetings.
func openStore(t testing.TB) (*countingStore, *greetings.Greeter) {
	t.Helper()
	bolt, err := boltstore.Open(filepath.Join(t.TempDir(), "voice.db"), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bolt.Close() })
	store := &countingStore{Store: bolt}
	g, err := greetings.New(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return store, g
}

// newEnvWith builds the env with a LineTyper made over its store (nil:
// no Lookup).
func newEnvWith(t testing.TB, next voice.Action, lines func(lookup.Cache) callcontext.LineTyper) *env {
	t.Helper()
	store, g := openStore(t)
	var lt callcontext.LineTyper = callcontext.NoLookup{}
	if lines != nil {
		lt = lines(store.Store.(lookup.Cache)) // the cache is not counted
	}
	calls := callcontext.NewService(store, lt, g, time.Now, nil, callcontext.Durations{})
	e := &env{t: t, store: store, calls: calls}
	mux := http.NewServeMux()
	e.srv = httptest.NewServer(mux)
	t.Cleanup(e.srv.Close)
	cfg := voice.Config{
		PublicURL: e.srv.URL,
		Accounts:  []voice.Account{{Tenant: "default", AuthToken: token, PreviousAuthToken: oldToken}},
		Numbers:   map[string]voice.Number{number: {Tenant: "default", Next: next}},
		Deadline:  time.Second, // a loaded machine's fsync must not look like a slow store; hanging-store tests wait it out
		Greeter:   g,
		Metrics:   voice.NewMetrics(prometheus.NewRegistry()),
	}
	e.mux, e.cfg = mux, cfg
	signed := voice.RequireSignature(cfg, zerolog.Nop())
	mux.Handle("POST /voice/incoming", signed(voice.HandleIncoming(zerolog.Nop(), calls, cfg)))
	mux.Handle("POST /voice/confirm", signed(voice.HandleConfirm(zerolog.Nop(), calls, cfg)))
	mux.Handle("POST /voice/status", signed(voice.HandleStatus(zerolog.Nop(), calls, cfg)))
	return e
}

func (e *env) signed(h http.Handler) http.Handler {
	return voice.RequireSignature(e.cfg, zerolog.Nop())(h)
}

// post sends a form signed with tok and returns the status and body.
func (e *env) post(path, tok string, form url.Values) (int, string) {
	e.t.Helper()
	req, _ := http.NewRequest("POST", e.srv.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if tok != "" {
		req.Header.Set("X-Twilio-Signature", voice.Sign(tok, e.srv.URL+path, form))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == 200 && !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/xml") {
		e.t.Errorf("%s Content-Type = %q, want text/xml", path, resp.Header.Get("Content-Type"))
	}
	return resp.StatusCode, string(body)
}

func (e *env) incoming(callSid, from string) node {
	e.t.Helper()
	status, body := e.post("/voice/incoming", token, incomingForm(callSid, from, number))
	if status != 200 {
		e.t.Fatalf("incoming: status %d, want 200\n%s", status, body)
	}
	var n node
	if err := xml.Unmarshal([]byte(body), &n); err != nil || n.XMLName.Local != "Response" {
		e.t.Fatalf("incoming: TwiML does not parse (%v):\n%s", err, body)
	}
	return n
}

func incomingForm(callSid, from, to string) url.Values {
	return url.Values{"CallSid": {callSid}, "AccountSid": {"AC" + strings.Repeat("1", 32)},
		"From": {from}, "To": {to}, "CallStatus": {"ringing"}, "Direction": {"inbound"}}
}

// remember saves a customer for an ANI through the REST side of the service.
// remember saves a caller through a start and an end; telco fields after
// the line type (such as "attestation":"A") go into the start's telco.
func (e *env) remember(callID, ani, name string, lineType string, telco ...string) {
	e.t.Helper()
	ctx := context.Background()
	sc := callcontext.Scope{Tenant: "default", Mode: callcontext.Prod}
	extra := strings.Join(append([]string{""}, telco...), ",")
	start := `{"call_id":"` + callID + `","identity_hints":{"ani":"` + ani + `"},"telco":{"line_type":"` + lineType + `"` + extra + `}}`
	sreq, err := callapi.ParseStart([]byte(start))
	if err != nil {
		e.t.Fatal(err)
	}
	if _, err := e.calls.Start(ctx, sc, sreq, ""); err != nil {
		e.t.Fatal(err)
	}
	ereq, err := callapi.ParseEnd([]byte(`{"call_id":"` + callID + `","variables":{"name":"` + name + `"},"intent":"refund_request","intent_status":"open"}`))
	if err != nil {
		e.t.Fatal(err)
	}
	if _, err := e.calls.End(ctx, sc, ereq, ""); err != nil {
		e.t.Fatal(err)
	}
}

func TestIncomingTiers(t *testing.T) {
	e := newEnv(t, voice.Action{Dial: agent})
	e.remember("CA0001", "+14155551111", "John Doe", "mobile") // remembered mobile: 0.5 + recency → reuse
	e.remember("CA0002", "+14155552222", "Jane Roe", "unknown")

	reuse := e.incoming("CA1001", "+14155551111")
	if got := reuse.verbs(); !slices.Equal(got, []string{"Say", "Dial", "Number"}) {
		t.Errorf("reuse verbs = %v, want Say Dial Number", got)
	}
	if s, _ := reuse.find("Say"); !strings.Contains(s.Text, "John Doe") || strings.Contains(s.Text, "refund") {
		t.Errorf("reuse Say = %q, want the name and no intent below confidence 0.7", s.Text)
	}
	if n, _ := reuse.find("Number"); strings.TrimSpace(n.Text) != agent || !strings.Contains(n.attr("url"), "/voice/whisper") {
		t.Errorf("reuse Number = %q url %q, want %s with a whisper", n.Text, n.attr("url"), agent)
	}

	confirm := e.incoming("CA1002", "+14155552222") // unknown line type: 0.45 → confirm
	g, ok := confirm.find("Gather")
	if !ok || g.attr("input") != "dtmf speech" || g.attr("numDigits") != "1" || !strings.HasSuffix(g.attr("action"), "/voice/confirm") {
		t.Fatalf("confirm TwiML = %+v, want a Gather of dtmf speech to /voice/confirm", confirm)
	}
	if s, _ := g.find("Say"); !strings.Contains(s.Text, "Jane Roe") {
		t.Errorf("confirm question = %q, want it to ask for Jane Roe", s.Text)
	}

	ignore := e.incoming("CA1003", "+14155553333")
	if got := ignore.verbs(); !slices.Equal(got, []string{"Say", "Dial", "Number"}) {
		t.Errorf("ignore verbs = %v, want Say Dial Number", got)
	}
	if s, _ := ignore.find("Say"); s.Text != "Hello! Thanks for calling. Connecting you now." {
		t.Errorf("ignore Say = %q, want the welcome and the connecting line: no name, no question nothing collects", s.Text)
	}
	if s, _ := reuse.find("Say"); strings.Contains(s.Text, "?") || !strings.HasSuffix(s.Text, "Connecting you now.") {
		t.Errorf("reuse Say = %q, want no question before a dial", s.Text)
	}
}

func TestSignature(t *testing.T) {
	e := newEnv(t, voice.Action{Dial: agent})
	form := incomingForm("CA2001", "+14155551111", number)
	for name, tok := range map[string]string{"missing": "", "wrong token": "another0token"} {
		before := e.store.calls.Load()
		if status, _ := e.post("/voice/incoming", tok, form); status != 403 {
			t.Errorf("%s signature: status %d, want 403", name, status)
		}
		if n := e.store.calls.Load() - before; n != 0 {
			t.Errorf("%s signature: %d store calls, want 0", name, n)
		}
	}
	if status, _ := e.post("/voice/incoming", oldToken, form); status != 200 {
		t.Errorf("previous token during rotation: status %d, want 200", status)
	}
}

func TestIncomingDegrades(t *testing.T) {
	e := newEnv(t, voice.Action{Redirect: "https://app.example.com/twiml"})
	status, body := e.post("/voice/incoming", token, incomingForm("CA3001", "+14155551111", "+18005559999"))
	if status != 200 || !strings.Contains(body, "<Say") || strings.Contains(body, "<Redirect") {
		t.Errorf("unknown To: %d %s, want 200 with the generic greeting only (no number, no next action)", status, body)
	}

	e.store.hang.Store(true)
	n := e.incoming("CA3002", "+14155551111")
	if got := n.verbs(); !slices.Equal(got, []string{"Say", "Redirect"}) {
		t.Errorf("hanging store verbs = %v, want Say Redirect (generic greeting, next action)", got)
	}
	r, _ := n.find("Redirect")
	q, _ := url.ParseQuery(r.Text[strings.Index(r.Text, "?")+1:])
	if q.Get("call_id") != "CA3002" || q.Get("recommendation") != "ignore" {
		t.Errorf("redirect query = %v, want call_id CA3002 and recommendation ignore", q)
	}
}

func TestAttestationFromVerstat(t *testing.T) {
	e := newEnv(t, voice.Action{Dial: agent})
	// The number's earlier call came with A too: a link made under worse
	// attestation than this call's would only be asked to confirm.
	e.remember("CA4000", "+14155554444", "Ann Lee", "mobile", `"attestation":"A"`)
	form := incomingForm("CA4001", "+14155554444", number)
	form.Set("StirVerstat", "TN-Validation-Passed-A")
	status, body := e.post("/voice/incoming", token, form)
	// Attestation A lets the open intent be spoken below confidence 0.7.
	if status != 200 || !strings.Contains(body, "refund request") {
		t.Errorf("attestation A: %d %s, want the open intent spoken", status, body)
	}
}

// A SIP agent gets the call's call_id and customer_ref as x- headers and,
// by default, no spoken whisper; a number's dial whispers unless told not to.
func TestDialWhisperAndSIPHeaders(t *testing.T) {
	no, yes := false, true
	tests := []struct {
		name    string
		next    voice.Action
		noun    string
		whisper bool
		headers bool
	}{
		{"number", voice.Action{Dial: agent}, "Number", true, false},
		{"number without whisper", voice.Action{Dial: agent, Whisper: &no}, "Number", false, false},
		{"SIP", voice.Action{Dial: "sip:desk@pbx.example.com"}, "Sip", false, true},
		{"SIP with whisper", voice.Action{Dial: "sip:desk@pbx.example.com;transport=tls", Whisper: &yes}, "Sip", true, true},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, tc.next)
			sid := fmt.Sprintf("CASIP%d", i)
			n := e.incoming(sid, "+14155550301")
			target, ok := n.find("Dial")
			if !ok {
				t.Fatalf("no <Dial> in %+v", n)
			}
			noun := target.Nodes[0]
			if noun.XMLName.Local != tc.noun {
				t.Fatalf("dialled a %s, want a %s", noun.XMLName.Local, tc.noun)
			}
			if got := noun.attr("url") != ""; got != tc.whisper {
				t.Errorf("whisper url %q, want one: %v", noun.attr("url"), tc.whisper)
			}
			text := strings.TrimSpace(noun.Text)
			if got := strings.Contains(text, "x-call_id="+sid) && strings.Contains(text, "x-customer_ref=cust_"); got != tc.headers {
				t.Errorf("dial target %q: x- headers %v, want %v", text, got, tc.headers)
			}
		})
	}
}
