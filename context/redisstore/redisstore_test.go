package redisstore_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/redis/go-redis/v9"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/stickycalls/stickycalls/context/callcontext"
	"github.com/stickycalls/stickycalls/context/identity"
	"github.com/stickycalls/stickycalls/context/keys"
	"github.com/stickycalls/stickycalls/context/redisstore"
	"github.com/stickycalls/stickycalls/context/redistest"
	"github.com/stickycalls/stickycalls/context/storage"
	"github.com/stickycalls/stickycalls/context/storetest"
)

func TestMain(m *testing.M) { redistest.Main(m) }

// open opens a store on addrs with a key prefix of its own, closed when t
// ends.
func open(t *testing.T, opts redisstore.Options) *redisstore.Store {
	t.Helper()
	opts.Prefix = redistest.Prefix(t)
	s, err := redisstore.Open(context.Background(), opts)
	if err != nil {
		t.Fatalf("Open(%v) error %v", opts.Addrs, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestStoreSingle(t *testing.T) {
	addr := redistest.Single(t)
	storetest.Run(t, func(t *testing.T) storetest.Store {
		return open(t, redisstore.Options{Addrs: []string{addr}})
	})
}

func TestStoreCluster(t *testing.T) {
	addrs := redistest.Cluster(t)
	storetest.Run(t, func(t *testing.T) storetest.Store {
		return open(t, redisstore.Options{Addrs: addrs, Cluster: true})
	})
}

// TestClusterDetected checks that one address of a cluster node opens the
// whole cluster: a store that did not follow MOVED would fail.
func TestClusterDetected(t *testing.T) {
	addrs := redistest.Cluster(t)
	s := open(t, redisstore.Options{Addrs: addrs[:1]})
	ctx := context.Background()
	sc := callcontext.Scope{Tenant: "acme", Mode: callcontext.Test}
	for _, ref := range []string{"cust_a", "cust_b", "cust_c", "cust_d", "cust_e", "cust_f"} {
		got, err := s.Customers(ctx, sc, []string{ref})
		if err != nil || len(got) != 0 {
			t.Fatalf("Customers(%s) on one cluster node = %v, %v; want none, nil", ref, got, err)
		}
	}
}

var t0 = time.Date(2026, 2, 7, 10, 30, 0, 0, time.UTC)

// TestWaves checks the round trips of the hot path against the budget the
// package documents.
func TestWaves(t *testing.T) {
	for name, opts := range map[string]redisstore.Options{
		"single":  {Addrs: []string{redistest.Single(t)}},
		"cluster": {Addrs: redistest.Cluster(t), Cluster: true},
	} {
		t.Run(name, func(t *testing.T) { testWaves(t, open(t, opts)) })
	}
}

func testWaves(t *testing.T, s *redisstore.Store) {
	sc := callcontext.Scope{Tenant: "acme", Mode: callcontext.Test}
	link := storage.Link{LastCall: t0, Expires: t0.Add(90 * 24 * time.Hour)}
	rec := storage.Record{Ref: "cust_1", Version: 1, Created: t0, LastCall: t0, Expires: link.Expires,
		ANIs: map[string]storage.Link{"+14155550101": link}}
	claim := storage.Claim{Op: storage.OpStart, CallID: "call_1", Fingerprint: "p", Now: t0, Lease: time.Minute,
		Replay: time.Hour, KeyTTL: time.Hour, Retention: time.Hour, Quota: 10, Period: "2026-02"}
	end := storage.EndCommit{
		Call:     storage.CallRecord{ID: "call_1", Ended: t0, EndResponse: []byte("{}"), Expires: t0.Add(time.Hour)},
		Writes:   []storage.Write{{Record: rec}},
		ANILinks: []storage.ANILink{{ANI: "+14155550101", Ref: "cust_1", Link: link}},
		Period:   "2026-02",
	}
	steps := []struct {
		name string
		max  int64
		do   func(ctx context.Context) error
	}{
		{"Claim", 1, func(ctx context.Context) error { _, err := s.Claim(ctx, sc, claim); return err }},
		{"Resolve (new caller)", 1, func(ctx context.Context) error {
			_, err := s.Resolve(ctx, sc, storage.Query{ANI: "+14155550101"}, t0)
			return err
		}},
		{"SaveStart", 1, func(ctx context.Context) error {
			return s.SaveStart(ctx, sc, storage.StartCommit{Call: storage.CallRecord{ID: "call_1", Started: t0, ANI: "+14155550101"},
				LineType: identity.Mobile, LinkTTL: time.Hour, Period: "2026-02"})
		}},
		{"CommitEnd", 3, func(ctx context.Context) error { return s.CommitEnd(ctx, sc, end) }},
		{"Resolve (returning caller)", 2, func(ctx context.Context) error {
			_, err := s.Resolve(ctx, sc, storage.Query{ANI: "+14155550101"}, t0)
			return err
		}},
	}
	for _, st := range steps {
		ctx, waves := redisstore.WithWaveCounter(context.Background())
		if err := st.do(ctx); err != nil {
			t.Fatalf("%s error %v", st.name, err)
		}
		if waves.N() > st.max {
			t.Errorf("%s took %d waves, want at most %d", st.name, waves.N(), st.max)
		}
		t.Logf("%s: %d waves", st.name, waves.N())
	}
}

// proxy forwards TCP connections to addr until it is closed, which also
// cuts every open connection: a Redis that went away.
type proxy struct {
	l     net.Listener
	mu    sync.Mutex
	conns []net.Conn
}

func newProxy(t *testing.T, addr string) *proxy {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{l: l}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", addr)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, up)
			p.mu.Unlock()
			go func() { io.Copy(up, c); up.Close() }()
			go func() { io.Copy(c, up); c.Close() }()
		}
	}()
	t.Cleanup(p.close)
	return p
}

func (p *proxy) close() {
	p.l.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
}

// TestUnavailable checks that every method reports a Redis that does not
// answer as callcontext.ErrUnavailable.
func TestUnavailable(t *testing.T) {
	short := redisstore.Options{DialTimeout: 100 * time.Millisecond, ReadTimeout: 100 * time.Millisecond, WriteTimeout: 100 * time.Millisecond}
	t.Run("Open of a port with nothing listening", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		opts := short
		opts.Addrs = []string{addr}
		if _, err := redisstore.Open(context.Background(), opts); !errors.Is(err, callcontext.ErrUnavailable) {
			t.Errorf("Open(%s) error %v, want ErrUnavailable", addr, err)
		}
	})
	t.Run("methods after Redis went away", func(t *testing.T) {
		p := newProxy(t, redistest.Single(t))
		opts := short
		opts.Addrs = []string{p.l.Addr().String()}
		s := open(t, opts)
		p.close()
		for name, err := range callEveryMethod(s) {
			if !errors.Is(err, callcontext.ErrUnavailable) {
				t.Errorf("%s error %v, want ErrUnavailable", name, err)
			}
		}
	})
}

// callEveryMethod calls each Store method once and returns its error.
func callEveryMethod(s *redisstore.Store) map[string]error {
	ctx := context.Background()
	sc := callcontext.Scope{Tenant: "acme", Mode: callcontext.Test}
	c := storage.Claim{Op: storage.OpStart, CallID: "call_1", Fingerprint: "p", Now: t0, Lease: time.Minute, Period: "2026-02"}
	call := storage.CallRecord{ID: "call_1", Started: t0, Ended: t0, Expires: t0.Add(time.Hour)}
	errs := map[string]error{}
	errs["Ping"] = s.Ping(ctx)
	_, errs["Resolve"] = s.Resolve(ctx, sc, storage.Query{ANI: "+14155550101", CustomerRef: "cust_1"}, t0)
	_, errs["Customers"] = s.Customers(ctx, sc, []string{"cust_1"})
	_, errs["Claim"] = s.Claim(ctx, sc, c)
	errs["Release"] = s.Release(ctx, sc, c)
	errs["SaveStart"] = s.SaveStart(ctx, sc, storage.StartCommit{Call: call, Period: "2026-02"})
	errs["CommitEnd"] = s.CommitEnd(ctx, sc, storage.EndCommit{Call: call, Period: "2026-02",
		Writes: []storage.Write{{Record: storage.Record{Ref: "cust_1", Version: 1}}}})
	errs["ConfirmCall"] = s.ConfirmCall(ctx, sc, "call_1", storage.Confirmation{Confirmed: true})
	_, errs["Call"] = s.Call(ctx, sc, "call_1")
	errs["Erase"] = s.Erase(ctx, sc, "cust_1")
	_, errs["Usage"] = s.Usage(ctx, sc, "2026-02")
	errs["PutKey"] = s.PutKey(ctx, keys.Key{ID: "key_1", Hash: "h"})
	_, errs["KeyByHash"] = s.KeyByHash(ctx, "h")
	_, errs["Keys"] = s.Keys(ctx)
	errs["RevokeKey"] = s.RevokeKey(ctx, "key_1", t0)
	errs["TouchKey"] = s.TouchKey(ctx, "key_1", t0)
	_, _, errs["CachedLineType"] = s.CachedLineType(ctx, "+14155550101", t0)
	errs["CacheLineType"] = s.CacheLineType(ctx, "+14155550101", identity.Mobile, t0)
	return errs
}

func TestParseURL(t *testing.T) {
	tests := []struct {
		name, url, master string
		want              redisstore.Options
	}{
		{"single node", "redis://:secret@10.0.0.1:6380/2", "",
			redisstore.Options{Addrs: []string{"10.0.0.1:6380"}, Password: "secret", DB: 2}},
		{"single node, default port, user", "redis://app:pw@redis.internal", "",
			redisstore.Options{Addrs: []string{"redis.internal:6379"}, Username: "app", Password: "pw"}},
		{"TLS", "rediss://redis.example.com:6380", "",
			redisstore.Options{Addrs: []string{"redis.example.com:6380"}}},
		{"cluster", "redis://:pw@n1:7000, redis://:pw@n2:7001,redis://:pw@n3:7002", "",
			redisstore.Options{Addrs: []string{"n1:7000", "n2:7001", "n3:7002"}, Cluster: true, Password: "pw"}},
		{"sentinel", "redis://:pw@s1:26379,redis://:pw@s2:26379", "mymaster",
			redisstore.Options{Addrs: []string{"s1:26379", "s2:26379"}, SentinelMaster: "mymaster", Password: "pw"}},
		{"timeouts", "redis://h:6379?dial_timeout=3s&read_timeout=250ms", "",
			redisstore.Options{Addrs: []string{"h:6379"}, DialTimeout: 3 * time.Second, ReadTimeout: 250 * time.Millisecond}},
	}
	for _, tc := range tests {
		got, err := redisstore.ParseURL(tc.url, tc.master)
		if err != nil {
			t.Errorf("ParseURL(%s %q, %q) error %v", tc.name, tc.url, tc.master, err)
			continue
		}
		if (got.TLS != nil) != (tc.name == "TLS") {
			t.Errorf("ParseURL(%s %q).TLS = %v, want TLS only for rediss://", tc.name, tc.url, got.TLS)
		}
		if diff := cmp.Diff(tc.want, got, cmpopts.IgnoreFields(redisstore.Options{}, "TLS", "PoolTimeout")); diff != "" {
			t.Errorf("ParseURL(%s %q, %q): diff (-want +got):\n%s", tc.name, tc.url, tc.master, diff)
		}
	}
	for _, bad := range []string{"", "http://h:6379", "redis://h:6379/x", "redis://:a@n1:7000,redis://:b@n2:7001", "redis://n1:7000/1,redis://n2:7001/1", "redis://h?nonsense=1"} {
		if got, err := redisstore.ParseURL(bad, ""); err == nil {
			t.Errorf("ParseURL(%q) = %+v, want an error", bad, got)
		}
	}
}

func TestOpenRejects(t *testing.T) {
	for _, opts := range []redisstore.Options{{}, {Addrs: []string{"127.0.0.1:1"}, Prefix: "a{b"}} {
		if _, err := redisstore.Open(context.Background(), opts); err == nil || errors.Is(err, callcontext.ErrUnavailable) {
			t.Errorf("Open(%+v) error %v, want a configuration error", opts, err)
		}
	}
}

// TestStoreSentinel runs the conformance suite through a Sentinel, as
// STICKYCALLS_REDIS_URL with STICKYCALLS_REDIS_SENTINEL_MASTER configures it.
func TestStoreSentinel(t *testing.T) {
	opts, err := redisstore.ParseURL("redis://"+redistest.Sentinel(t), redistest.SentinelMaster)
	if err != nil {
		t.Fatal(err)
	}
	storetest.Run(t, func(t *testing.T) storetest.Store { return open(t, opts) })
}

// TestEarlierLayouts reads what earlier versions stored: a call record as
// a hash of fields, or as a string with its base in JSON, the request's
// whole hash as its print and the matched customer in "rv"; a customer
// record as JSON.
func TestEarlierLayouts(t *testing.T) {
	addr := redistest.Single(t)
	prefix := redistest.Prefix(t)
	s, err := redisstore.Open(context.Background(), redisstore.Options{Addrs: []string{addr}, Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	defer rdb.Close()
	ctx := context.Background()
	sc := callcontext.Scope{Tenant: "acme", Mode: callcontext.Test}
	at := func(t time.Time) string { return fmt.Sprintf("%020d", t.UnixNano()) }
	space := "{" + prefix + "t:acme:test"
	rec := storage.Record{Ref: "cust_1", Version: 3, Created: t0, FirstCall: t0, LastCall: t0, Expires: t0.Add(90 * 24 * time.Hour)}
	raw, _ := json.Marshal(rec)
	if err := rdb.HSet(ctx, space+":c:cust_1}", "rec", raw, "v", 3).Err(); err != nil {
		t.Fatal(err)
	}
	if err := rdb.HSet(ctx, space+"}:call:old", "base", `{"id":"old"}`, "ref", "cust_1", "st", at(t0), "sp", "print",
		"sr", `{"replayed":true}`, "exp", at(t0.Add(7*24*time.Hour)), "sl", "", "cf", "").Err(); err != nil {
		t.Fatal(err)
	}
	got, err := s.Customers(ctx, sc, []string{"cust_1"})
	if err != nil || !cmp.Equal(got["cust_1"], rec) {
		t.Errorf("Customers(cust_1 in JSON) = %v, %v; want %v", got, err, rec)
	}
	call, err := s.Call(ctx, sc, "old")
	if err != nil || call.ID != "old" || call.CustomerRef != "cust_1" || string(call.StartResponse) != `{"replayed":true}` || !call.Started.Equal(t0) {
		t.Errorf("Call(old, a hash) = %+v, %v; want its start", call, err)
	}
	c := storage.Claim{Op: storage.OpStart, CallID: "old", Fingerprint: "print", Now: t0.Add(time.Minute),
		Lease: time.Minute, Replay: 24 * time.Hour, KeyTTL: 24 * time.Hour, Retention: 7 * 24 * time.Hour, Period: callcontext.Period(t0)}
	res, err := s.Claim(ctx, sc, c)
	if err != nil || res.Outcome != storage.Replay || string(res.Response) != `{"replayed":true}` {
		t.Errorf("Claim(start of old, a hash) = %v %q, %v; want a replay", res.Outcome, res.Response, err)
	}
	c.Op = storage.OpEnd
	if res, err = s.Claim(ctx, sc, c); err != nil || res.Outcome != storage.Claimed || res.Call.CustomerRef != "cust_1" {
		t.Fatalf("Claim(end of old, a hash) = %v %+v, %v; want claimed with the start's record", res.Outcome, res.Call, err)
	}
	if typ := rdb.Type(ctx, space+"}:call:old").Val(); typ != "string" {
		t.Errorf("the claimed call record is a %s, want rewritten as a string", typ)
	}

	print := strings.Repeat("5e", 32)
	expires := t0.Add(7 * 24 * time.Hour)
	packed, _ := msgpack.Marshal(map[string]string{
		"base": `{"ani":"+14155550100","external_ids":[{"key":"crm_id","value":"C1"}],"lt":"mobile","m":"cust_1","mc":true}`,
		"ref":  "cust_2", "rec": "ignore", "st": at(t0), "sp": print, "sr": `{"replayed":2}`, "exp": at(expires), "rv": "|cust_1|cust_3|",
	})
	if err := rdb.Set(ctx, space+"}:call:old2", packed, 0).Err(); err != nil {
		t.Fatal(err)
	}
	if err := rdb.HSet(ctx, space+":c:cust_1}", "c:old2", at(expires)).Err(); err != nil {
		t.Fatal(err)
	}
	want := storage.CallRecord{ID: "old2", ANI: "+14155550100", ExternalIDs: []storage.ExternalID{{Key: "crm_id", Value: "C1"}},
		LineType: identity.Mobile, Matched: "cust_1", Contestable: true, CustomerRef: "cust_2", Recommendation: identity.Ignore,
		Started: t0, StartPrint: print, StartResponse: []byte(`{"replayed":2}`), Expires: expires, Revealed: []string{"cust_1", "cust_3"}}
	if call, err := s.Call(ctx, sc, "old2"); err != nil || !cmp.Equal(call, want) {
		t.Errorf("Call(old2, base in JSON) = %v, %v", cmp.Diff(want, call), err)
	}
	c = storage.Claim{Op: storage.OpStart, CallID: "old2", Fingerprint: print, Now: t0.Add(time.Minute),
		Lease: time.Minute, Replay: 24 * time.Hour, KeyTTL: 24 * time.Hour, Retention: 7 * 24 * time.Hour, Period: callcontext.Period(t0)}
	if res, err := s.Claim(ctx, sc, c); err != nil || res.Outcome != storage.Replay || string(res.Response) != `{"replayed":2}` {
		t.Errorf("Claim(start of old2, same request) = %v %q, %v; want a replay", res.Outcome, res.Response, err)
	}
	c.Fingerprint = strings.Repeat("5f", 32)
	if res, err := s.Claim(ctx, sc, c); err != nil || res.Outcome != storage.Conflict {
		t.Errorf("Claim(start of old2, another request) = %v, %v; want a conflict", res.Outcome, err)
	}
	if err := s.Erase(ctx, sc, "cust_1"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Call(ctx, sc, "old2"); !errors.Is(err, callcontext.ErrNotFound) {
		t.Errorf("Call(old2) after erasing the customer it matched: %v, want ErrNotFound", err)
	}
}
