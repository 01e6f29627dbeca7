package main

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/stickycalls/stickycalls/cmd/stickycalls/internal/service"
	"github.com/stickycalls/stickycalls/config"
	"github.com/stickycalls/stickycalls/context/callcontext"
	"github.com/stickycalls/stickycalls/context/outbox"
	"github.com/stickycalls/stickycalls/voice"
)

// fakeLookup answers Twilio Lookup v2 as Twilio would: numbers ending in 9
// are landlines, the others mobiles.
type fakeLookup struct{}

func (fakeLookup) RoundTrip(r *http.Request) (*http.Response, error) {
	number, _ := strings.CutPrefix(r.URL.Path, "/v2/PhoneNumbers/")
	kind := "mobile"
	if strings.HasSuffix(number, "9") {
		kind = "landline"
	}
	body := `{"phone_number":"` + number + `","valid":true,"line_type_intelligence":{"type":"` + kind + `","error_code":null}}`
	return &http.Response{StatusCode: 200, Status: "200 OK", Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: http.Header{"Content-Type": {"application/json"}}, Body: io.NopCloser(strings.NewReader(body)),
		ContentLength: int64(len(body)), Request: r}, nil
}

// The operators' checklist read off /metrics after scripted traffic:
// every series with the exact value the traffic implies.
func TestMetricsAfterTraffic(t *testing.T) {
	got := scrapeAfterTraffic(t, false)
	for _, want := range []string{
		`stickycalls_calls_started_total{mode="test",recommendation="ignore",tenant="default"} 1`,
		`stickycalls_calls_started_total{mode="test",recommendation="reuse",tenant="default"} 1`,
		`stickycalls_calls_started_total{mode="prod",recommendation="ignore",tenant="default"} 3`,
		`stickycalls_calls_started_total{mode="prod",recommendation="confirm",tenant="default"} 2`,
		`stickycalls_calls_ended_total{created="true",mode="test",tenant="default"} 1`,
		`stickycalls_calls_ended_total{created="false",mode="test",tenant="default"} 1`,
		`stickycalls_calls_ended_total{created="true",mode="prod",tenant="default"} 1`,
		`stickycalls_identity_confidence_count{mode="test",tenant="default"} 2`,
		`stickycalls_identity_confidence_count{mode="prod",tenant="default"} 5`,
		`stickycalls_identity_confidence_bucket{mode="test",tenant="default",le="0.5"} 1`,
		`stickycalls_billable_calls_total{billable="true",mode="test",tenant="default"} 1`,
		`stickycalls_billable_calls_total{billable="false",mode="test",tenant="default"} 1`,
		`stickycalls_billable_calls_total{billable="true",mode="prod",tenant="default"} 3`,
		`stickycalls_billable_calls_total{billable="false",mode="prod",tenant="default"} 2`,
		`stickycalls_intents_total{mode="test",tenant="default",transition="opened"} 1`,
		`stickycalls_intents_total{mode="test",tenant="default",transition="resolved"} 1`,
		`stickycalls_variables_refused_total{reason="card_number"} 1`,
		`stickycalls_variables_refused_total{reason="ssn"} 0`,
		`stickycalls_confirm_answers_total{answer="yes"} 1`,
		`stickycalls_confirm_answers_total{answer="no"} 1`,
		`stickycalls_confirm_answers_total{answer="none"} 0`,
		`stickycalls_voice_fallbacks_total{reason="unknown_number"} 1`,
		`stickycalls_lookup_requests_total{outcome="answered",tenant="default"} 2`,
		`stickycalls_lookup_requests_total{outcome="hit",tenant="default"} 2`,
		`stickycalls_rate_limited_total{mode="test",tenant="default"} 1`,
		`stickycalls_http_requests_total{route="GET /v1/usage",status="401"} 1`,
		`stickycalls_http_requests_total{route="GET /v1/usage",status="429"} 1`,
		`stickycalls_store_operation_duration_seconds_count{operation="claim"} 10`,
		`stickycalls_store_errors_total{operation="claim"} 0`,
		`stickycalls_voice_streams_open 0`,
	} {
		if !strings.Contains(got, want+"\n") {
			name := want[:strings.IndexAny(want, "{ ")]
			t.Errorf("/metrics lacks %s; it has:\n%s", want, strings.Join(regexp.MustCompile(`(?m)^`+regexp.QuoteMeta(name)+`.*$`).FindAllString(got, -1), "\n"))
		}
	}
	if !regexp.MustCompile(`(?m)^stickycalls_build_info\{go_version="go[^"]+",version="[^"]+"\} 1$`).MatchString(got) {
		t.Error("/metrics lacks stickycalls_build_info")
	}
}

// scrapeAfterTraffic builds the app in-process as serve does (a bbolt store
// and an outbox in a temporary folder, but a fake Twilio Lookup), plays the
// scripted traffic TestMetricsAfterTraffic checks (REST in test mode, voice
// in prod mode) and returns what GET /metrics then serves. With overQuota, a
// second tenant whose plan allows one call a month then starts two, the
// second refused with 402, so that stickycalls_quota_refused_total appears
// too (it does only from the first 402; TestMetricsAfterTraffic plays
// without it, as its counts of store operations exclude those calls).
func scrapeAfterTraffic(t *testing.T, overQuota bool) string {
	t.Helper()
	const tok, number, acct = "metrics0token", "+18005550100", "AC0123456789abcdef0123456789abcdef"
	dir := t.TempDir()
	file := filepath.Join(dir, "config.yaml")
	yaml := "tenants:\n  default:\n    plans:\n      test: {rate_limit_per_minute: 10}\n    twilio: {account_sid: " + acct + "}\n" +
		"  capped:\n    plans:\n      prod: {monthly_quota: 1}\n" +
		"numbers:\n  \"" + number + "\":\n    next: {dial: \"+14155550000\"}\n"
	if err := os.WriteFile(file, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"STICKYCALLS_DATA": filepath.Join(dir, "db"), "STICKYCALLS_CONFIG": file, "TWILIO_AUTH_TOKEN": tok}
	cfg, err := config.Load(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	be, err := service.OpenStore(t.Context(), cfg, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer be.Close()
	reg := prometheus.NewRegistry()
	reg.MustRegister(be.Collectors...)
	ob, err := outbox.Open(filepath.Join(dir, "outbox.db"), outbox.Options{Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	defer ob.Close()
	a, err := service.New(cfg, be, zerolog.Nop(), reg, service.Outside{Now: time.Now, Lookup: fakeLookup{}, Outbox: ob})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(a.Handler)
	defer srv.Close()
	testKey, _, _ := a.Keys.Create(t.Context(), "default", callcontext.Test)
	prodKey, _, _ := a.Keys.Create(t.Context(), "default", callcontext.Prod)
	rest := func(key, method, path, body string) int {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+key)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	voicePost := func(path string, form url.Values) {
		t.Helper()
		req, _ := http.NewRequest("POST", srv.URL+path, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("X-Twilio-Signature", voice.Sign(tok, srv.URL+path, form))
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("POST %s: %v %v", path, resp, err)
		}
		resp.Body.Close()
	}
	call := func(sid, from, to string) url.Values {
		return url.Values{"CallSid": {sid}, "AccountSid": {acct}, "From": {from}, "To": {to}, "CallStatus": {"ringing"}}
	}

	// REST, test mode: a new caller with an intent, back and reused, the
	// intent resolved; a card number refused; a request without a key.
	mobile := `"identity_hints":{"ani":"+14155550111"},"telco":{"line_type":"mobile","attestation":"A"}`
	for _, step := range []struct {
		path, body string
		want       int
	}{
		{"/v1/calls/start", `{"call_id":"t1",` + mobile + `}`, 200},
		{"/v1/calls/end", `{"call_id":"t1","customer_ref":"cust_ann","intent":"billing","intent_status":"open","variables":{"name":"Ann"}}`, 200},
		{"/v1/calls/start", `{"call_id":"t2",` + mobile + `}`, 200},
		{"/v1/calls/end", `{"call_id":"t2","customer_ref":"cust_ann","intent":"billing","intent_status":"resolved"}`, 200},
		{"/v1/calls/end", `{"call_id":"t3","customer_ref":"cust_ann","variables":{"card":"4111 1111 1111 1111"}}`, 400},
	} {
		if got := rest(testKey, "POST", step.path, step.body); got != step.want {
			t.Fatalf("POST %s %s = %d, want %d", step.path, step.body, got, step.want)
		}
	}
	if got := rest("sk_test_nope", "GET", "/v1/usage", ""); got != 401 {
		t.Fatalf("a bad key = %d, want 401", got)
	}
	// The plan allows 10 a minute, enforced with a 10 % grace (11): 5
	// were used, so the 7th usage read is refused.
	for i := range 7 {
		want := map[bool]int{true: 429, false: 200}[i == 6]
		if got := rest(testKey, "GET", "/v1/usage", ""); got != want {
			t.Fatalf("usage read %d = %d, want %d", i+1, got, want)
		}
	}

	// Voice, prod mode: a landline customer saved over REST, then asked to
	// confirm twice (yes, then no); a new mobile caller twice (Lookup
	// asked, then cached); a call to an unknown number.
	landline := "+14155550119"
	if rest(prodKey, "POST", "/v1/calls/start", `{"call_id":"p1","identity_hints":{"ani":"`+landline+`"},"telco":{"line_type":"landline"}}`) != 200 ||
		rest(prodKey, "POST", "/v1/calls/end", `{"call_id":"p1","customer_ref":"cust_lee","variables":{"name":"Lee"}}`) != 200 {
		t.Fatal("saving the landline customer failed")
	}
	for i, digit := range []string{"1", "2"} {
		f := call("CA"+strings.Repeat(string(rune('a'+i)), 32), landline, number)
		voicePost("/voice/incoming", f)
		f.Set("Digits", digit)
		voicePost("/voice/confirm", f)
	}
	voicePost("/voice/incoming", call("CA"+strings.Repeat("m", 32), "+14155550122", number))
	voicePost("/voice/incoming", call("CA"+strings.Repeat("n", 32), "+14155550122", number))
	voicePost("/voice/incoming", call("CA"+strings.Repeat("u", 32), "+14155550122", "+18005559999"))

	if overQuota {
		cappedKey, _, err := a.Keys.Create(t.Context(), "capped", callcontext.Prod)
		if err != nil {
			t.Fatal(err)
		}
		for i, want := range []int{200, 402} {
			body := fmt.Sprintf(`{"call_id":"q%d",%s}`, i, mobile)
			if got := rest(cappedKey, "POST", "/v1/calls/start", body); got != want {
				t.Fatalf("capped start %d = %d, want %d", i+1, got, want)
			}
		}
	}

	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return string(raw)
}
