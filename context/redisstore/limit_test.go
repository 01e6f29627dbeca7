package redisstore_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stickycalls/stickycalls/context/callcontext"
	"github.com/stickycalls/stickycalls/context/redisstore"
	"github.com/stickycalls/stickycalls/context/redistest"
)

// Two limiters (two service instances) on one Redis admit exactly max
// requests of a window between them, however the requests interleave.
func TestLimiterSharedExactly(t *testing.T) {
	opts := redisstore.Options{Addrs: []string{redistest.Single(t)}}
	opts.Prefix = redistest.Prefix(t)
	a, b := openWithPrefix(t, opts), openWithPrefix(t, opts)
	la, lb := a.Limiter(time.Second), b.Limiter(time.Second)
	sc := callcontext.Scope{Tenant: "acme", Mode: callcontext.Prod}
	const max = 33 // a plan of 30 a minute, plus 10%
	var admitted atomic.Int64
	var wg sync.WaitGroup
	for i := range 80 {
		l := la
		if i%2 == 1 {
			l = lb
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := l.Allow(context.Background(), sc, max, time.Minute, t0.Add(time.Duration(i)*time.Millisecond))
			if err != nil {
				t.Error(err)
			}
			if r.Allowed {
				admitted.Add(1)
			}
		}()
	}
	wg.Wait()
	if got := admitted.Load(); got != max {
		t.Errorf("two instances admitted %d of 80, want exactly %d", got, max)
	}
	if la.Fallbacks()+lb.Fallbacks() != 0 {
		t.Errorf("fallbacks = %d, want 0 while Redis answers", la.Fallbacks()+lb.Fallbacks())
	}
	// A minute later the window has room again.
	r, err := la.Allow(context.Background(), sc, max, time.Minute, t0.Add(time.Minute+time.Second))
	if err != nil || !r.Allowed {
		t.Errorf("Allow after the window = %+v, %v; want allowed", r, err)
	}
	other, err := lb.Allow(context.Background(), callcontext.Scope{Tenant: "acme", Mode: callcontext.Test}, max, time.Minute, t0)
	if err != nil || !other.Allowed {
		t.Errorf("Allow in the test mode = %+v, %v; want allowed (its own bucket)", other, err)
	}
}

// Without Redis the limiter admits this instance's share and counts it.
func TestLimiterFallback(t *testing.T) {
	s := openWithPrefix(t, redisstore.Options{Addrs: []string{redistest.Single(t)}, Prefix: redistest.Prefix(t)})
	l := s.Limiter(20 * time.Millisecond)
	s.Close() // Redis is now unreachable for this client
	sc := callcontext.Scope{Tenant: "acme", Mode: callcontext.Prod}
	admitted := 0
	for i := range 20 {
		r, err := l.Allow(context.Background(), sc, 10, time.Minute, t0.Add(time.Duration(i)*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		if r.Allowed {
			admitted++
		}
	}
	if admitted != 10 || l.Fallbacks() != 20 {
		t.Errorf("fallback admitted %d with %d fallbacks, want 10 (one instance's share) and 20", admitted, l.Fallbacks())
	}
}

func openWithPrefix(t *testing.T, opts redisstore.Options) *redisstore.Store {
	t.Helper()
	s, err := redisstore.Open(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}
