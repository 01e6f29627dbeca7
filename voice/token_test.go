package voice

import (
	"strings"
	"testing"
	"time"
)

func TestStreamToken(t *testing.T) {
	now := time.Date(2026, 2, 7, 10, 30, 0, 0, time.UTC)
	acct := Account{Tenant: "acme", AuthToken: "current0token", PreviousAuthToken: "previous0token"}
	good := streamToken("current0token", "CA1", now.Add(streamTokenTTL))
	sum, exp, _ := strings.Cut(good, ".")
	tests := []struct {
		name, tok, callSID string
		at                 time.Time
		want               bool
	}{
		{"fresh", good, "CA1", now, true},
		{"just before expiry", good, "CA1", now.Add(streamTokenTTL - time.Second), true},
		{"at expiry", good, "CA1", now.Add(streamTokenTTL), false},
		{"another call", good, "CA2", now, false},
		{"previous token during a rotation", streamToken("previous0token", "CA1", now.Add(time.Hour)), "CA1", now, true},
		{"another tenant's token", streamToken("other0token", "CA1", now.Add(time.Hour)), "CA1", now, false},
		{"expiry moved", sum + "." + "9" + exp, "CA1", now, false},
		{"no expiry", sum, "CA1", now, false},
		{"not base64url", "!!!." + exp, "CA1", now, false},
		{"empty", "", "CA1", now, false},
		{"empty callSid", streamToken("current0token", "", now.Add(time.Hour)), "", now, false},
	}
	for _, tc := range tests {
		if got := validStreamToken(tc.tok, tc.callSID, acct, tc.at); got != tc.want {
			t.Errorf("%s: validStreamToken(%q, %q) = %v, want %v", tc.name, tc.tok, tc.callSID, got, tc.want)
		}
	}
}
