package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stickycalls/stickycalls/context/redistest"
	"github.com/stickycalls/stickycalls/httpapi/apitest"
)

// redisTimeouts keep a request on a dead Redis short: it answers 503 within
// them instead of waiting out go-redis's defaults.
const redisTimeouts = "dial_timeout=300ms&read_timeout=500ms&write_timeout=500ms&pool_timeout=1s"

// crashClient never waits long: a request that hangs fails the test
// instead of the test hanging.
var crashClient = &http.Client{Timeout: 5 * time.Second}

// exchanged is one request's answer, or the error that replaced it.
type exchanged struct {
	status int
	header http.Header
	body   []byte
	err    error
}

func (a exchanged) String() string {
	if a.err != nil {
		return a.err.Error()
	}
	return fmt.Sprintf("%d %s", a.status, a.body)
}

// exchange sends one request with the server's key through crashClient
// and checks a whole answer against the OpenAPI document. Unlike do, it may
// run on any goroutine.
func (s *server) exchange(method, path, body string) exchanged {
	req, err := http.NewRequest(method, s.base+path, strings.NewReader(body))
	if err != nil {
		return exchanged{err: err}
	}
	req.Header.Set("Authorization", "Bearer "+s.key)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := crashClient.Do(req)
	if err != nil {
		return exchanged{err: err}
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err == nil { // a body cut short by a crash is no answer to check
		apitest.Check(s.t, req, resp, raw)
	}
	return exchanged{status: resp.StatusCode, header: resp.Header, body: raw, err: err}
}

// until repeats a request while it answers one of the statuses in again
// (the store is coming back, or a crashed twin's lease has not expired),
// up to wait, and returns the last answer.
func (s *server) until(wait time.Duration, again []int, method, path, body string) exchanged {
	deadline := time.Now().Add(wait)
	for {
		a := s.exchange(method, path, body)
		retry := a.err == nil && time.Now().Before(deadline)
		if retry {
			retry = false
			for _, st := range again {
				retry = retry || a.status == st
			}
		}
		if !retry {
			return a
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitReady polls /readyz until it answers 200, for at most wait.
func (s *server) waitReady(t *testing.T, wait time.Duration) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		a := s.exchange("GET", "/readyz", "")
		if a.err == nil && a.status == http.StatusOK {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz not 200 within %s after the restart: %v", wait, a)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// inParallel runs f(0) … f(n-1) on a few goroutines.
func inParallel(n, workers int, f func(i int)) {
	next := make(chan int)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := range next {
				f(i)
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
}

// customerState is what a customer's GET shows of one end's effect.
type customerState int

const (
	custAbsent  customerState = iota // 404
	custFull                         // the intent, open, and both variables
	custPartial                      // the customer, without all of that
)

// crashEnd is the end of call i: one open intent and two variables.
func crashEnd(i int) string {
	return fmt.Sprintf(`{"call_id":"crash_%d","customer_ref":"cust_%d","intent":"billing","intent_status":"open","variables":{"name":"n%d","plan":"gold"}}`, i, i, i)
}

// stateOf reads customer i and says how much of its end it shows, and the
// intent's attempt_count.
func (s *server) stateOf(i int) (customerState, float64, exchanged) {
	return s.stateOfRef(fmt.Sprintf("cust_%d", i), fmt.Sprintf("n%d", i))
}

// stateOfRef reads a customer and says whether it shows the open intent
// billing with the variables name (= name) and plan (= gold), and the
// intent's attempt_count.
func (s *server) stateOfRef(ref, name string) (customerState, float64, exchanged) {
	a := s.until(10*time.Second, []int{http.StatusServiceUnavailable}, "GET", "/v1/customers/"+ref, "")
	if a.err == nil && a.status == http.StatusNotFound {
		return custAbsent, 0, a
	}
	if a.err != nil || a.status != http.StatusOK {
		return custPartial, 0, a
	}
	var c struct {
		OpenIntents []struct {
			Intent       string  `json:"intent"`
			Status       string  `json:"status"`
			AttemptCount float64 `json:"attempt_count"`
		} `json:"open_intents"`
		Variables map[string]struct {
			Value string `json:"value"`
		} `json:"variables"`
	}
	if err := json.Unmarshal(a.body, &c); err != nil {
		return custPartial, 0, a
	}
	var count float64
	hasIntent := false
	for _, in := range c.OpenIntents {
		if in.Intent == "billing" && in.Status == "open" {
			hasIntent, count = true, in.AttemptCount
		}
	}
	if !hasIntent || c.Variables["name"].Value != name || c.Variables["plan"].Value != "gold" {
		return custPartial, count, a
	}
	return custFull, count, a
}

// TestCrashDuringEnds kills Redis (SIGKILL, AOF with appendfsync always)
// in the middle of a stream of ends and restarts it: every acknowledged end
// is there in full and replays; every other end is there in full or not at
// all, and its retry applies it exactly once.
func TestCrashDuringEnds(t *testing.T) {
	t.Parallel()
	t.Run("single", func(t *testing.T) {
		t.Parallel()
		r := redistest.Durable(t, "always")
		crashDuringEnds(t, "redis://"+r.Addr()+"/0?"+redisTimeouts, r.Kill, r.Restart)
	})
	t.Run("cluster", func(t *testing.T) {
		t.Parallel()
		r := redistest.DurableCluster(t, "always")
		var urls []string
		for _, a := range r.Addrs() {
			urls = append(urls, "redis://"+a+"?"+redisTimeouts)
		}
		crashDuringEnds(t, strings.Join(urls, ","), r.Kill, r.Restart)
	})
}

func crashDuringEnds(t *testing.T, url string, kill, restart func()) {
	const (
		n       = 200
		workers = 4
		// A retried end may meet the lease its crashed twin took: a short
		// one keeps the suite fast.
		lease     = 3 * time.Second
		leaseWait = 3 * lease
	)
	s := startServer(t, map[string]string{"STICKYCALLS_REDIS_URL": url, "STICKYCALLS_IDEMPOTENCY_LEASE": lease.String()})

	inParallel(n, workers, func(i int) {
		body := fmt.Sprintf(`{"call_id":"crash_%d","identity_hints":{"ani":"+1415600%04d"}}`, i, i)
		if a := s.exchange("POST", "/v1/calls/start", body); a.err != nil || a.status != http.StatusOK {
			t.Errorf("start %d: %v", i, a)
		}
	})
	if t.Failed() {
		t.FailNow()
	}

	// The stream of ends; Redis dies once a third are acknowledged.
	answers := make([]exchanged, n)
	var acked atomic.Int64
	third := make(chan struct{})
	var once sync.Once
	streamed := make(chan struct{})
	go func() {
		defer close(streamed)
		inParallel(n, workers, func(i int) {
			answers[i] = s.exchange("POST", "/v1/calls/end", crashEnd(i))
			if answers[i].err == nil && answers[i].status == http.StatusOK && acked.Add(1) >= n/3 {
				once.Do(func() { close(third) })
			}
		})
	}()
	select {
	case <-third:
	case <-streamed:
		t.Fatalf("the stream ended with %d of %d acknowledged, before the kill", acked.Load(), n)
	}
	kill()
	<-streamed
	restart()
	s.waitReady(t, 20*time.Second)

	// What the crash left: acknowledged ends in full, the others in full or
	// not at all.
	var ackedN, unacked, lost, partials, committed, absentN atomic.Int64
	var retry []int
	var retryMu sync.Mutex
	inParallel(n, workers, func(i int) {
		a := answers[i]
		state, count, got := s.stateOf(i)
		if a.err == nil && a.status == http.StatusOK {
			ackedN.Add(1)
			if state != custFull || count != 1 {
				lost.Add(1)
				t.Errorf("end %d was acknowledged (%s) but customer cust_%d is %v", i, a.body, i, got)
				return
			}
			replay := s.until(10*time.Second, []int{http.StatusServiceUnavailable}, "POST", "/v1/calls/end", crashEnd(i))
			if replay.err != nil || replay.status != http.StatusOK || replay.header.Get("Idempotent-Replayed") != "true" || string(replay.body) != string(a.body) {
				lost.Add(1)
				t.Errorf("replay of acknowledged end %d = %v (Idempotent-Replayed %q), want 200 replayed %s",
					i, replay, replay.header.Get("Idempotent-Replayed"), a.body)
			}
			return
		}
		unacked.Add(1)
		if a.err != nil || a.status != http.StatusServiceUnavailable {
			t.Errorf("end %d during the crash: %v, want 200 or 503", i, a)
		}
		switch state {
		case custFull:
			committed.Add(1)
			if count != 1 {
				t.Errorf("unacknowledged end %d: cust_%d has attempt_count %v, want 1", i, i, count)
			}
		case custAbsent:
			absentN.Add(1)
		default:
			partials.Add(1)
			t.Errorf("unacknowledged end %d left cust_%d partly written: %v", i, i, got)
		}
		retryMu.Lock()
		retry = append(retry, i)
		retryMu.Unlock()
	})
	t.Logf("%d ends: %d acknowledged, %d unacknowledged (%d of them committed, %d absent); %d lost, %d partial",
		n, ackedN.Load(), unacked.Load(), committed.Load(), absentN.Load(), lost.Load(), partials.Load())
	if unacked.Load() == 0 {
		t.Errorf("every end was acknowledged: the kill came too late to test anything")
	}

	// The client retries what was not acknowledged; each applies once.
	var inFlight atomic.Int64
	inParallel(len(retry), workers, func(k int) {
		i := retry[k]
		a := s.exchange("POST", "/v1/calls/end", crashEnd(i))
		if a.err == nil && a.status == http.StatusConflict {
			inFlight.Add(1)
		}
		if a.err == nil && (a.status == http.StatusConflict || a.status == http.StatusServiceUnavailable) {
			a = s.until(leaseWait, []int{http.StatusConflict, http.StatusServiceUnavailable}, "POST", "/v1/calls/end", crashEnd(i))
		}
		if a.err != nil || a.status != http.StatusOK {
			t.Errorf("retry of end %d = %v, want 200", i, a)
			return
		}
		replay := s.exchange("POST", "/v1/calls/end", crashEnd(i))
		if replay.err != nil || replay.status != http.StatusOK || replay.header.Get("Idempotent-Replayed") != "true" || string(replay.body) != string(a.body) {
			t.Errorf("replay of retried end %d = %v, want 200 replayed %s", i, replay, a.body)
		}
	})
	t.Logf("%d retries met their crashed twin's lease (409) first", inFlight.Load())

	inParallel(n, workers, func(i int) {
		if state, count, got := s.stateOf(i); state != custFull || count != 1 {
			t.Errorf("after the retries cust_%d = %v; want the intent with attempt_count 1 and both variables", i, got)
		}
	})
}
