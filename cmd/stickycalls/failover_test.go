package main

import (
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stickycalls/stickycalls/context/redistest"
)

// A failover is measured as it hurts: the replica lags (paused, so
// replication is really behind), the master dies, the replica is promoted.
// With STICKYCALLS_REDIS_WAIT_REPLICAS=1 no acknowledged end is lost; with
// Redis's default asynchronous replication the ends acknowledged while the
// replica lagged are, and the test says how many. Either way writes resume
// by themselves once the replica is promoted.
func TestFailoverKeepsAcknowledgedEnds(t *testing.T) {
	t.Parallel()
	for _, topology := range []string{"sentinel", "cluster"} {
		for _, wait := range []bool{true, false} {
			name := topology + "/wait_" + map[bool]string{true: "1", false: "0"}[wait]
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				var f failover
				if topology == "sentinel" {
					r := redistest.DurableSentinel(t, "always")
					var urls []string
					for _, a := range r.SentinelAddrs() {
						urls = append(urls, "redis://"+a+"/0?"+redisTimeouts)
					}
					f = failover{
						env: map[string]string{"STICKYCALLS_REDIS_URL": strings.Join(urls, ","), "STICKYCALLS_REDIS_SENTINEL_MASTER": redistest.SentinelMaster},
						lag: r.CutReplication, kill: r.KillMaster, resume: r.ResumeReplica, promoted: r.WaitPromoted, restart: r.RestartOldMaster,
					}
				} else {
					c := redistest.DurableReplicatedCluster(t, "always")
					var urls []string
					for _, a := range c.Addrs() {
						urls = append(urls, "redis://"+a+"?"+redisTimeouts)
					}
					// Every end writes its call record in the scope's slot:
					// fail over the master that serves it.
					master := c.MasterOf("{t:default:test}")
					replica := c.ReplicaOf(master)
					f = failover{
						env: map[string]string{"STICKYCALLS_REDIS_URL": strings.Join(urls, ",")},
						lag: func() { c.CutReplication(master, replica) }, kill: func() { c.Kill(master) }, resume: func() { c.Resume(replica) },
						promoted: func() time.Duration { return c.WaitPromoted(replica) }, restart: func() { c.Restart(master) },
					}
				}
				if wait {
					f.env["STICKYCALLS_REDIS_WAIT_REPLICAS"] = "1"
				}
				got := f.run(t)
				t.Logf("%s: %d ends acknowledged (%d while the replica lagged), %d of them lost; promoted %v after the kill, writes resumed %v after it",
					name, got.acked, got.whileLagging, got.lost, got.promotion.Round(time.Millisecond), got.resumed.Round(time.Millisecond))
				switch {
				case wait && got.lost > 0:
					t.Errorf("with WAIT, %d acknowledged ends were lost in the failover, want 0", got.lost)
				case !wait && got.lost == 0:
					t.Errorf("without WAIT, no acknowledged end was lost although the replica lagged: the test shows nothing")
				case got.whileLagging == 0 && !wait:
					t.Errorf("no end was acknowledged while the replica lagged")
				}
			})
		}
	}
}

// failover is a Redis setup a test can fail over.
type failover struct {
	env      map[string]string
	lag      func()               // replication stops: the replica is paused
	kill     func()               // the master dies
	resume   func()               // the replica runs again
	promoted func() time.Duration // waits until the replica is the master
	restart  func()               // the old master comes back, as a replica
}

// failoverResult is what a failover did to a stream of ends.
type failoverResult struct {
	acked, whileLagging, lost int
	promotion, resumed        time.Duration
}

// run streams ends through a server on f's Redis, fails it over in the
// middle, and checks every acknowledged end afterwards.
func (f failover) run(t *testing.T) failoverResult {
	const workers = 4
	f.env["STICKYCALLS_IDEMPOTENCY_LEASE"] = "3s"
	s := startServer(t, f.env)
	var (
		res     failoverResult
		next    atomic.Int64
		acked   atomic.Int64
		mu      sync.Mutex
		answers = map[int]exchanged{}
		stop    = make(chan struct{})
		wg      sync.WaitGroup
	)
	for range workers {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				i := int(next.Add(1))
				a := s.exchange("POST", "/v1/calls/end", crashEnd(i))
				if a.err == nil && a.status == http.StatusOK {
					acked.Add(1)
					mu.Lock()
					answers[i] = a
					mu.Unlock()
				}
			}
		})
	}
	waitAcked := func(n int64) {
		deadline := time.Now().Add(30 * time.Second)
		for acked.Load() < n {
			if time.Now().After(deadline) {
				close(stop)
				wg.Wait()
				t.Fatalf("only %d ends acknowledged, want %d", acked.Load(), n)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitAcked(100)
	before := acked.Load()
	f.lag()
	time.Sleep(500 * time.Millisecond)
	f.kill()
	killed := time.Now()
	res.whileLagging = int(acked.Load() - before)
	f.resume()
	f.promoted()
	res.promotion = time.Since(killed)
	// The old master comes back as the new one's replica: with WAIT, the
	// writes need it (the new master has no other).
	f.restart()
	// Writes resume by themselves: the stream's ends succeed again.
	resumedFrom := acked.Load()
	deadline := time.Now().Add(60 * time.Second)
	for acked.Load() == resumedFrom {
		if time.Now().After(deadline) {
			close(stop)
			wg.Wait()
			t.Fatalf("no end acknowledged within 60 s of the promotion; the last answer: %v", s.exchange("POST", "/v1/calls/end", crashEnd(int(next.Add(1)))))
		}
		time.Sleep(5 * time.Millisecond)
	}
	res.resumed = time.Since(killed)
	waitAcked(acked.Load() + 50)
	close(stop)
	wg.Wait()

	var lost atomic.Int64
	mu.Lock()
	ids := make([]int, 0, len(answers))
	for i := range answers {
		ids = append(ids, i)
	}
	mu.Unlock()
	inParallel(len(ids), workers, func(k int) {
		i := ids[k]
		state, count, got := s.stateOf(i)
		replay := s.until(10*time.Second, []int{http.StatusServiceUnavailable, http.StatusConflict}, "POST", "/v1/calls/end", crashEnd(i))
		// Lost: the customer lacks it, or its answer cannot be replayed
		// (its call record is gone).
		if state != custFull || count != 1 || replay.err != nil || replay.status != http.StatusOK || replay.header.Get("Idempotent-Replayed") != "true" {
			if lost.Add(1) <= 3 {
				t.Logf("acknowledged end %d after the failover: customer %.200s…, replay %.120s… (Idempotent-Replayed %q)", i, got, replay, replay.header.Get("Idempotent-Replayed"))
			}
		}
	})
	res.acked, res.lost = len(ids), int(lost.Load())
	return res
}
