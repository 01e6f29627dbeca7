package simulate

import (
	"encoding/hex"
	"math/rand/v2"
	"sync"
	"time"
)

// NewRefs returns a generator of fresh customer refs ("cust_" and 24 hex
// digits) drawn from seed, for callcontext.WithRefs: with it a simulation's
// refs, and so its report, repeat. It is safe for concurrent use.
func NewRefs(seed uint64) func() string {
	var mu sync.Mutex
	r := rand.New(rand.NewPCG(seed, 4))
	return func() string {
		mu.Lock()
		defer mu.Unlock()
		var b [12]byte
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		return "cust_" + hex.EncodeToString(b[:])
	}
}

// Clock is a settable clock for the service under simulation. It is safe
// for concurrent use; the zero Clock reads the zero time.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// Now returns the time last set.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Set moves the clock to t.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}
