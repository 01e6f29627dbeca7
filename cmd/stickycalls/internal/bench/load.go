package bench

import (
	"context"
	"errors"
	"io"
	"math"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// errExhausted is what a target's request builder returns when it has no
// more requests to make (an end workload that ran out of started calls).
var errExhausted = errors.New("no more requests")

// target is one workload as the load generator sees it: how to build the
// i-th request and what to do with a successful answer.
type target struct {
	name string
	// build returns request i, or errExhausted.
	build func(i int64) (*http.Request, error)
	// ok, if set, is told that request i succeeded.
	ok func(i int64)
}

// lost is the latency recorded for a request that was never answered: it
// sorts after every real latency.
const lost = time.Duration(math.MaxInt64)

// phase is what one closed- or open-loop run measured.
type phase struct {
	sent, ok, failed int
	// lost counts open-loop requests not sent, or not answered, before the
	// phase's deadline.
	lost    int
	elapsed time.Duration
	rate    float64         // offered rate of an open-loop phase; 0 for closed loop
	lat     []time.Duration // every request's latency, sorted; lost ones are the constant lost
}

func (p phase) throughput() float64 {
	if p.elapsed <= 0 {
		return 0
	}
	return float64(p.ok) / p.elapsed.Seconds()
}

// quantile returns the latency below which a fraction q of the requests
// finished.
func (p phase) quantile(q float64) time.Duration {
	if len(p.lat) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(p.lat)))) - 1
	return p.lat[min(max(i, 0), len(p.lat)-1)]
}

// generator sends requests and times them.
type generator struct {
	client  *http.Client
	counter atomic.Int64 // request numbers, unique over the whole bench
}

func newGenerator() *generator {
	tr := &http.Transport{MaxIdleConns: 4096, MaxIdleConnsPerHost: 4096, IdleConnTimeout: time.Minute, DisableCompression: true}
	return &generator{client: &http.Client{Transport: tr, Timeout: 30 * time.Second}}
}

// send makes request i of t and reports whether it succeeded; false with
// errExhausted when t has nothing left.
func (g *generator) send(ctx context.Context, t target, i int64) (bool, error) {
	req, err := t.build(i)
	if err != nil {
		return false, err
	}
	resp, err := g.client.Do(req.WithContext(ctx))
	if err != nil {
		return false, nil
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return false, nil
	}
	if t.ok != nil {
		t.ok(i)
	}
	return true, nil
}

// closedLoop runs conns workers that each send the next request as soon as
// the last is answered, for d: the maximum throughput.
func (g *generator) closedLoop(ctx context.Context, t target, conns int, d time.Duration) phase {
	var mu sync.Mutex
	var p phase
	var wg sync.WaitGroup
	start := time.Now()
	for range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var lat []time.Duration
			var ok, failed int
			for ctx.Err() == nil && time.Since(start) < d {
				i := g.counter.Add(1)
				sent := time.Now()
				good, err := g.send(ctx, t, i)
				if err != nil {
					break
				}
				lat = append(lat, time.Since(sent))
				if good {
					ok++
				} else {
					failed++
				}
			}
			mu.Lock()
			p.lat = append(p.lat, lat...)
			p.ok += ok
			p.failed += failed
			mu.Unlock()
		}()
	}
	wg.Wait()
	p.elapsed = time.Since(start)
	p.sent = p.ok + p.failed
	slices.Sort(p.lat)
	return p
}

// openLoop sends requests at a fixed rate for d, whatever the answers,
// and times each from the moment it was due, so a slow answer cannot hide
// the requests queued behind it (no coordinated omission). At most
// inflight requests are outstanding; requests still unanswered (or not
// yet sent) at d plus grace count as lost.
func (g *generator) openLoop(ctx context.Context, t target, rate float64, d, grace time.Duration, inflight int) phase {
	n := max(int(rate*d.Seconds()), 1)
	lat := make([]time.Duration, n)
	good := make([]bool, n)
	for i := range lat {
		lat[i] = lost
	}
	ctx, cancel := context.WithDeadline(ctx, time.Now().Add(d+grace))
	defer cancel()
	sem := make(chan struct{}, inflight)
	var wg sync.WaitGroup
	start := time.Now()
	interval := time.Duration(float64(time.Second) / rate)
	for i := range n {
		due := start.Add(time.Duration(i) * interval)
		if wait := time.Until(due); wait > 0 {
			time.Sleep(wait)
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			ok, err := g.send(ctx, t, g.counter.Add(1))
			if err == nil && ctx.Err() == nil {
				lat[i], good[i] = time.Since(due), ok
			}
		}()
	}
	wg.Wait()
	p := phase{sent: n, rate: rate, elapsed: time.Since(start), lat: lat}
	for i, l := range lat {
		switch {
		case l == lost:
			p.lost++
		case good[i]:
			p.ok++
		default:
			p.failed++
		}
	}
	slices.Sort(p.lat)
	return p
}
