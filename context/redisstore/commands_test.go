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

	"github.com/stickycalls/stickycalls/context/callapi"
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
		testRequestCommands(t, redisstore.Options{Addrs: []string{addr}}, []string{addr}, budgets{newStart: 8, returningStart: 10})
	})
	t.Run("cluster", func(t *testing.T) {
		addrs := redistest.DurableCluster(t, "no").Addrs()
		// A Cluster's save runs a script in each slot it writes: the
		// call's, the ANI's and the customer's.
		testRequestCommands(t, redisstore.Options{Addrs: addrs, Cluster: true}, addrs, budgets{newStart: 11, returningStart: 14})
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
		req, err := callapi.ParseStart(body)
		if err == nil {
			_, err = calls.Start(ctx, sc, req, "")
		}
		return err
	}
	end := func(ctx context.Context, body []byte) error {
		req, err := callapi.ParseEnd(body)
		if err == nil {
			_, err = calls.End(ctx, sc, req, "")
		}
		return err
	}
	// The requests `stickycalls bench` sends: a new caller gives an ANI and
	// a line type; a returning one an ANI, a CRM id and a line type.
	newHints := func(caller int) string {
		return fmt.Sprintf(`"identity_hints":{"ani":"+1415555%04d"},"telco":{"line_type":"mobile"}`, caller)
	}
	hints := func(caller int) string {
		return fmt.Sprintf(`"identity_hints":{"ani":"+1415555%04d","external_ids":{"crm_id":"crm_%d"}},"telco":{"line_type":"mobile"}`, caller, caller)
	}
	saved := `"intent":"refund","intent_status":"open","variables":{"a":"1","b":"2","c":"3","d":"4","e":"5"}`
	call := func(caller, i int) string { return fmt.Sprintf(`"call_id":"c%d_%d"`, caller, i) }
	// The first start of a tally field in an hour also sets the hour's TTL
	// (one PEXPIRE), so each counted request of caller 1 follows a twin of
	// caller 0 in the same hour; caller 0's may take one command more.
	for caller := range 2 {
		count("start, new caller", want.newStart+int64(1-caller), `{`+call(caller, 0)+`,`+newHints(caller)+`}`, start)
		count("end naming its customer", 1000, `{`+call(caller, 0)+fmt.Sprintf(`,"customer_ref":"cust_%d",`, caller)+saved+`}`, end)
	}
	for i := 1; i < 5; i++ {
		now = now.Add(time.Hour)
		for caller := range 2 {
			budget := want.returningStart + int64(1-caller)
			if i == 1 {
				budget = 1000 // the first start with the CRM id: the end links it
			}
			count("start, returning caller", budget, `{`+call(caller, i)+`,`+hints(caller)+`}`, start)
			count("end of a returning caller's call", 1000, `{`+call(caller, i)+`,`+saved+`}`, end)
		}
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
