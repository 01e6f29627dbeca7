package main

import (
	"bufio"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// Planted personal data, sent everywhere a client can put it, never
// reaches a log line or a metric: not in clear, not in another spelling.
func TestNoPIIInLogsOrMetrics(t *testing.T) {
	t.Parallel()
	const tok, number = "pii0token", "+18005550100"
	addr := freeAddr(t)
	s := startServer(t, map[string]string{"STICKYCALLS_ADDR": addr, "STICKYCALLS_CONFIG": dialConfig(t, number), "TWILIO_AUTH_TOKEN": tok,
		"STICKYCALLS_PUBLIC_URL": "http://" + addr, "STICKYCALLS_LOG_LEVEL": "debug"})
	reqs := []struct {
		method, path, body string
		headers            []string
	}{
		{"POST", "/v1/calls/start", `{"call_id":"+1-415-555-0198","identity_hints":{"ani":"+14155550191","external_ids":{"crm":"CRM-Zebediah"}}}`, []string{"Idempotency-Key", "+14155550192"}},
		{"POST", "/v1/calls/end", `{"call_id":"+1-415-555-0198","variables":{"name":"Zebediah Quux","email":"zeb@example.com"}}`, nil},
		{"POST", "/v1/calls/start", `{"call_id":"tel:14155550197","identity_hints":{"ani":"415 555 0196"}}`, nil},
		{"POST", "/v1/calls/end", `{"call_id":"tel:14155550197","variables":{"card":"4111 1111 1111 1111","ssn":"123-45-6789"}}`, nil},
		{"POST", "/v1/calls/end", `{"call_id":"call-x","intent":"4111111111111111","external_ids":{"password":"hunter2"}}`, nil},
		{"GET", "/v1/customers/14155550199", "", nil},
		{"GET", "/v1/customers/John.Doe", "", nil},
		{"GET", "/v1/calls/+14155550189", "", nil},
		{"DELETE", "/v1/customers/Zebediah.Quux", "", nil},
		{"GET", "/nope/14155550193/Zebediah", "", nil},
		{"POST", "/v1/calls/start", `{"call_id":"Zebediah 14155550188", "identity_hints": {"ani": "not a number 14155550187"}}`, nil},
	}
	for _, r := range reqs {
		s.do(r.method, r.path, r.body, r.headers...)
	}
	call := newTwilioCall(t, tok, "http://"+addr, "CA"+strings.Repeat("5", 32), "+14155550186", number)
	call.post(addr, "/voice/incoming")
	call.form.Set("SpeechResult", "No, this is Zebediah's wife")
	call.post(addr, "/voice/confirm")
	call.form.Set("CallStatus", "completed")
	call.post(addr, "/voice/status")
	// A refused signature logs the URL it checked, without the query's values.
	form := url.Values{"From": {"+14155550185"}, "To": {number}, "CallSid": {"CA1"}}
	resp, err := http.PostForm(s.base+"/voice/incoming?caller=14155550184", form)
	if err == nil {
		resp.Body.Close()
	}

	resp, err = http.Get(s.base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var logs strings.Builder
	sc := bufio.NewScanner(strings.NewReader(s.out.String()))
	lines := 0
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "{") { // the first key is printed once, on purpose
			logs.WriteString(sc.Text() + "\n")
			lines++
		}
	}
	if lines < len(reqs) {
		t.Fatalf("only %d log lines for %d requests: the scan would prove nothing", lines, len(reqs))
	}
	planted := []string{
		"4155550198", "415-555-0198", "14155550197", "4155550197", "4155550196", "555 0196", "14155550199", "4155550199",
		"4155550189", "4155550193", "4155550192", "4155550191", "4155550188", "4155550187", "4155550186", "4155550185", "4155550184",
		"John.Doe", "John", "Zebediah", "Quux", "zeb@example.com", "4111", "123-45-6789", "hunter2", "CRM-",
	}
	for where, text := range map[string]string{"logs": logs.String(), "/metrics": string(metrics)} {
		for _, p := range planted {
			if i := strings.Index(text, p); i >= 0 {
				lo, hi := max(i-120, 0), min(i+120, len(text))
				t.Errorf("%s hold %q: …%s…", where, p, text[lo:hi])
			}
		}
	}
}
