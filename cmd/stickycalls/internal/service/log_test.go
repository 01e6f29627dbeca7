package service

import (
	"strings"
	"testing"
)

func TestRedactWriter(t *testing.T) {
	for in, want := range map[string]string{
		`{"ani":"+14155551234"}`:            `{"ani":"***1234"}`,
		`{"url":"/x?From=%2B14155551234"}`:  `{"url":"/x?From=***1234"}`,
		`{"msg":"\u002b14155551234"}`:       `{"msg":"***1234"}`,
		`{"path":"/v1/usage","status":200}`: `{"path":"/v1/usage","status":200}`,
	} {
		var b strings.Builder
		if _, err := (redactWriter{&b}).Write([]byte(in)); err != nil || b.String() != want {
			t.Errorf("redact(%s) = %s, %v; want %s", in, b.String(), err, want)
		}
	}
}

// The last-resort scrubber of free text masks phone-shaped runs however
// they are written, and leaves the service's own ids, times and addresses.
func TestScrub(t *testing.T) {
	for in, want := range map[string]string{
		"read call +1-415-555-0198: not found":         "read call ***0198: not found",
		"tel:14155550197 refused":                      "tel:***0197 refused",
		"customer 14155550199 missing":                 "customer ***0199 missing",
		"call (415) 555-0196 again":                    "call ***0196 again",
		"dotted 415.555.0195.":                         "dotted ***0195.",
		"intl +44 20 7183 8750":                        "intl ***8750",
		"nbsp 415\u00a0555\u00a00194":                  "nbsp ***0194",
		"dial tcp 127.0.0.1:6379: connection refused":  "dial tcp 127.0.0.1:6379: connection refused",
		"at 2026-12-01T16:25:58.205Z":                  "at 2026-12-01T16:25:58.205Z",
		"at 2026-12-01 16:25:58":                       "at 2026-12-01 16:25:58",
		"req_3f2a1234567890abcdef and cust_1234567890": "req_3f2a1234567890abcdef and cust_1234567890",
		"took 1234567ms, 150 ms, version 1.25.0":       "took 1234567ms, 150 ms, version 1.25.0",
		"local 555-0198":                               "local ***0198",
	} {
		if got := scrub(in); got != want {
			t.Errorf("scrub(%q) = %q, want %q", in, got, want)
		}
	}
}
