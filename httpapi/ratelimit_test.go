package httpapi_test

import (
	"fmt"
	"testing"

	"github.com/stickycalls/stickycalls/context/callcontext"
)

// A plan of 10 a minute admits 11 (the 10% buffer), then 429s with the
// RateLimit headers; auth comes first, and the other mode is untouched.
func TestRateLimit(t *testing.T) {
	p := callcontext.DefaultPolicy()
	p.Plans = map[callcontext.Mode]callcontext.Plan{callcontext.Test: {RateLimitPerMinute: 10}}
	e := newEnv(t, map[string]callcontext.Policy{"default": p})
	for i := range 11 {
		res := e.post(t, "/v1/calls/start", fmt.Sprintf(`{"call_id":"rl_%d","identity_hints":{"ani":"+14155550100"}}`, i))
		mustOK(t, fmt.Sprintf("request %d", i+1), res)
		if got, want := res.header.Get("RateLimit-Remaining"), fmt.Sprint(10-i); got != want {
			t.Errorf("request %d: RateLimit-Remaining = %q, want %q", i+1, got, want)
		}
	}
	res := e.post(t, "/v1/calls/start", `{"call_id":"rl_over","identity_hints":{"ani":"+14155550100"}}`)
	checkError(t, "12th request", res, 429)
	if res.header.Get("Retry-After") != "60" || res.header.Get("RateLimit-Limit") != "10" || res.header.Get("RateLimit-Remaining") != "0" {
		t.Errorf("429 headers = %v, want Retry-After 60, RateLimit-Limit 10, RateLimit-Remaining 0", res.header)
	}
	// Every /v1 route shares the window, reads included.
	res = e.get(t, "/v1/usage", e.testKey)
	checkError(t, "usage after the limit", res, 429)

	res = e.do(t, request{method: "POST", path: "/v1/calls/start", auth: "Bearer sk_test_bogus", body: "{"})
	checkError(t, "bad key over the limit", res, 401)

	res = e.do(t, request{method: "POST", path: "/v1/calls/start", auth: bearer(e.prodKey),
		body: `{"call_id":"rl_prod","identity_hints":{"ani":"+14155550100"}}`})
	mustOK(t, "prod mode", res)
}
