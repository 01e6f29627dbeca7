package redisstore_test

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/stickycalls/stickycalls/context/callcontext"
	"github.com/stickycalls/stickycalls/context/redisstore"
	"github.com/stickycalls/stickycalls/context/redistest"
)

// TestRequestCommands counts the Redis commands of whole requests through
// the service as INFO commandstats counts them: each EVALSHA and every
// command a script runs, the usage counters and hourly tallies included.
// Each topology gets servers of its own, so no other test's commands are
// counted. The request is the one `stickycalls bench` sends for a
// returning caller (an ANI, a CRM id and a line type), for a tenant with
// no plan and without an Idempotency-Key.
func TestRequestCommands(t *testing.T) {
	t.Run("single", func(t *testing.T) {
		addr := redistest.Durable(t, "no").Addr()
		testRequestCommands(t, redisstore.Options{Addrs: []string{addr}}, []string{addr}, budgets{newStart: 26, returningStart: 27})
	})
	t.Run("cluster", func(t *testing.T) {
		addrs := redistest.DurableCluster(t, "no").Addrs()
		testRequestCommands(t, redisstore.Options{Addrs: addrs, Cluster: true}, addrs, budgets{newStart: 26, returningStart: 27})
	})
}

type budgets struct{ newStart, returningStart int64 }

func testRequestCommands(t *testing.T, opts redisstore.Options, addrs []string, want budgets) {
	s := open(t, opts)
	now := t0
	calls := callcontext.NewService(s, callcontext.NoLookup{}, plainGreeter{}, func() time.Time { return now }, nil, callcontext.Durations{})
	sc := callcontext.Scope{Tenant: "acme", Mode: callcontext.Test}
	count := func(name string, max int64, body string, do func(ctx context.Context, body []byte) error) {
		t.Helper()
		before := commandStats(t, addrs)
		if err := do(context.Background(), []byte(body)); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		n, by := commandsSince(t, addrs, before)
		t.Logf("%s: %d commands %v", name, n, by)
		if n > max {
			t.Errorf("%s ran %d Redis commands, want at most %d: %v", name, n, max, by)
		}
	}
	start := func(ctx context.Context, body []byte) error {
		req, err := callcontext.ParseStart(body)
		if err == nil {
			_, err = calls.Start(ctx, sc, req, "")
		}
		return err
	}
	end := func(ctx context.Context, body []byte) error {
		req, err := callcontext.ParseEnd(body)
		if err == nil {
			_, err = calls.End(ctx, sc, req, "")
		}
		return err
	}
	hints := `"identity_hints":{"ani":"+14155550123","external_ids":{"crm_id":"crm_1"}},"telco":{"line_type":"mobile"}`
	saved := `"intent":"refund","intent_status":"open","variables":{"a":"1","b":"2","c":"3","d":"4","e":"5"}`
	count("start, new caller", want.newStart, `{"call_id":"c1",`+hints+`}`, start)
	count("end naming its customer", 1000, `{"call_id":"c1","customer_ref":"cust_c",`+saved+`}`, end)
	for i := 2; i < 5; i++ {
		now = now.Add(time.Hour)
		count("start, returning caller", want.returningStart, fmt.Sprintf(`{"call_id":"c%d",%s}`, i, hints), start)
		count("end of a returning caller's call", 1000, fmt.Sprintf(`{"call_id":"c%d",%s}`, i, saved), end)
	}
}

// commandStats reads the calls of every command from INFO commandstats,
// summed over the servers.
func commandStats(t *testing.T, addrs []string) map[string]int64 {
	t.Helper()
	total := map[string]int64{}
	for _, addr := range addrs {
		rdb := redis.NewClient(&redis.Options{Addr: addr})
		info, err := rdb.Info(context.Background(), "commandstats").Result()
		rdb.Close()
		if err != nil {
			t.Fatalf("INFO commandstats on %s: %v", addr, err)
		}
		for _, line := range strings.Split(info, "\n") {
			name, rest, ok := strings.Cut(strings.TrimSpace(line), ":calls=")
			if !ok {
				continue
			}
			n, _ := strconv.ParseInt(rest[:strings.IndexByte(rest, ',')], 10, 64)
			total[strings.TrimPrefix(name, "cmdstat_")] += n
		}
	}
	return total
}

// commandsSince counts the store's commands run since before: not the
// INFO that reads the counts, nor a connection's handshake or a Cluster
// client's topology reads.
func commandsSince(t *testing.T, addrs []string, before map[string]int64) (int64, map[string]int64) {
	t.Helper()
	after := commandStats(t, addrs)
	by := map[string]int64{}
	var n int64
	for _, name := range slices.Sorted(maps.Keys(after)) {
		d := after[name] - before[name]
		if d == 0 || name == "info" || name == "hello" || name == "ping" || name == "readonly" ||
			strings.HasPrefix(name, "client|") || strings.HasPrefix(name, "cluster|") || strings.HasPrefix(name, "command|") {
			continue
		}
		by[name] = d
		n += d
	}
	return n, by
}
