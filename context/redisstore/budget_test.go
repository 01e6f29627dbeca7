package redisstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/stickycalls/stickycalls/context/callapi"
	"github.com/stickycalls/stickycalls/context/callcontext"
	"github.com/stickycalls/stickycalls/context/redisstore"
	"github.com/stickycalls/stickycalls/context/redistest"
)

type plainGreeter struct{}

func (plainGreeter) Greet(res *callapi.StartResult) callapi.Greeting {
	return callapi.Greeting{Tier: res.Identity.Recommendation, Text: "Hello!"}
}

// TestRequestWaves counts the Redis round trips of whole requests through
// the service. Starts take 2 waves on a single node (the claim's script
// reads the customers too, then the save); on a Cluster a returning
// caller's take 3 (its customers are read in their own slots). An end
// that names its customer reads it with the claim (1); on a single node
// it then commits in one script (2); one more when the end names no
// customer, or when the call's start carried an external id the customer
// does not hold yet (its owner is read once the claim has returned the
// call). On a Cluster the commit takes three ordered waves (index entries;
// the customer's script, the commit point; the call record), so 4 and 5.
func TestRequestWaves(t *testing.T) {
	for name, opts := range map[string]redisstore.Options{
		"single":  {Addrs: []string{redistest.Single(t)}},
		"cluster": {Addrs: redistest.Cluster(t), Cluster: true},
	} {
		b := waveBudget{returning: 2, commit: 1}
		if opts.Cluster {
			b = waveBudget{returning: 3, commit: 3}
		}
		t.Run(name, func(t *testing.T) { testRequestWaves(t, open(t, opts), b) })
	}
}

// waveBudget is what a topology allows: a returning caller's start, an
// end's commit.
type waveBudget struct{ returning, commit int64 }

func testRequestWaves(t *testing.T, s *redisstore.Store, b waveBudget) {
	now := t0
	calls := callcontext.NewService(s, callcontext.NoLookup{}, plainGreeter{}, func() time.Time { return now }, nil, callcontext.Durations{})
	sc := callcontext.Scope{Tenant: "acme", Mode: callcontext.Test}
	waves := func(name string, max int64, do func(ctx context.Context) error) {
		t.Helper()
		ctx, w := redisstore.WithWaveCounter(context.Background())
		if err := do(ctx); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		t.Logf("%s: %d waves", name, w.N())
		if w.N() > max {
			t.Errorf("%s took %d waves, want at most %d", name, w.N(), max)
		}
	}
	start := func(body string) func(ctx context.Context) error {
		return func(ctx context.Context) error {
			req, err := callapi.ParseStart([]byte(body))
			if err == nil {
				_, err = calls.Start(ctx, sc, req, "")
			}
			return err
		}
	}
	end := func(body string) func(ctx context.Context) error {
		return func(ctx context.Context) error {
			req, err := callapi.ParseEnd([]byte(body))
			if err == nil {
				_, err = calls.End(ctx, sc, req, "")
			}
			return err
		}
	}
	hints := `"identity_hints":{"ani":"+14155550123","external_ids":{"crm_id":"crm_1"}},"telco":{"line_type":"mobile"}`
	saved := `"intent":"refund","intent_status":"open","variables":{"a":"1","b":"2","c":"3","d":"4","e":"5"}`
	waves("start, new caller", 2, start(`{"call_id":"w0","identity_hints":{"ani":"+14155550999"}}`))
	waves("end naming its customer", 1+b.commit, end(`{"call_id":"w0","customer_ref":"cust_v",`+saved+`}`))
	waves("start, new caller with a CRM id", 2, start(`{"call_id":"w1",`+hints+`}`))
	waves("end naming its customer, start with a CRM id", 2+b.commit, end(`{"call_id":"w1","customer_ref":"cust_w",`+saved+`}`))
	now = now.Add(time.Hour)
	waves("start, returning caller", b.returning, start(`{"call_id":"w2",`+hints+`}`))
	waves("end naming its returning customer, start with its CRM id", 1+b.commit, end(`{"call_id":"w2","customer_ref":"cust_w",`+saved+`}`))
	waves("replayed start", 1, start(`{"call_id":"w2",`+hints+`}`))
	waves("start, returning caller again", b.returning, start(`{"call_id":"w3",`+hints+`}`))
	waves("end with the start's customer", 2+b.commit, end(`{"call_id":"w3",`+saved+`}`))
}
