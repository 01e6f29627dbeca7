package ratelimit_test

import (
	"context"
	"testing"
	"time"

	"github.com/stickycalls/stickycalls/context/callcontext"
	"github.com/stickycalls/stickycalls/context/ratelimit"
)

// The window slides: a request is admitted again once the oldest admitted
// one is a window old, and scopes do not share their logs.
func TestMemorySlides(t *testing.T) {
	l := ratelimit.NewMemory()
	a, b := callcontext.Scope{Tenant: "a", Mode: callcontext.Prod}, callcontext.Scope{Tenant: "b", Mode: callcontext.Prod}
	t0 := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	allow := func(sc callcontext.Scope, at time.Duration) ratelimit.Rate {
		r, err := l.Allow(context.Background(), sc, 2, ratelimit.Window, t0.Add(at))
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	steps := []struct {
		sc        callcontext.Scope
		at        time.Duration
		allowed   bool
		remaining int
		reset     time.Duration
	}{
		{a, 0, true, 1, time.Minute},
		{a, 10 * time.Second, true, 0, 50 * time.Second},
		{a, 20 * time.Second, false, 0, 40 * time.Second},
		{b, 20 * time.Second, true, 1, time.Minute},
		{a, time.Minute, true, 0, 10 * time.Second}, // the first left the window exactly now
	}
	for i, s := range steps {
		r := allow(s.sc, s.at)
		if r.Allowed != s.allowed || r.Remaining != s.remaining || r.Reset != s.reset {
			t.Errorf("step %d: %+v, want allowed %v, remaining %d, reset %v", i, r, s.allowed, s.remaining, s.reset)
		}
	}
	if got := ratelimit.Enforced(100); got != 110 {
		t.Errorf("Enforced(100) = %d, want the 10%% buffer: 110", got)
	}
}
