package callapi

import (
	"errors"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

// Start and end bodies: any bytes give a request or a list of problems,
// never a panic; what is accepted holds no bad text and no sensitive data.
func FuzzParseStart(f *testing.F) {
	for _, s := range []string{
		`{"call_id":"c1","identity_hints":{"ani":"+14155551234"}}`,
		`{"call_id":"c1","ani":"(415) 555-1234","external_ids":{"crm":"42"},"telco":{"line_type":"mobile","attestation":"A"}}`,
		`{"call_id":"c1","identity_hints":{"customer_ref":"cust_1"},"channel":"sms"}`,
		`{"call_id":"","identity_hints":[]}`, `[]`, `null`, `{"call_id":"c\u0000"}`, "{\"call_id\":\"\xff\"}",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := ParseStart(body)
		if err != nil {
			checkProblems(t, err)
			return
		}
		if !callIDPattern.MatchString(req.CallID) || req.Hints.Empty() {
			t.Errorf("ParseStart(%q) accepted call_id %q hints %+v", body, req.CallID, req.Hints)
		}
		for k, v := range req.Hints.ExternalIDs {
			checkText(t, k+"="+v)
		}
	})
}

func FuzzParseEnd(f *testing.F) {
	for _, s := range []string{
		`{"call_id":"c1","customer_ref":"cust_1","intent":"billing","intent_status":"open","variables":{"name":"Ada","n":3,"ok":true,"w":{"value":"x"}}}`,
		`{"call_id":"c1","variables":{"card":"4111 1111 1111 1111","ssn":"123-45-6789","note":"a\tb"}}`,
		`{"call_id":"c1","external_ids":{"crm":"1"},"variable_ttl_seconds":3600,"intent_is_open":false,"intent":"x"}`,
		`{"call_id":"c1","variables":{"note":"\ud800"}}`, `{}`, `{"variables":null}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := ParseEnd(body)
		if err != nil {
			checkProblems(t, err)
			return
		}
		for k, v := range req.Variables {
			if v != nil {
				checkText(t, *v)
				if r := sensitive(k, v); r.why != "" {
					t.Errorf("ParseEnd(%q) accepted variable %s: %s", body, k, r.why)
				}
			}
		}
		if req.Intent != "" && sensitiveText(req.Intent).why != "" {
			t.Errorf("ParseEnd(%q) accepted intent %q", body, req.Intent)
		}
	})
}

// checkProblems checks that a refusal lists at least one problem, each
// with a message.
func checkProblems(t *testing.T, err error) {
	t.Helper()
	var v *ValidationError
	if !errors.As(err, &v) || len(v.Issues) == 0 {
		t.Fatalf("refusal %v is not a list of problems", err)
	}
	for _, i := range v.Issues {
		if i.Message == "" {
			t.Errorf("problem at %v has no message", i.Path)
		}
	}
}

// checkText checks that accepted text is valid UTF-8 with no control
// characters but tab and newline.
func checkText(t *testing.T, s string) {
	t.Helper()
	if !utf8.ValidString(s) || strings.ContainsFunc(s, func(r rune) bool { return unicode.IsControl(r) && r != '\t' && r != '\n' }) {
		t.Errorf("accepted text %q", s)
	}
}
