package storetest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"

	"github.com/stickycalls/stickycalls/context/callapi"
	"github.com/stickycalls/stickycalls/context/callcontext"
	"github.com/stickycalls/stickycalls/context/storage"
)

func concurrencyTests() []storeTest {
	return []storeTest{
		{"identical ends of one call have one effect", testConcurrentIdenticalEnds},
		{"identical starts of one call have one effect", testConcurrentIdenticalStarts},
		{"ends of different calls for one customer all count", testConcurrentDifferentEnds},
		{"a completion committed during an end leaves no customer behind", testCompletionOvertakesEnd},
		{"an end committed during a completion leaves no customer behind", testEndOvertakesCompletion},
	}
}

// result is one goroutine's answer.
type result[T callapi.StartResult | callapi.EndResult] struct {
	reply callcontext.Reply[T]
	err   error
}

// parallel runs f n times at once and returns every answer.
func parallel[T callapi.StartResult | callapi.EndResult](n int, f func(i int) (callcontext.Reply[T], error)) []result[T] {
	out := make([]result[T], n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			r, err := f(i)
			out[i] = result[T]{r, err}
		})
	}
	close(start)
	wg.Wait()
	return out
}

// oneEffect checks that every answer is the same body or ErrInFlight, and
// that exactly one answer was not a replay.
func oneEffect[T callapi.StartResult | callapi.EndResult](t *testing.T, what string, results []result[T]) {
	t.Helper()
	var body []byte
	fresh := 0
	for i, r := range results {
		if r.err != nil {
			if !errors.Is(r.err, callcontext.ErrInFlight) {
				t.Errorf("%s #%d: error %v, want a body or ErrInFlight", what, i, r.err)
			}
			continue
		}
		if !r.reply.Replayed {
			fresh++
		}
		if body == nil {
			body = r.reply.Body
		} else if !bytes.Equal(r.reply.Body, body) {
			t.Errorf("%s #%d: body %s, want the same body as the others, %s", what, i, r.reply.Body, body)
		}
		if typed, err := json.Marshal(r.reply.Result); err != nil || !bytes.Equal(typed, r.reply.Body) {
			t.Errorf("%s #%d (replayed %v): result %s, want what the body says, %s", what, i, r.reply.Replayed, typed, r.reply.Body)
		}
	}
	if fresh != 1 {
		t.Errorf("%s: %d answers were not replays, want exactly 1", what, fresh)
	}
}

func testConcurrentIdenticalEnds(t *testing.T, s Store) {
	h := newHarness(t, s, nil)
	ctx := context.Background()
	h.start(`{"call_id":"call_c","identity_hints":{"ani":"+14155550199"}}`)
	body := `{"call_id":"call_c","customer_ref":"cust_c","intent":"x","intent_status":"open","variables":{"name":"C"}}`
	req := parseEnd(t, body)
	results := parallel(50, func(int) (callcontext.Reply[callapi.EndResult], error) { return h.svc.End(ctx, acmeTest, req, "") })
	oneEffect(t, "End(call_c) ×50", results)

	v := h.customer("cust_c")
	if len(v.OpenIntents) != 1 || v.OpenIntents[0].AttemptCount != 1 {
		t.Errorf("Customer(cust_c).OpenIntents after 50 identical ends = %+v, want x with attempt_count 1", v.OpenIntents)
	}
	u, err := h.svc.Usage(ctx, acmeTest)
	if err != nil || u.Requests != 2 {
		t.Errorf("Usage().Requests after a start and 50 identical ends = %d, %v; want 2", u.Requests, err)
	}
}

func testConcurrentIdenticalStarts(t *testing.T, s Store) {
	h := newHarness(t, s, nil)
	ctx := context.Background()
	req := parseStart(t, `{"call_id":"call_c","identity_hints":{"ani":"+14155550199"}}`)
	results := parallel(50, func(int) (callcontext.Reply[callapi.StartResult], error) {
		return h.svc.Start(ctx, acmeTest, req, "idem-c")
	})
	oneEffect(t, "Start(call_c) ×50", results)
	u, err := h.svc.Usage(ctx, acmeTest)
	if err != nil || u.Requests != 1 || u.Calls != (callapi.CallsView{Billable: 1}) {
		t.Errorf("Usage() after 50 identical starts = requests %d, calls %+v, %v; want 1, {1 0}", u.Requests, u.Calls, err)
	}
}

func testConcurrentDifferentEnds(t *testing.T, s Store) {
	h := newHarness(t, s, nil)
	ctx := context.Background()
	const n = 100 // contention must never become a failure
	reqs := make([]callapi.EndRequest, n)
	for i := range reqs {
		reqs[i] = parseEnd(t, fmt.Sprintf(`{"call_id":"call_%02d","customer_ref":"cust_many","intent":"x","intent_status":"open"}`, i))
	}
	results := parallel(n, func(i int) (callcontext.Reply[callapi.EndResult], error) {
		return h.svc.End(ctx, acmeTest, reqs[i], "")
	})
	created := 0
	for i, r := range results {
		if r.err != nil {
			t.Errorf("End(call_%02d) error %v, want success", i, r.err)
			continue
		}
		var res callapi.EndResult
		if err := json.Unmarshal(r.reply.Body, &res); err != nil {
			t.Fatalf("End(call_%02d) body %s: %v", i, r.reply.Body, err)
		}
		if res.Billable {
			created++
		}
	}
	if created != 1 {
		t.Errorf("%d of %d concurrent ends report billable (created the customer), want 1", created, n)
	}
	v := h.customer("cust_many")
	if len(v.OpenIntents) != 1 || v.OpenIntents[0].AttemptCount != n {
		t.Errorf("Customer(cust_many).OpenIntents after %d ends = %+v, want x with attempt_count %d", n, v.OpenIntents, n)
	}
	u, err := h.svc.Usage(ctx, acmeTest)
	if err != nil || u.Requests != n || u.Calls != (callapi.CallsView{Billable: 1, NonBillable: n - 1}) {
		t.Errorf("Usage() after %d standalone ends = requests %d, calls %+v, %v; want %d, {1 %d}", n, u.Requests, u.Calls, err, n, n-1)
	}
}

// overtaking is a store that, on the first commit of call's end (or of
// its completion, when completion is set), first lets the other half of
// the call's ending run whole: the interleaving that a commit must detect.
type overtaking struct {
	Store
	call       string
	completion bool
	other      func() error
	once       sync.Once
	err        error
}

func (o *overtaking) CommitEnd(ctx context.Context, sc callcontext.Scope, e storage.EndCommit) error {
	if e.Call.ID == o.call && e.Completion == o.completion {
		o.once.Do(func() { o.err = o.other() })
	}
	return o.Store.CommitEnd(ctx, sc, e)
}

const overtakenANI = "+14155550177"

// testOvertaken runs a new caller's call whose agent names a customer at
// the end, with its completion committed in the middle of the end's
// commit (or the other way round), and checks that the number is linked
// to the named customer only and that the fresh customer the completion
// would have created is gone.
func testOvertaken(t *testing.T, s Store, completionFirst bool) {
	ctx := context.Background()
	o := &overtaking{Store: s, call: "call_o", completion: !completionFirst}
	h := newHarness(t, o, nil)
	h.end(`{"call_id":"call_old","customer_ref":"cust_named","identity_hints":{"ani":"+14155550100"}}`)
	res, _ := h.start(`{"call_id":"call_o","identity_hints":{"ani":"` + overtakenANI + `"}}`)
	complete := func() error {
		return h.svc.Complete(ctx, acmeTest, callcontext.Completion{CallID: "call_o", Status: callcontext.StatusCompleted, Duration: 60})
	}
	end := func() error {
		_, err := h.svc.End(ctx, acmeTest, parseEnd(t, `{"call_id":"call_o","customer_ref":"cust_named"}`), "")
		return err
	}
	first, second := end, complete
	if completionFirst {
		first, second = complete, end
	}
	o.other = first
	if err := second(); err != nil {
		t.Fatalf("the overtaken half: error %v", err)
	}
	if o.err != nil {
		t.Fatalf("the overtaking half: error %v", o.err)
	}
	found, err := s.Resolve(ctx, acmeTest, storage.Query{ANI: overtakenANI}, h.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	if got := slices.Sorted(maps.Keys(found.ANI.Links)); !slices.Equal(got, []string{"cust_named"}) {
		t.Errorf("%s links to %v, want [cust_named] only", overtakenANI, got)
	}
	if res.CustomerRef != "cust_named" {
		h.gone(res.CustomerRef)
	}
	if l := h.link("cust_named", overtakenANI); l.Calls != 1 {
		t.Errorf("cust_named's link to %s counts %d calls, want 1", overtakenANI, l.Calls)
	}
}

func testCompletionOvertakesEnd(t *testing.T, s Store) { testOvertaken(t, s, true) }
func testEndOvertakesCompletion(t *testing.T, s Store) { testOvertaken(t, s, false) }
