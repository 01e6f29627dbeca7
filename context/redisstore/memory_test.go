package redisstore_test

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/stickycalls/stickycalls/context/callapi"
	"github.com/stickycalls/stickycalls/context/callcontext"
	"github.com/stickycalls/stickycalls/context/redisstore"
	"github.com/stickycalls/stickycalls/context/redistest"
)

// TestStartMemory measures what a returning caller's start leaves in
// Redis (its call record, kept 7 days, which holds the answer replays
// return for 24 h; the call filed under its customer): used_memory's
// growth over many starts, on a server of its own, for the bench's
// customers.
func TestStartMemory(t *testing.T) {
	const callers, maxBytes = 1000, 900
	addr := redistest.Durable(t, "no").Addr()
	s := open(t, redisstore.Options{Addrs: []string{addr}})
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	defer rdb.Close()
	now := t0
	calls := callcontext.NewService(s, callcontext.NoLookup{}, plainGreeter{}, func() time.Time { return now }, nil, callcontext.Durations{})
	sc := callcontext.Scope{Tenant: "acme", Mode: callcontext.Test}
	ctx := context.Background()
	do := func(body string, start bool) {
		t.Helper()
		var err error
		if start {
			var req callapi.StartRequest
			if req, err = callapi.ParseStart([]byte(body)); err == nil {
				_, err = calls.Start(ctx, sc, req, "")
			}
		} else {
			var req callapi.EndRequest
			if req, err = callapi.ParseEnd([]byte(body)); err == nil {
				_, err = calls.End(ctx, sc, req, "")
			}
		}
		if err != nil {
			t.Fatalf("%s: %v", body, err)
		}
	}
	hints := func(i int) string {
		return fmt.Sprintf(`"identity_hints":{"ani":"+1415555%04d","external_ids":{"crm_id":"crm_%d"}},"telco":{"line_type":"mobile"}`, i, i)
	}
	// The bench's customers: an open intent and ten variables.
	saved := func(i int) string {
		return fmt.Sprintf(`"intent":"refund_request","intent_status":"open","variables":{"name":"Customer %d","tier":"gold",`+
			`"language":"en-US","city":"San Francisco","last_order":"A-%d","balance":"%d.00","agent":"agent_%d","channel":"phone",`+
			`"product":"fiber-500","note":"prefers callbacks in the morning"}`, i, i, i%1000, i%50)
	}
	for i := range callers {
		do(fmt.Sprintf(`{"call_id":"CA%032d",%s}`, i, hints(i)), true)
		do(fmt.Sprintf(`{"call_id":"CA%032d","customer_ref":"cust_%024x",%s}`, i, i, saved(i)), false)
	}
	now = now.Add(time.Hour)
	do(fmt.Sprintf(`{"call_id":"CB%032d",%s}`, 0, hints(0)), true) // the hour's tallies exist before the measure
	before := usedMemory(t, rdb)
	for i := 1; i < callers; i++ {
		do(fmt.Sprintf(`{"call_id":"CB%032d",%s}`, i, hints(i)), true)
	}
	per := (usedMemory(t, rdb) - before) / (callers - 1)
	t.Logf("a returning caller's start: %d bytes of Redis memory", per)
	if per > maxBytes {
		t.Errorf("a returning caller's start takes %d bytes of Redis memory, want at most %d", per, maxBytes)
	}
}

func usedMemory(t *testing.T, rdb *redis.Client) int64 {
	t.Helper()
	info, err := rdb.Info(context.Background(), "memory").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "used_memory:"); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	t.Fatal("INFO memory has no used_memory")
	return 0
}

// TestFiledCallsPruned checks that the calls a customer's starts file
// under it do not pile up: a start drops those expired once there are
// many, and files a retried call once.
func TestFiledCallsPruned(t *testing.T) {
	for name, opts := range map[string]redisstore.Options{
		"single":  {Addrs: []string{redistest.Single(t)}},
		"cluster": {Addrs: redistest.Cluster(t), Cluster: true},
	} {
		t.Run(name, func(t *testing.T) {
			opts.Prefix = redistest.Prefix(t)
			s, err := redisstore.Open(context.Background(), opts)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			rdb := redis.NewUniversalClient(&redis.UniversalOptions{Addrs: opts.Addrs, IsClusterMode: opts.Cluster})
			defer rdb.Close()
			testFiledCallsPruned(t, s, rdb, "{"+opts.Prefix+"t:acme:test:c:cust_p}")
		})
	}
}

func testFiledCallsPruned(t *testing.T, s *redisstore.Store, rdb redis.UniversalClient, key string) {
	now := t0
	calls := callcontext.NewService(s, callcontext.NoLookup{}, plainGreeter{}, func() time.Time { return now }, nil, callcontext.Durations{})
	sc := callcontext.Scope{Tenant: "acme", Mode: callcontext.Test}
	ctx := context.Background()
	start := func(id string) {
		req, err := callapi.ParseStart([]byte(`{"call_id":"` + id + `","identity_hints":{"ani":"+14155550777"}}`))
		if err == nil {
			_, err = calls.Start(ctx, sc, req, "")
		}
		if err != nil {
			t.Fatalf("start %s: %v", id, err)
		}
	}
	end := func(id string) {
		req, err := callapi.ParseEnd([]byte(`{"call_id":"` + id + `","customer_ref":"cust_p","variables":{"name":"Pat"}}`))
		if err == nil {
			_, err = calls.End(ctx, sc, req, "")
		}
		if err != nil {
			t.Fatalf("end %s: %v", id, err)
		}
	}
	id := func(i int) string { return fmt.Sprintf("CA%032x", i) } // as long as Twilio's
	filed := func() []string {
		var ids []string
		for line := range strings.Lines(rdb.HGet(ctx, key, "cs").Val()) {
			ids = append(ids, strings.Fields(line)[0])
		}
		return ids
	}
	start(id(0))
	end(id(0))
	for i := 1; i <= 50; i++ {
		now = now.Add(time.Minute)
		start(id(i))
		start(id(i)) // a retry files nothing more
	}
	if got := filed(); len(got) != 50 || got[0] != id(1) || got[49] != id(50) {
		t.Fatalf("calls filed after 50 starts = %q, want the 50 calls once each", got)
	}
	now = now.Add(8 * 24 * time.Hour) // past the calls' retention
	start(id(51))
	end(id(51))
	if got := filed(); !slices.Equal(got, []string{id(51)}) {
		t.Errorf("calls filed after a start 8 days later = %q, want the expired ones dropped", got)
	}
	if n := rdb.HLen(ctx, key).Val(); n != 3 {
		t.Errorf("customer hash: %d fields, want 3 (its version, its record and its calls)", n)
	}
}
