package httpapi_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/stickycalls/stickycalls/context/backup"
	"github.com/stickycalls/stickycalls/context/boltstore"
	"github.com/stickycalls/stickycalls/context/callapi"
	"github.com/stickycalls/stickycalls/context/callcontext"
	"github.com/stickycalls/stickycalls/context/keys"
	"github.com/stickycalls/stickycalls/context/ratelimit"
	"github.com/stickycalls/stickycalls/context/storage"
	"github.com/stickycalls/stickycalls/greetings"
	"github.com/stickycalls/stickycalls/httpapi"
	"github.com/stickycalls/stickycalls/httpapi/apitest"
)

// now is the service's clock in every test: a fixed instant, so nothing
// depends on the wall clock.
var now = time.Date(2026, 2, 7, 10, 30, 0, 0, time.UTC)

// lockedBuffer is the log sink; handlers write to it concurrently.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// env is one service on an embedded store in a temporary directory,
// served over real HTTP, with a key for each scope the tests use.
type env struct {
	srv   *httptest.Server
	store *boltstore.Store
	calls *callcontext.Service
	keys  *keys.Keyring
	logs  *lockedBuffer

	testKey  string // tenant default, mode test
	prodKey  string // tenant default, mode prod
	otherKey string // tenant other, mode test
}

func newEnv(tb testing.TB, policies map[string]callcontext.Policy) *env {
	tb.Helper()
	store, err := boltstore.Open(filepath.Join(tb.TempDir(), "db"), time.Second)
	if err != nil {
		tb.Fatalf("boltstore.Open() = %v", err)
	}
	tb.Cleanup(func() { store.Close() })
	greeter, err := greetings.New(nil, nil)
	if err != nil {
		tb.Fatalf("greetings.New() = %v", err)
	}
	calls := callcontext.NewService(store, callcontext.NoLookup{}, greeter, func() time.Time { return now }, policies, callcontext.Durations{})
	e := &env{store: store, calls: calls, keys: keys.New(store, func() time.Time { return now }), logs: &lockedBuffer{}}
	e.testKey = e.createKey(tb, "default", callcontext.Test)
	e.prodKey = e.createKey(tb, "default", callcontext.Prod)
	e.otherKey = e.createKey(tb, "other", callcontext.Test)
	e.srv = httptest.NewServer(httpapi.NewHandler(zerolog.New(e.logs), calls, e.keys, prometheus.NewRegistry(), nil, ratelimit.NewMemory(),
		httpapi.WithAdminToken(adminToken), httpapi.WithBackup(storeBackup{store})))
	tb.Cleanup(e.srv.Close)
	return e
}

// adminToken is the env's STICKYCALLS_ADMIN_TOKEN.
const adminToken = "env0admin0token"

// storeBackup is the admin routes' backup of the env's store.
type storeBackup struct{ store *boltstore.Store }

func (b storeBackup) Export(ctx context.Context, sc callcontext.Scope, w io.Writer) (backup.Counts, error) {
	return backup.Export(ctx, b.store, sc, now, w)
}

func (b storeBackup) Import(ctx context.Context, want callcontext.Scope, r io.Reader) (backup.Counts, error) {
	f, err := backup.Read(r)
	if err != nil {
		return backup.Counts{}, err
	}
	sc, err := f.Scope(want)
	if err != nil {
		return backup.Counts{}, err
	}
	return backup.Import(ctx, b.store, sc, f, now)
}

func (e *env) createKey(tb testing.TB, tenant string, mode callcontext.Mode) string {
	tb.Helper()
	secret, _, err := e.keys.Create(tb.Context(), tenant, mode)
	if err != nil {
		tb.Fatalf("CreateKey(%q, %q) = %v", tenant, mode, err)
	}
	return secret
}

func bearer(key string) string { return "Bearer " + key }

// request is one HTTP request of a test.
type request struct {
	method, path string
	auth         string // the Authorization header; "" sends none
	body         string
	// header adds headers. Content-Type defaults to application/json on a
	// request with a body; an empty value sends no such header.
	header map[string]string
}

// response is what came back.
type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) String() string {
	b := r.body
	if len(b) > 300 {
		b = append(b[:300:300], "..."...)
	}
	return fmt.Sprintf("%d %s", r.status, b)
}

func (e *env) do(tb testing.TB, r request) response {
	tb.Helper()
	req, err := http.NewRequestWithContext(tb.Context(), r.method, e.srv.URL+r.path, strings.NewReader(r.body))
	if err != nil {
		tb.Fatalf("NewRequest(%s %s) = %v", r.method, r.path, err)
	}
	if r.auth != "" {
		req.Header.Set("Authorization", r.auth)
	}
	if r.body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range r.header {
		req.Header.Del(k)
		if v != "" {
			req.Header.Set(k, v)
		}
	}
	res, err := e.srv.Client().Do(req)
	if err != nil {
		tb.Fatalf("%s %s: %v", r.method, r.path, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		tb.Fatalf("%s %s: read body: %v", r.method, r.path, err)
	}
	apitest.Check(tb, req, res, body)
	return response{status: res.StatusCode, header: res.Header, body: body}
}

// post sends a JSON body with the test key.
func (e *env) post(tb testing.TB, path, body string) response {
	tb.Helper()
	return e.do(tb, request{method: "POST", path: path, auth: bearer(e.testKey), body: body})
}

// get sends a GET with key.
func (e *env) get(tb testing.TB, path, key string) response {
	tb.Helper()
	return e.do(tb, request{method: "GET", path: path, auth: bearer(key)})
}

// mustOK fails the test unless res is a 200.
func mustOK(tb testing.TB, name string, res response) {
	tb.Helper()
	if res.status != http.StatusOK {
		tb.Fatalf("%s: got %s, want 200", name, res)
	}
}

type issue struct {
	Path    []string `json:"path"`
	Message string   `json:"message"`
}

type errorBody struct {
	Error     string `json:"error"`
	Message   string `json:"message"`
	RequestID string `json:"request_id"`
	Details   *struct {
		Issues []issue `json:"issues"`
	} `json:"details"`
}

// checkError checks an error response: its status, and the documented body
// {error, message, request_id[, details.issues]} whose request_id is the
// X-Request-Id header. On a 400 the issues' paths must be wantPaths, in
// any order.
func checkError(tb testing.TB, name string, got response, want int, wantPaths ...[]string) {
	tb.Helper()
	if got.status != want {
		tb.Errorf("%s: got %s, want status %d", name, got, want)
		return
	}
	if ct := got.header.Get("Content-Type"); ct != "application/json" {
		tb.Errorf("%s: Content-Type = %q, want application/json", name, ct)
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(got.body, &fields); err != nil {
		tb.Errorf("%s: body %s is not a JSON object: %v", name, got.body, err)
		return
	}
	gotKeys := slices.Sorted(func(yield func(string) bool) {
		for k := range fields {
			if !yield(k) {
				return
			}
		}
	})
	wantKeys := []string{"error", "message", "request_id"}
	if want == http.StatusBadRequest {
		wantKeys = []string{"details", "error", "message", "request_id"}
	}
	if diff := cmp.Diff(gotKeys, wantKeys); diff != "" {
		tb.Errorf("%s: body keys (-got +want):\n%s", name, diff)
	}
	var body errorBody
	if err := json.Unmarshal(got.body, &body); err != nil {
		tb.Errorf("%s: body %s: %v", name, got.body, err)
		return
	}
	if body.Error != http.StatusText(want) {
		tb.Errorf("%s: error = %q, want %q", name, body.Error, http.StatusText(want))
	}
	if body.Message == "" {
		tb.Errorf("%s: message is empty, want a human text", name)
	}
	if id := got.header.Get("X-Request-Id"); body.RequestID == "" || body.RequestID != id {
		tb.Errorf("%s: request_id = %q, want the X-Request-Id header %q", name, body.RequestID, id)
	}
	if want != http.StatusBadRequest {
		return
	}
	if body.Details == nil {
		tb.Errorf("%s: no details.issues in %s", name, got.body)
		return
	}
	var gotPaths [][]string
	for _, is := range body.Details.Issues {
		gotPaths = append(gotPaths, is.Path)
		if is.Message == "" {
			tb.Errorf("%s: issue at %q has no message", name, is.Path)
		}
	}
	byPath := func(a, b []string) int { return strings.Compare(strings.Join(a, "\x00"), strings.Join(b, "\x00")) }
	slices.SortFunc(gotPaths, byPath)
	wantPaths = slices.Clone(wantPaths)
	slices.SortFunc(wantPaths, byPath)
	if diff := cmp.Diff(gotPaths, wantPaths); diff != "" {
		tb.Errorf("%s: issue paths (-got +want):\n%s", name, diff)
	}
}

func TestBadRequest(t *testing.T) {
	e := newEnv(t, nil)
	longKey := strings.Repeat("k", 256)
	tests := []struct {
		name      string
		path      string
		body      string
		header    map[string]string
		wantPaths [][]string
	}{
		{"malformed JSON", "/v1/calls/start", `{"call_id": "c1", `, nil, [][]string{{"body"}}},
		{"malformed JSON on end", "/v1/calls/end", `{"call_id"`, nil, [][]string{{"body"}}},
		{"array body", "/v1/calls/start", `[{"call_id": "c2"}]`, nil, [][]string{{"body"}}},
		{"array body on end", "/v1/calls/end", `[]`, nil, [][]string{{"body"}}},
		{"missing call_id and identity_hints", "/v1/calls/start", `{}`, nil,
			[][]string{{"call_id"}, {"identity_hints"}}},
		{"bad ani", "/v1/calls/start", `{"call_id": "c3", "identity_hints": {"ani": "12345"}}`, nil,
			[][]string{{"identity_hints", "ani"}}},
		{"bad flat ani", "/v1/calls/start", `{"call_id": "c3b", "ani": "+1 415 555 01xx"}`, nil,
			[][]string{{"ani"}}},
		{"unknown line type", "/v1/calls/start",
			`{"call_id": "c4", "identity_hints": {"ani": "+14155550100"}, "telco": {"line_type": "satellite"}}`, nil,
			[][]string{{"telco", "line_type"}}},
		{"flat and nested disagree", "/v1/calls/start",
			`{"call_id": "c5", "ani": "+14155550100", "identity_hints": {"ani": "+14155550199"}}`, nil,
			[][]string{{"identity_hints"}}},
		{"sensitive variable", "/v1/calls/end",
			`{"call_id": "c6", "customer_ref": "cust_c6", "variables": {"name": "Ann", "card_number": "4111 1111 1111 1111"}}`, nil,
			[][]string{{"variables", "card_number"}}},
		{"intent_is_open disagrees with intent_status", "/v1/calls/end",
			`{"call_id": "c7", "customer_ref": "cust_c7", "intent": "refund", "intent_status": "resolved", "intent_is_open": true}`, nil,
			[][]string{{"intent_is_open"}}},
		{"variable_ttl_seconds below a day", "/v1/calls/end",
			`{"call_id": "c8", "customer_ref": "cust_c8", "variables": {"a": "b"}, "variable_ttl_seconds": 86399}`, nil,
			[][]string{{"variable_ttl_seconds"}}},
		{"variable_ttl_seconds above 90 days", "/v1/calls/end",
			`{"call_id": "c9", "customer_ref": "cust_c9", "variables": {"a": "b"}, "variable_ttl_seconds": 7776001}`, nil,
			[][]string{{"variable_ttl_seconds"}}},
		{"Idempotency-Key too long with a body issue", "/v1/calls/start",
			`{"identity_hints": {"ani": "+14155550100"}}`, map[string]string{"Idempotency-Key": longKey},
			[][]string{{"call_id"}, {"headers", "Idempotency-Key"}}},
		{"Idempotency-Key too long on end with a body issue", "/v1/calls/end",
			`{"call_id": "c10", "customer_ref": "cust_c10", "intent": "Not A Slug"}`, map[string]string{"Idempotency-Key": longKey},
			[][]string{{"intent"}, {"headers", "Idempotency-Key"}}},
		{"end with no start, customer_ref or identity_hints", "/v1/calls/end",
			`{"call_id": "c11", "intent": "refund"}`, nil,
			[][]string{{"customer_ref"}}},
	}
	for _, tt := range tests {
		res := e.do(t, request{method: "POST", path: tt.path, auth: bearer(e.testKey), body: tt.body, header: tt.header})
		checkError(t, tt.name, res, http.StatusBadRequest, tt.wantPaths...)
	}

	// Nothing failed counts toward usage.
	var u struct{ Requests int64 }
	res := e.get(t, "/v1/usage", e.testKey)
	mustOK(t, "usage", res)
	if err := json.Unmarshal(res.body, &u); err != nil || u.Requests != 0 {
		t.Errorf("usage after only 400s: requests = %d (%v), want 0", u.Requests, err)
	}
}

// TestVariableTTLOverflow sends a variable_ttl_seconds that overflows a
// time.Duration into the allowed range: 2^55 + 86400 seconds is not
// between 1 and 90 days and must be a 400.
func TestVariableTTLOverflow(t *testing.T) {
	e := newEnv(t, nil)
	body := `{"call_id": "ttl-1", "customer_ref": "cust_ttl", "variables": {"a": "b"}, "variable_ttl_seconds": 36028797019050368}`
	checkError(t, "variable_ttl_seconds of 2^55 + 1 day", e.post(t, "/v1/calls/end", body), http.StatusBadRequest,
		[]string{"variable_ttl_seconds"})
}

// TestIdempotencyKeyLimit checks the boundary: 255 characters is fine.
func TestIdempotencyKeyLimit(t *testing.T) {
	e := newEnv(t, nil)
	res := e.do(t, request{method: "POST", path: "/v1/calls/start", auth: bearer(e.testKey),
		body:   `{"call_id": "k255", "identity_hints": {"ani": "+14155550100"}}`,
		header: map[string]string{"Idempotency-Key": strings.Repeat("k", 255)}})
	mustOK(t, "start with a 255-character Idempotency-Key", res)
}

func variablesBody(callID, ref string, from, to int, valueLen int) string {
	vars := map[string]string{}
	for i := from; i < to; i++ {
		vars[fmt.Sprintf("v%03d", i)] = strings.Repeat("x", valueLen)
	}
	b, _ := json.Marshal(map[string]any{"call_id": callID, "customer_ref": ref, "variables": vars})
	return string(b)
}

func TestTooManyVariablesWritesNothing(t *testing.T) {
	e := newEnv(t, nil)
	mustOK(t, "end with 100 variables", e.post(t, "/v1/calls/end", variablesBody("full-1", "cust_full", 0, 100, 8)))
	before := e.get(t, "/v1/customers/cust_full", e.testKey)
	mustOK(t, "GET customer", before)
	var view struct{ Variables map[string]json.RawMessage }
	if err := json.Unmarshal(before.body, &view); err != nil || len(view.Variables) != 100 {
		t.Fatalf("customer has %d variables (%v), want 100", len(view.Variables), err)
	}
	usageBefore := e.get(t, "/v1/usage", e.testKey)

	over := variablesBody("full-2", "cust_full", 100, 101, 8)
	checkError(t, "end leaving 101 variables", e.post(t, "/v1/calls/end", over), http.StatusBadRequest, []string{"variables"})

	after := e.get(t, "/v1/customers/cust_full", e.testKey)
	if diff := cmp.Diff(string(after.body), string(before.body)); after.status != http.StatusOK || diff != "" {
		t.Errorf("customer after the refused end: status %d (-got +want):\n%s", after.status, diff)
	}
	if got, want := e.get(t, "/v1/usage", e.testKey).body, usageBefore.body; !bytes.Equal(got, want) {
		t.Errorf("usage after the refused end = %s, want unchanged %s", got, want)
	}
	// The refused call_id was released: another body for it is no 409.
	swap := `{"call_id": "full-2", "customer_ref": "cust_full", "variables": {"v100": "new", "v000": null}}`
	mustOK(t, "end replacing one variable with the refused call_id", e.post(t, "/v1/calls/end", swap))
}

func TestUnauthorized(t *testing.T) {
	e := newEnv(t, nil)
	revoked, k, err := e.keys.Create(t.Context(), "default", callcontext.Test)
	if err != nil {
		t.Fatalf("CreateKey() = %v", err)
	}
	mustOK(t, "usage with the key before revoking it", e.get(t, "/v1/usage", revoked))
	if err := e.keys.Revoke(t.Context(), k.ID); err != nil {
		t.Fatalf("RevokeKey(%s) = %v", k.ID, err)
	}
	body := `{"call_id": "auth-1", "identity_hints": {"ani": "+14155550100"}}`
	tests := []struct{ name, auth string }{
		{"no Authorization header", ""},
		{"malformed key", "Bearer sk_test_short"},
		{"not a bearer", "Basic " + e.testKey},
		{"unknown key", "Bearer sk_test_" + strings.Repeat("A", 32)},
		{"revoked key", bearer(revoked)},
	}
	// sk_live_ is a synonym of sk_prod_.
	live := e.get(t, "/v1/usage", "sk_live_"+strings.TrimPrefix(e.prodKey, "sk_prod_"))
	if mode := getField(live.body, "mode"); live.status != http.StatusOK || mode != "prod" {
		t.Errorf("usage with the sk_live_ form of a prod key: got %s, mode %q; want 200, prod", live, mode)
	}
	var first map[string]any
	for _, tt := range tests {
		res := e.do(t, request{method: "POST", path: "/v1/calls/start", auth: tt.auth, body: body})
		checkError(t, tt.name, res, http.StatusUnauthorized)
		var got map[string]any
		if err := json.Unmarshal(res.body, &got); err != nil {
			continue // reported by checkError
		}
		delete(got, "request_id")
		if first == nil {
			first = got
			continue
		}
		if diff := cmp.Diff(got, first); diff != "" {
			t.Errorf("%s: body differs from %q's (-got +want):\n%s", tt.name, tests[0].name, diff)
		}
	}
	// Nothing was started by the refused requests.
	checkError(t, "GET the call after 401s", e.get(t, "/v1/calls/auth-1", e.testKey), http.StatusNotFound)
}

// getField returns a top-level string field of a JSON object, or "".
func getField(body []byte, name string) string {
	var m map[string]any
	_ = json.Unmarshal(body, &m)
	s, _ := m[name].(string)
	return s
}

type usage struct {
	Tenant    string `json:"tenant"`
	Mode      string `json:"mode"`
	Requests  int64  `json:"requests"`
	Quota     *int64 `json:"quota"`
	Remaining *int64 `json:"remaining"`
}

func getUsage(tb testing.TB, e *env, key string) usage {
	tb.Helper()
	res := e.get(tb, "/v1/usage", key)
	mustOK(tb, "GET /v1/usage", res)
	var u usage
	if err := json.Unmarshal(res.body, &u); err != nil {
		tb.Fatalf("usage body %s: %v", res.body, err)
	}
	return u
}

func quotaPolicies(quota int64) map[string]callcontext.Policy {
	p := callcontext.DefaultPolicy()
	p.Plans = map[callcontext.Mode]callcontext.Plan{callcontext.Test: {MonthlyQuota: quota}}
	return map[string]callcontext.Policy{"default": p}
}

func startBody(callID, ani string) string {
	return fmt.Sprintf(`{"call_id": %q, "identity_hints": {"ani": %q}}`, callID, ani)
}

func TestQuota(t *testing.T) {
	e := newEnv(t, quotaPolicies(2))
	first := e.post(t, "/v1/calls/start", startBody("q-1", "+14155550101"))
	mustOK(t, "first start", first)
	mustOK(t, "second start", e.post(t, "/v1/calls/start", startBody("q-2", "+14155550102")))
	checkError(t, "third start", e.post(t, "/v1/calls/start", startBody("q-3", "+14155550103")), http.StatusPaymentRequired)
	checkError(t, "an end over quota", e.post(t, "/v1/calls/end", `{"call_id": "q-4", "customer_ref": "cust_q4", "intent": "refund"}`),
		http.StatusPaymentRequired)

	replay := e.post(t, "/v1/calls/start", startBody("q-1", "+14155550101"))
	mustOK(t, "replay of the first start over quota", replay)
	if got := replay.header.Get("Idempotent-Replayed"); got != "true" {
		t.Errorf("replay over quota: Idempotent-Replayed = %q, want true", got)
	}
	if !bytes.Equal(replay.body, first.body) {
		t.Errorf("replay over quota: body = %s, want the first %s", replay.body, first.body)
	}

	// Validation comes before the quota.
	checkError(t, "malformed body over quota", e.post(t, "/v1/calls/start", `{"call_id":`), http.StatusBadRequest, []string{"body"})
	checkError(t, "invalid start over quota", e.post(t, "/v1/calls/start", `{"call_id": "q-5"}`), http.StatusBadRequest, []string{"identity_hints"})
	checkError(t, "text/plain over quota", e.do(t, request{method: "POST", path: "/v1/calls/start", auth: bearer(e.testKey),
		body: startBody("q-6", "+14155550106"), header: map[string]string{"Content-Type": "text/plain"}}), http.StatusUnsupportedMediaType)

	u := getUsage(t, e, e.testKey)
	if u.Requests != 2 || u.Quota == nil || *u.Quota != 2 || u.Remaining == nil || *u.Remaining != 0 {
		t.Errorf("test usage = %+v (quota %v, remaining %v), want requests 2, quota 2, remaining 0", u, deref(u.Quota), deref(u.Remaining))
	}

	// Prod has no plan, so the spent test quota does not touch it.
	for i := range 3 {
		res := e.do(t, request{method: "POST", path: "/v1/calls/start", auth: bearer(e.prodKey),
			body: startBody(fmt.Sprintf("q-prod-%d", i), "+14155550101")})
		mustOK(t, fmt.Sprintf("prod start %d", i), res)
	}
	if u := getUsage(t, e, e.prodKey); u.Mode != "prod" || u.Requests != 3 || u.Quota != nil || u.Remaining != nil {
		t.Errorf("prod usage = %+v, want mode prod, requests 3, quota and remaining null", u)
	}
}

func deref(p *int64) any {
	if p == nil {
		return nil
	}
	return *p
}

func TestNotFound(t *testing.T) {
	e := newEnv(t, nil)
	// A customer of each scope, and a call of prod.
	prodEnd := `{"call_id": "nf-prod", "customer_ref": "cust_prod", "variables": {"name": "Pat"}}`
	mustOK(t, "prod end", e.do(t, request{method: "POST", path: "/v1/calls/end", auth: bearer(e.prodKey), body: prodEnd}))
	otherEnd := `{"call_id": "nf-other", "customer_ref": "cust_other", "variables": {"name": "Oz"}}`
	mustOK(t, "other tenant's end", e.do(t, request{method: "POST", path: "/v1/calls/end", auth: bearer(e.otherKey), body: otherEnd}))
	mustOK(t, "prod start", e.do(t, request{method: "POST", path: "/v1/calls/start", auth: bearer(e.prodKey),
		body: startBody("nf-prod-start", "+14155550100")}))
	mustOK(t, "prod GET its own customer", e.get(t, "/v1/customers/cust_prod", e.prodKey))
	mustOK(t, "other GET its own customer", e.get(t, "/v1/customers/cust_other", e.otherKey))
	mustOK(t, "prod GET its own call", e.get(t, "/v1/calls/nf-prod-start", e.prodKey))

	tests := []struct {
		name string
		req  request
	}{
		{"unknown route", request{method: "GET", path: "/v2/nothing"}},
		{"unknown route with a key", request{method: "GET", path: "/v1/nothing", auth: bearer(e.testKey)}},
		{"unknown call", request{method: "GET", path: "/v1/calls/no-such-call", auth: bearer(e.testKey)}},
		{"unknown customer", request{method: "GET", path: "/v1/customers/cust_nobody", auth: bearer(e.testKey)}},
		{"DELETE unknown customer", request{method: "DELETE", path: "/v1/customers/cust_nobody", auth: bearer(e.testKey)}},
		{"prod customer for the test key", request{method: "GET", path: "/v1/customers/cust_prod", auth: bearer(e.testKey)}},
		{"DELETE prod customer with the test key", request{method: "DELETE", path: "/v1/customers/cust_prod", auth: bearer(e.testKey)}},
		{"prod call for the test key", request{method: "GET", path: "/v1/calls/nf-prod-start", auth: bearer(e.testKey)}},
		{"other tenant's customer", request{method: "GET", path: "/v1/customers/cust_other", auth: bearer(e.testKey)}},
		{"other tenant's customer with the prod key", request{method: "GET", path: "/v1/customers/cust_other", auth: bearer(e.prodKey)}},
		{"DELETE other tenant's customer", request{method: "DELETE", path: "/v1/customers/cust_other", auth: bearer(e.testKey)}},
	}
	for _, tt := range tests {
		checkError(t, tt.name, e.do(t, tt.req), http.StatusNotFound)
	}
	// The refused deletes left both customers in place.
	mustOK(t, "prod GET its customer after the test DELETE", e.get(t, "/v1/customers/cust_prod", e.prodKey))
	mustOK(t, "other GET its customer after default's DELETE", e.get(t, "/v1/customers/cust_other", e.otherKey))

	// A real delete: 204, then 404.
	del := e.do(t, request{method: "DELETE", path: "/v1/customers/cust_prod", auth: bearer(e.prodKey)})
	if del.status != http.StatusNoContent {
		t.Errorf("DELETE own customer: got %s, want 204", del)
	}
	checkError(t, "GET after DELETE", e.get(t, "/v1/customers/cust_prod", e.prodKey), http.StatusNotFound)
}

func TestMethodNotAllowed(t *testing.T) {
	e := newEnv(t, nil)
	tests := []struct {
		name      string
		req       request
		wantAllow string
	}{
		{"PUT /v1/usage", request{method: "PUT", path: "/v1/usage", auth: bearer(e.testKey), body: `{}`}, "GET"},
		{"PUT /v1/usage without a key", request{method: "PUT", path: "/v1/usage"}, "GET"},
		{"DELETE /v1/calls/start", request{method: "DELETE", path: "/v1/calls/start", auth: bearer(e.testKey)}, "POST"},
	}
	for _, tt := range tests {
		res := e.do(t, tt.req)
		checkError(t, tt.name, res, http.StatusMethodNotAllowed)
		if allow := res.header.Get("Allow"); !strings.Contains(allow, tt.wantAllow) {
			t.Errorf("%s: Allow = %q, want it to hold %s", tt.name, allow, tt.wantAllow)
		}
	}
}

func TestConflict(t *testing.T) {
	e := newEnv(t, nil)
	mustOK(t, "start", e.post(t, "/v1/calls/start", startBody("cf-1", "+14155550100")))
	checkError(t, "start again with another body", e.post(t, "/v1/calls/start", startBody("cf-1", "+14155550199")), http.StatusConflict)

	end := `{"call_id": "cf-1", "intent": "refund", "intent_status": "open"}`
	mustOK(t, "end", e.post(t, "/v1/calls/end", end))
	checkError(t, "end again with another body", e.post(t, "/v1/calls/end", `{"call_id": "cf-1", "intent": "refund", "intent_status": "resolved"}`),
		http.StatusConflict)
	// The first end still replays.
	if res := e.post(t, "/v1/calls/end", end); res.status != http.StatusOK || res.header.Get("Idempotent-Replayed") != "true" {
		t.Errorf("end again with the same body: got %s, Idempotent-Replayed %q; want 200, true", res, res.header.Get("Idempotent-Replayed"))
	}
}

// TestInFlight holds a start's lease in the store, as a request still at
// work would, and sends its twin.
func TestInFlight(t *testing.T) {
	e := newEnv(t, nil)
	tests := []struct {
		name string
		key  string
	}{
		{"by call_id", ""},
		{"by Idempotency-Key", "idem-inflight"},
	}
	for i, tt := range tests {
		body := startBody(fmt.Sprintf("if-%d", i), "+14155550100")
		req, err := callapi.ParseStart([]byte(body))
		if err != nil {
			t.Fatalf("ParseStart(%s) = %v", body, err)
		}
		c := storage.Claim{
			Op: storage.OpStart, CallID: req.CallID, Key: tt.key, Fingerprint: callapi.Fingerprint(req), Now: now,
			Lease: 30 * time.Second, Replay: 24 * time.Hour, KeyTTL: 24 * time.Hour, Retention: 7 * 24 * time.Hour,
			Period: callcontext.Period(now),
		}
		sc := callcontext.Scope{Tenant: "default", Mode: callcontext.Test}
		if res, err := e.store.Claim(t.Context(), sc, c); err != nil || res.Outcome != storage.Claimed {
			t.Fatalf("%s: Claim() = %v, %v; want Claimed", tt.name, res.Outcome, err)
		}
		var header map[string]string
		if tt.key != "" {
			header = map[string]string{"Idempotency-Key": tt.key}
		}
		res := e.do(t, request{method: "POST", path: "/v1/calls/start", auth: bearer(e.testKey), body: body, header: header})
		checkError(t, tt.name, res, http.StatusConflict)
		if got := res.header.Get("Retry-After"); got != "1" {
			t.Errorf("%s: Retry-After = %q, want 1", tt.name, got)
		}
	}
}

func TestBodyLimits(t *testing.T) {
	e := newEnv(t, nil)
	pad := func(body string, size int) string { return body + strings.Repeat(" ", size-len(body)) }
	bigEnd := func(callID, ref string) string { return variablesBody(callID, ref, 0, 100, 1024) }
	tests := []struct {
		name       string
		path, body string
		want       int
	}{
		{"start of exactly 64 KiB", "/v1/calls/start", pad(startBody("bl-1", "+14155550100"), 64<<10), http.StatusOK},
		{"start over 64 KiB", "/v1/calls/start", pad(startBody("bl-2", "+14155550100"), 64<<10+1), http.StatusRequestEntityTooLarge},
		{"start of 400 KiB", "/v1/calls/start", pad(startBody("bl-3", "+14155550100"), 400<<10), http.StatusRequestEntityTooLarge},
		{"end of 400 KiB with 100 variables of 1,024 chars", "/v1/calls/end", pad(bigEnd("bl-4", "cust_bl4"), 400<<10), http.StatusOK},
		{"end of exactly 512 KiB", "/v1/calls/end", pad(bigEnd("bl-5", "cust_bl5"), 512<<10), http.StatusOK},
		{"end over 512 KiB", "/v1/calls/end", pad(bigEnd("bl-6", "cust_bl6"), 512<<10+1), http.StatusRequestEntityTooLarge},
	}
	for _, tt := range tests {
		res := e.post(t, tt.path, tt.body)
		if tt.want == http.StatusOK {
			mustOK(t, tt.name, res)
			continue
		}
		checkError(t, tt.name, res, tt.want)
	}
}

func TestMediaType(t *testing.T) {
	e := newEnv(t, nil)
	tests := []struct {
		name, contentType string
		want              int
	}{
		{"text/plain", "text/plain", http.StatusUnsupportedMediaType},
		{"no Content-Type", "", http.StatusUnsupportedMediaType},
		{"form", "application/x-www-form-urlencoded", http.StatusUnsupportedMediaType},
		{"JSON with charset", "application/json; charset=utf-8", http.StatusOK},
		{"a +json type", "application/vnd.api+json", http.StatusOK},
	}
	for i, tt := range tests {
		for _, path := range []string{"/v1/calls/start", "/v1/calls/end"} {
			name := tt.name + " on " + path
			body := startBody(fmt.Sprintf("mt-%d", i), "+14155550100")
			res := e.do(t, request{method: "POST", path: path, auth: bearer(e.testKey), body: body,
				header: map[string]string{"Content-Type": tt.contentType}})
			if tt.want == http.StatusOK {
				mustOK(t, name, res)
				continue
			}
			checkError(t, name, res, tt.want)
		}
	}
}

func TestKeyReused(t *testing.T) {
	e := newEnv(t, nil)
	key := map[string]string{"Idempotency-Key": "idem-422"}
	post := func(path, body string) response {
		return e.do(t, request{method: "POST", path: path, auth: bearer(e.testKey), body: body, header: key})
	}
	mustOK(t, "start with a key", post("/v1/calls/start", startBody("kr-1", "+14155550100")))
	checkError(t, "start with the key and another body", post("/v1/calls/start", startBody("kr-1", "+14155550199")),
		http.StatusUnprocessableEntity)
	checkError(t, "start with the key and another call", post("/v1/calls/start", startBody("kr-2", "+14155550100")),
		http.StatusUnprocessableEntity)

	first := post("/v1/calls/end", `{"call_id": "kr-1", "intent": "refund"}`)
	mustOK(t, "end with a key", first)
	// Same call_id with another body is a 409 without a key; the key's 422 wins.
	checkError(t, "end with the key and another body", post("/v1/calls/end", `{"call_id": "kr-1", "intent": "billing"}`),
		http.StatusUnprocessableEntity)
	res := post("/v1/calls/end", `{"intent": "refund", "call_id": "kr-1"}`)
	if res.status != http.StatusOK || res.header.Get("Idempotent-Replayed") != "true" || !bytes.Equal(res.body, first.body) {
		t.Errorf("end with the key and the same body: got %s, Idempotent-Replayed %q; want the first 200 %s replayed",
			res, res.header.Get("Idempotent-Replayed"), first.body)
	}
}

func TestReplay(t *testing.T) {
	e := newEnv(t, nil)
	tests := []struct {
		name         string
		path         string
		first, again string
		header       map[string]string
	}{
		{"identical start", "/v1/calls/start",
			`{"call_id": "rp-1", "identity_hints": {"ani": "+14155550100", "external_ids": {"crm": "42", "shop": "7"}}}`,
			`{"call_id": "rp-1", "identity_hints": {"ani": "+14155550100", "external_ids": {"crm": "42", "shop": "7"}}}`, nil},
		{"start with keys reordered and whitespace changed", "/v1/calls/start",
			`{"call_id": "rp-2", "identity_hints": {"ani": "+14155550100", "external_ids": {"crm": "42", "shop": "7"}}, "channel": "phone"}`,
			"{\n\t\"channel\":\"phone\",\"identity_hints\":{ \"external_ids\" : {\"shop\":\"7\",\"crm\":\"42\"},\"ani\":\"+14155550100\"},\r\n\"call_id\":\"rp-2\"}  ", nil},
		{"start flat then nested", "/v1/calls/start",
			`{"call_id": "rp-3", "ani": "+14155550100", "external_ids": {"crm": "42"}}`,
			`{"call_id": "rp-3", "identity_hints": {"ani": "+14155550100", "external_ids": {"crm": "42"}}}`, nil},
		{"start with an Idempotency-Key", "/v1/calls/start",
			`{"call_id": "rp-4", "identity_hints": {"ani": "+14155550100"}}`,
			`{"identity_hints": {"ani": "+1 (415) 555-0100"}, "call_id": "rp-4"}`, map[string]string{"Idempotency-Key": "idem-rp-4"}},
		{"identical end", "/v1/calls/end",
			`{"call_id": "rp-1", "intent": "refund", "variables": {"name": "Ann"}}`,
			`{"call_id": "rp-1", "intent": "refund", "variables": {"name": "Ann"}}`, nil},
		{"end with keys reordered and whitespace changed", "/v1/calls/end",
			`{"call_id": "rp-2", "intent": "refund", "intent_status": "open", "variables": {"name": "Ann", "plan": "gold"}}`,
			"{\"variables\":{\"plan\":\"gold\",\n\"name\":\"Ann\"},\"intent_status\":\"open\",\"intent\":\"refund\",\"call_id\":\"rp-2\"}", nil},
	}
	for _, tt := range tests {
		send := func(body string) response {
			return e.do(t, request{method: "POST", path: tt.path, auth: bearer(e.testKey), body: body, header: tt.header})
		}
		first := send(tt.first)
		mustOK(t, tt.name+": first", first)
		if got := first.header.Get("Idempotent-Replayed"); got != "" {
			t.Errorf("%s: first Idempotent-Replayed = %q, want none", tt.name, got)
		}
		again := send(tt.again)
		if again.status != http.StatusOK {
			t.Errorf("%s: again got %s, want 200", tt.name, again)
			continue
		}
		if got := again.header.Get("Idempotent-Replayed"); got != "true" {
			t.Errorf("%s: again Idempotent-Replayed = %q, want true", tt.name, got)
		}
		if !bytes.Equal(again.body, first.body) {
			t.Errorf("%s: again body = %s, want the first %s", tt.name, again.body, first.body)
		}
	}
	// A replay is not counted: 4 starts and 2 ends.
	if u := getUsage(t, e, e.testKey); u.Requests != 6 {
		t.Errorf("usage after replays: requests = %d, want 6", u.Requests)
	}
}

func TestOrderOfChecks(t *testing.T) {
	e := newEnv(t, nil)
	tests := []struct {
		name string
		req  request
		want int
	}{
		{"unknown key with a malformed body", request{method: "POST", path: "/v1/calls/start",
			auth: "Bearer sk_test_" + strings.Repeat("Z", 40), body: `{"call_id":`}, http.StatusUnauthorized},
		{"no key with a malformed end", request{method: "POST", path: "/v1/calls/end", body: `[`}, http.StatusUnauthorized},
		{"no key with text/plain", request{method: "POST", path: "/v1/calls/start", body: `x`,
			header: map[string]string{"Content-Type": "text/plain"}}, http.StatusUnauthorized},
		{"no key with a body over the limit", request{method: "POST", path: "/v1/calls/start",
			body: strings.Repeat(" ", 64<<10+1)}, http.StatusUnauthorized},
		{"no key on an unknown customer", request{method: "GET", path: "/v1/customers/cust_nobody"}, http.StatusUnauthorized},
		{"no key on an unknown call", request{method: "GET", path: "/v1/calls/nothing"}, http.StatusUnauthorized},
	}
	for _, tt := range tests {
		checkError(t, tt.name, e.do(t, tt.req), tt.want)
	}
}

func TestLogsHoldNoPersonalData(t *testing.T) {
	e := newEnv(t, nil)
	var ids []string
	send := func(name string, r request, want int) {
		t.Helper()
		res := e.do(t, r)
		if res.status != want {
			t.Errorf("%s: got %s, want %d", name, res, want)
		}
		ids = append(ids, res.header.Get("X-Request-Id"))
	}
	key := bearer(e.testKey)
	send("start", request{method: "POST", path: "/v1/calls/start", auth: key,
		body: `{"call_id": "log-1", "identity_hints": {"ani": "+14155551234"}}`}, http.StatusOK)
	send("end", request{method: "POST", path: "/v1/calls/end", auth: key,
		body: `{"call_id": "log-1", "intent": "refund", "variables": {"name": "John Doe"}}`}, http.StatusOK)
	send("start again, recognized", request{method: "POST", path: "/v1/calls/start", auth: key,
		body: `{"call_id": "log-2", "identity_hints": {"ani": "+1 (415) 555-1234"}}`}, http.StatusOK)
	send("invalid start", request{method: "POST", path: "/v1/calls/start", auth: key,
		body: `{"call_id": "log-3", "identity_hints": {"ani": "+1415555123400000000"}}`}, http.StatusBadRequest)
	send("sensitive end", request{method: "POST", path: "/v1/calls/end", auth: key,
		body: `{"call_id": "log-4", "customer_ref": "cust_log", "variables": {"name": "John Doe", "ssn": "123-45-6789"}}`}, http.StatusBadRequest)
	send("conflicting start", request{method: "POST", path: "/v1/calls/start", auth: key,
		body: `{"call_id": "log-1", "identity_hints": {"ani": "+14155551234"}, "channel": "sms"}`}, http.StatusConflict)
	e.srv.Close() // waits for every handler, so every log line is written

	logs := e.logs.String()
	for _, secret := range []string{"4155551234", "John Doe", "123-45-6789"} {
		if strings.Contains(logs, secret) {
			t.Errorf("log output holds %q:\n%s", secret, logs)
		}
	}
	var gotIDs []string
	sc := bufio.NewScanner(strings.NewReader(logs))
	for sc.Scan() {
		var line map[string]any
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Errorf("log line %q is not JSON: %v", sc.Text(), err)
			continue
		}
		id, _ := line["request_id"].(string)
		if id == "" {
			t.Errorf("log line %s has no request_id", sc.Text())
		}
		gotIDs = append(gotIDs, id)
	}
	slices.Sort(gotIDs)
	slices.Sort(ids)
	if diff := cmp.Diff(gotIDs, ids); diff != "" {
		t.Errorf("request_ids of the log lines (-got +want the X-Request-Id headers):\n%s", diff)
	}
	if !regexp.MustCompile(`"ani":"\*\*\*1234"`).MatchString(logs) {
		t.Errorf("log output has no redacted ani \"***1234\":\n%s", logs)
	}
}

// FuzzStartEnd posts each body to start and end: nothing may be a 5xx, and
// every refusal has the documented error body.
func FuzzStartEnd(f *testing.F) {
	seeds := []string{
		`{"call_id": "fz-1", "identity_hints": {"ani": "+14155550100", "dnis": "+14155550999"}, "telco": {"line_type": "mobile", "attestation": "A"}}`,
		`{"call_id": "fz-2", "ani": "+14155550101", "external_ids": {"crm": "42"}}`,
		`{"call_id": "fz-3", "customer_ref": "cust_fz", "intent": "refund", "intent_is_open": true, "variables": {"name": "A", "n": 1.5, "b": true, "w": {"value": "x"}, "d": null}}`,
		`{"call_id": `,
		``,
		`null`,
		`[]`,
		`"call_id"`,
		`{"call_id": 123, "identity_hints": [], "telco": "x", "variables": 7, "external_ids": {"k": 1}, "intent_is_open": "yes"}`,
		`{"call_id": "fz-10", "customer_ref": "cust_big", "variable_ttl_seconds": 1e309, "variables": {"big": 1e999, "tiny": -0.0e-400, "long": 123456789012345678901234567890}}`,
		`{"call_id": "fz-11", "customer_ref": "cust_ttl", "variable_ttl_seconds": 36028797019050368, "variables": {"a": "b"}}`,
		`{"call_id": null, "identity_hints": {"ani": null, "external_ids": {"k": null}, "customer_ref": null}, "telco": {"line_type": null}, "variables": {"a": {"value": null}, "b": {"value": {"value": "x"}}, "c": {}}}`,
		`{"call_id": "fz-13", "identity_hints": {"customer_ref": "cust_ü", "ani": "+١٤١٥٥٥٥٠١٠٠"}, "variables": {"名前": "山田 太郎", "e": "\ud83d\ude00", "s": "\ud800"}}`,
		`{"call_id": "fz-14", "identity_hints": {"ani": "anonymous"}, "intent": "x"}`,
		`{"call_id": "fz-15", "identity_hints": {"external_ids": {"": "x", "k": ""}}, "external_ids": {"a b": "c"}}`,
		`{"call_id": "fz-16", "call_id": "fz-16b", "identity_hints": {"ani": "+14155550100"}, "identity_hints": {"customer_ref": "c"}}`,
	}
	for _, s := range seeds {
		f.Add([]byte(s), "")
	}
	f.Add([]byte(seeds[0]), "key-1")
	f.Add([]byte(seeds[2]), strings.Repeat("k", 300))
	f.Add([]byte(seeds[1]), "\u00e9\t+14155550100")
	e := newEnv(f, nil)
	f.Fuzz(func(t *testing.T, body []byte, key string) {
		if strings.ContainsFunc(key, func(r rune) bool { return (r < ' ' && r != '\t') || r == 0x7f }) {
			return // no HTTP client can send it as an Idempotency-Key
		}
		for _, path := range []string{"/v1/calls/start", "/v1/calls/end"} {
			// Not e.do: the fuzzer cancels its inputs' contexts when its time is up.
			req, _ := http.NewRequestWithContext(context.Background(), "POST", e.srv.URL+path, bytes.NewReader(body))
			req.Header.Set("Authorization", bearer(e.testKey))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Idempotency-Key", key)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatalf("POST %s: %v", path, err)
			}
			got, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				t.Fatalf("POST %s: read body: %v", path, err)
			}
			apitest.Check(t, req, resp, got)
			if resp.StatusCode >= 500 {
				t.Fatalf("POST %s %q (Idempotency-Key %q): got %d %s, want no 5xx", path, body, key, resp.StatusCode, got)
			}
			if resp.StatusCode != http.StatusOK {
				var eb errorBody
				if err := json.Unmarshal(got, &eb); err != nil || eb.Error != http.StatusText(resp.StatusCode) || eb.RequestID == "" {
					t.Errorf("POST %s %q: error body %s is not the documented shape (%v)", path, body, got, err)
				}
			}
		}
	})
}
