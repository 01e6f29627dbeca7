package voice

import (
	"strings"
	"testing"
	"time"
)

func TestStreamToken(t *testing.T) {
	now := time.Date(2026, 2, 7, 10, 30, 0, 0, time.UTC)
	acct := Account{Tenant: "acme", AuthToken: "current0token", PreviousAuthToken: "previous0token"}
	ca1 := streamCall{CallSID: "CA1", From: "+14155550100", To: "+18005550100"}
	with := func(f func(*streamCall)) streamCall { c := ca1; f(&c); return c }
	good := streamToken("current0token", ca1, now.Add(streamTokenTTL))
	sum, exp, _ := strings.Cut(good, ".")
	tests := []struct {
		name, tok string
		call      streamCall
		at        time.Time
		want      bool
	}{
		{"fresh", good, ca1, now, true},
		{"just before expiry", good, ca1, now.Add(streamTokenTTL - time.Second), true},
		{"at expiry", good, ca1, now.Add(streamTokenTTL), false},
		{"another call", good, with(func(c *streamCall) { c.CallSID = "CA2" }), now, false},
		{"another caller", good, with(func(c *streamCall) { c.From = "+14155550199" }), now, false},
		{"another number called (its agent)", good, with(func(c *streamCall) { c.To = "+18005550199" }), now, false},
		{"numbers run together", good, with(func(c *streamCall) { c.From, c.To = c.From+"|"+c.To, "" }), now, false},
		{"previous token during a rotation", streamToken("previous0token", ca1, now.Add(time.Hour)), ca1, now, true},
		{"another tenant's token", streamToken("other0token", ca1, now.Add(time.Hour)), ca1, now, false},
		{"expiry moved", sum + "." + "9" + exp, ca1, now, false},
		{"no expiry", sum, ca1, now, false},
		{"not base64url", "!!!." + exp, ca1, now, false},
		{"empty", "", ca1, now, false},
		{"empty callSid", streamToken("current0token", streamCall{}, now.Add(time.Hour)), streamCall{}, now, false},
	}
	for _, tc := range tests {
		if got := validStreamToken(tc.tok, tc.call, acct, tc.at); got != tc.want {
			t.Errorf("%s: validStreamToken(%q, %+v) = %v, want %v", tc.name, tc.tok, tc.call, got, tc.want)
		}
	}
}
