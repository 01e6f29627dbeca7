// Package bench is `stickycalls bench`: it starts its own redis-server, a
// floor server (one JSON handler doing one EVALSHA, the least any
// Redis-backed JSON API does, and the same doing 2 and 3 ordered ones) and
// the service as Serve runs it, each as a child process of the same
// binary, drives them with the same open- and closed-loop load and writes
// a Markdown report of the ratios, each workload read against the floor
// with its own number of round trips too. See DESIGN.md, Performance.
package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/stickycalls/stickycalls/config"
	"github.com/stickycalls/stickycalls/context/boltstore"
	"github.com/stickycalls/stickycalls/context/callcontext"
	"github.com/stickycalls/stickycalls/context/childproc"
	"github.com/stickycalls/stickycalls/context/keys"
	"github.com/stickycalls/stickycalls/context/redisstore"
)

// benchPlan is how long and how hard the bench drives each server.
type benchPlan struct {
	customers   []int         // store sizes, in order
	phase       time.Duration // each measured phase
	warmup      time.Duration
	grace       time.Duration // how long an open-loop phase may overrun before what is left counts as lost
	conns       int           // closed-loop connections
	inflight    int           // open-loop bound on outstanding requests
	voiceRate   float64       // the voice target's rate
	voiceSet    int           // customers whose line type Lookup has cached
	probes      int           // requests per workload whose Redis waves are counted
	repeats     int           // open-loop phases of the returning start at each size; the median p99 counts
	seedWorkers int           // concurrent seeding batches (Redis)
	profile     bool          // take CPU profiles of the service at the largest size on Redis
	stores      []string      // "redis" (one node), "cluster" (3 masters), "bbolt"
}

func fullPlan() benchPlan {
	return benchPlan{customers: []int{10_000, 1_000_000}, phase: 5 * time.Second, warmup: 2 * time.Second, grace: 10 * time.Second,
		conns: 32, inflight: 2048, voiceRate: 500, voiceSet: 2000, probes: 20, repeats: 3, seedWorkers: 4, profile: true,
		stores: []string{"redis", "cluster", "bbolt"}}
}

func quickPlan() benchPlan {
	p := fullPlan()
	p.customers, p.phase, p.warmup, p.grace, p.voiceSet, p.probes, p.repeats, p.profile = []int{10_000}, time.Second, 500*time.Millisecond, 3*time.Second, 500, 5, 1, false
	return p
}

// Run is `stickycalls bench`: it measures the service against the floor of
// any Redis-backed JSON API on this machine and writes a Markdown report
// (see DESIGN.md, Performance). With --role it is one of the servers it
// measures, run as its child.
func Run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	quick := fs.Bool("quick", false, "a run of about 45 seconds: 10k customers, 1-second phases")
	customers := fs.String("customers", "", "store sizes to measure, comma-separated (default 10000,1000000; 10000 with --quick)")
	stores := fs.String("stores", "", "stores to measure, comma-separated, from redis, cluster and bbolt (default all three)")
	out := fs.String("out", "", "Markdown file to write the report into, between its bench markers")
	role := fs.String("role", "", "internal: run as the bench's floor or server child")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	switch *role {
	case "floor":
		return floor(ctx, getenv)
	case "server":
		return profiledServe(ctx, getenv, stdout)
	case "":
	default:
		return fmt.Errorf("bench: unknown role %q", *role)
	}
	p := fullPlan()
	if *quick {
		p = quickPlan()
	}
	if *customers != "" {
		sizes, err := parseSizes(*customers)
		if err != nil {
			return err
		}
		p.customers = sizes
	}
	if *stores != "" {
		names, err := parseStores(*stores)
		if err != nil {
			return err
		}
		p.stores = names
	}
	sp := childproc.NewSpawner()
	defer sp.Close()
	launch, err := processLauncher(sp)
	if err != nil {
		return err
	}
	res, err := runBench(ctx, p, sp, launch, stderr)
	if err != nil {
		return err
	}
	md := res.markdown("stickycalls bench " + strings.Join(args, " "))
	fmt.Fprint(stdout, md)
	if *out != "" {
		return writeReport(*out, md)
	}
	return nil
}

// randomHex is n random bytes in hex: the run's own Twilio account SID and
// auth token, which sign the voice workload's webhooks.
func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// parseStores reads --stores: the stores measured, in the bench's own
// order whatever the flag's.
func parseStores(s string) ([]string, error) {
	all := fullPlan().stores
	var names []string
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if !slices.Contains(all, f) {
			return nil, fmt.Errorf("bench: --stores: %q is not one of %s", f, strings.Join(all, ", "))
		}
		names = append(names, f)
	}
	return slices.DeleteFunc(slices.Clone(all), func(st string) bool { return !slices.Contains(names, st) }), nil
}

func parseSizes(s string) ([]int, error) {
	var sizes []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("bench: --customers: %q is not a positive number", f)
		}
		if len(sizes) > 0 && n <= sizes[len(sizes)-1] {
			return nil, fmt.Errorf("bench: --customers: sizes must grow, as customers are added between them (%d after %d)", n, sizes[len(sizes)-1])
		}
		sizes = append(sizes, n)
	}
	return sizes, nil
}

// runner is one bench run.
type runner struct {
	p         benchPlan
	sp        *childproc.Spawner
	launch    launcher
	redis     *redisServer // the single node: the floors and the "redis" store
	cluster   redisNodes   // the "cluster" store's masters, while it is measured
	gen       *generator
	dir       string // temporary files
	log       io.Writer
	twilio    twilioAccount
	config    string // the servers' config file
	res       *results
	floor     *child             // the floor server, up for the whole run
	floorLoad *workloads         // the floor's requests
	floorRate float64            // half the one-wave floor's maximum throughput
	rates     map[string]float64 // open-loop rate of each store's workload, fixed at the first size
}

// runBench starts Redis, measures the floor, then the service on each
// store at each size.
func runBench(ctx context.Context, p benchPlan, sp *childproc.Spawner, launch launcher, log io.Writer) (*results, error) {
	dir, err := os.MkdirTemp("", "stickycalls-bench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	rd, err := startRedis(ctx, sp, dir, false)
	if err != nil {
		return nil, err
	}
	defer rd.stop()
	r := &runner{p: p, sp: sp, launch: launch, redis: rd, gen: newGenerator(), dir: dir, log: log,
		twilio: twilioAccount{sid: "AC" + randomHex(16), token: randomHex(16)}, config: filepath.Join(dir, "config.yaml"),
		res: &results{plan: p, began: time.Now(), machine: machineInfo(rd.version)}, rates: map[string]float64{}}
	numbers := fmt.Sprintf("numbers:\n  %q:\n    next:\n      dial: \"+14155550100\"\n", benchDNIS)
	if err := os.WriteFile(r.config, []byte(numbers), 0o600); err != nil {
		return nil, err
	}
	err = r.runFloors(ctx)
	if r.floor != nil {
		defer r.stop(r.floor)
	}
	if err != nil {
		return nil, err
	}
	for _, store := range p.stores {
		if err := r.runStore(ctx, store); err != nil {
			return nil, err
		}
	}
	_, r.res.floorPeakRSS = memory(r.floor.pid)
	r.res.took = time.Since(r.res.began)
	return r.res, nil
}

func (r *runner) logf(format string, args ...any) {
	fmt.Fprintf(r.log, "bench: %s "+format+"\n", append([]any{time.Since(r.res.began).Round(time.Millisecond)}, args...)...)
}

// runFloors starts the floor server, which stays up for the whole run,
// and measures its floors making 1 to maxFloorWaves ordered round trips:
// the maximum throughput of each, then its latency at half of it; wrk
// measures the one-wave floor too, when it is on the PATH.
func (r *runner) runFloors(ctx context.Context) error {
	addr, err := freeAddr()
	if err != nil {
		return err
	}
	env := map[string]string{"STICKYCALLS_ADDR": addr, "STICKYCALLS_REDIS_URL": "redis://" + r.redis.addr + "/0"}
	c, err := r.launch(ctx, "floor", env, "http://"+addr+"/healthz")
	if err != nil {
		return err
	}
	r.floor, r.floorLoad = c, &workloads{base: "http://" + addr, key: "sk_prod_floor", customers: r.p.customers[0]}
	r.gen.closedLoop(ctx, r.floorLoad.floorTarget(1), r.p.conns, r.p.warmup)
	for waves := 1; waves <= maxFloorWaves; waves++ {
		t := r.floorLoad.floorTarget(waves)
		run := floorRun{waves: waves, at: map[floorKey]ratePhase{}}
		run.closed, run.use = r.measure(ctx, c.pid, "redis", func() phase { return r.gen.closedLoop(ctx, t, r.p.conns, r.p.phase) })
		if run.closed.ok == 0 {
			return fmt.Errorf("bench: the floor server answered no request with %d waves", waves)
		}
		rate := run.closed.throughput() / 2
		open, u := r.measure(ctx, c.pid, "redis", func() phase { return r.gen.openLoop(ctx, t, rate, r.p.phase, r.p.grace, r.p.inflight) })
		run.open, run.openLoad = open, u.others
		r.res.floors = append(r.res.floors, run)
		r.logf("%s: %.0f req/s max, p99 %s at %.0f req/s", t.name, run.closed.throughput(), ms(run.open.quantile(0.99)), rate)
		if waves == 1 {
			r.floorRate = rate
			r.gen.client.CloseIdleConnections() // wrk's connections are its own
			r.res.wrk = runWrk(ctx, r.dir, r.floorLoad.base+"/floor/1", r.floorLoad.startBody(0), r.p.phase)
			r.logf("wrk: %s", r.res.wrk.summary())
		}
	}
	return nil
}

// floorAt measures the floor with waves round trips in the open loop at
// k's rate after k's run, unless it has been: a workload's p99 is compared
// with the p99 of the floor with its waves at its own rate, on the Redis
// as its run left it.
func (r *runner) floorAt(ctx context.Context, waves int, k floorKey) {
	f := &r.res.floors[waves-1]
	if _, ok := f.at[k]; ok {
		return
	}
	t := r.floorLoad.floorTarget(waves)
	p, u := r.measure(ctx, r.floor.pid, "redis", func() phase { return r.gen.openLoop(ctx, t, k.rate, r.p.phase, r.p.grace, r.p.inflight) })
	f.at[k] = ratePhase{p, u.others}
	r.logf("%s: p99 %s at %.0f req/s after %s, %s customers", t.name, ms(p.quantile(0.99)), k.rate, k.store, size(k.customers))
}

// runStore seeds a store size by size and measures the service on it at
// each size.
func (r *runner) runStore(ctx context.Context, store string) error {
	if store == "cluster" {
		c, err := startCluster(ctx, r.sp, r.dir, clusterMasters)
		if err != nil {
			return err
		}
		r.cluster = c
		defer func() { c.stop(); r.cluster = nil }()
	}
	st, err := r.openSeedStore(ctx, store)
	if err != nil {
		return err
	}
	defer func() { st.Close() }()
	w, err := r.prepare(ctx, st)
	if err != nil {
		return err
	}
	for i, size := range r.p.customers {
		sr := storeRun{store: store, customers: size, seeded: size - w.customers}
		began := time.Now()
		sc := callcontext.Scope{Tenant: config.DefaultTenant, Mode: callcontext.Prod}
		if err := seedCustomers(ctx, st, sc, w.customers, size, r.seedWorkers(store), began); err != nil {
			return err
		}
		sr.seedTime, w.customers = time.Since(began), size
		r.logf("%s: seeded %d customers in %s", store, sr.seeded, sr.seedTime.Round(time.Millisecond))
		if store != "bbolt" {
			if sr.waves, err = r.probeWaves(ctx, store, w); err != nil {
				return err
			}
		}
		if store == "bbolt" {
			st.Close() // the service's process takes the file's lock
		}
		if store != "bbolt" {
			r.nodes(store).slowEvents(ctx) // seeding's pipelines are slow on purpose
		}
		if err := r.measureServer(ctx, &sr, w, i == len(r.p.customers)-1); err != nil {
			return err
		}
		if store != "bbolt" {
			sr.slow = r.nodes(store).slowEvents(ctx)
		}
		if store != "bbolt" {
			// After the service has stopped, so that it does not compete.
			for _, row := range sr.rows {
				r.floorAt(ctx, floorWaves(sr.waves[row.name]), floorKey{store, size, row.open.rate})
			}
		}
		r.res.runs = append(r.res.runs, sr)
		if store == "bbolt" {
			if st, err = r.openSeedStore(ctx, store); err != nil {
				return err
			}
		}
	}
	return nil
}

// prepare gives an empty store the API key the load uses (tenant default,
// prod mode) and the Lookup answers of the voice workload's callers, and
// returns the workloads, with no customer seeded yet.
func (r *runner) prepare(ctx context.Context, st seedStore) (*workloads, error) {
	key, _, err := keys.New(st, time.Now).Create(ctx, config.DefaultTenant, callcontext.Prod)
	if err != nil {
		return nil, fmt.Errorf("bench: create key: %w", err)
	}
	voiceSet := min(r.p.voiceSet, r.p.customers[0])
	if err := cacheLineTypes(ctx, st, voiceSet, time.Now()); err != nil {
		return nil, err
	}
	return &workloads{key: key, voiceSet: voiceSet, twilio: r.twilio, pool: &callPool{}}, nil
}

func (r *runner) seedWorkers(store string) int {
	if store == "bbolt" {
		return 1 // one writer at a time anyway
	}
	return r.p.seedWorkers
}

func (r *runner) openSeedStore(ctx context.Context, store string) (seedStore, error) {
	if store == "bbolt" {
		return boltstore.Open(r.boltPath(), 10*time.Second)
	}
	opts, err := redisstore.ParseURL(r.nodes(store).url(), "")
	if err != nil {
		return nil, err
	}
	// Seeding sends pipelines of a thousand customers' scripts, whose
	// answer can take longer than the service's 1 s read timeout on a
	// loaded machine: a full run once died seeding 1M customers at a load
	// average of 14 on 2 CPUs. Nothing is measured through this client.
	opts.ReadTimeout, opts.PoolTimeout = 30*time.Second, 30*time.Second
	return redisstore.Open(ctx, opts)
}

// storeSize is the size of a store: Redis's used_memory, with what its
// key tables take of it (their entries and slots, MEMORY STATS'
// overhead.hashtable.*) and its keys; or the bbolt file's size.
type storeSize struct {
	bytes, tables, keys int64
}

// storeBytes is the size of store (zero for bbolt before its file exists).
func (r *runner) storeBytes(ctx context.Context, store string) storeSize {
	if store != "bbolt" {
		return r.nodes(store).usedMemory(ctx)
	}
	fi, err := os.Stat(r.boltPath())
	if err != nil {
		return storeSize{}
	}
	return storeSize{bytes: fi.Size()}
}

// grownBy is what the store grew by from s0 to s1. Redis's key tables
// double when their keys do, at once: a phase that happens to cross a
// power of two was charged a whole table's worth (about 80 B per start
// at 10k customers, which a phase one second later would not have seen).
// So the tables are charged by the key, at their cost per key at the end,
// and the rest as it grew.
func grownBy(s0, s1 storeSize) float64 {
	if s1.keys == 0 {
		return float64(s1.bytes - s0.bytes)
	}
	perKey := float64(s1.tables) / float64(s1.keys)
	return float64((s1.bytes-s1.tables)-(s0.bytes-s0.tables)) + perKey*float64(s1.keys-s0.keys)
}

func (r *runner) boltPath() string { return filepath.Join(r.dir, "stickycalls.db") }

// serverEnv is the service's environment on store, listening on addr.
func (r *runner) serverEnv(store, addr string) map[string]string {
	env := map[string]string{
		"STICKYCALLS_ADDR": addr, "STICKYCALLS_CONFIG": r.config, "STICKYCALLS_PUBLIC_URL": "http://" + addr,
		// Lookup credentials, so that the voice path consults the Lookup
		// cache; a miss would fail at once on this proxy, never reaching
		// Twilio (the bench only sends numbers whose answer is cached).
		"TWILIO_ACCOUNT_SID": r.twilio.sid, "TWILIO_AUTH_TOKEN": r.twilio.token, "HTTPS_PROXY": "http://127.0.0.1:9",
	}
	if store == "bbolt" {
		env["STICKYCALLS_DATA"] = r.boltPath()
	} else {
		env["STICKYCALLS_REDIS_URL"] = r.nodes(store).url()
	}
	return env
}

// clusterMasters is the size of the "cluster" store's Redis Cluster.
const clusterMasters = 3

// nodes is the Redis of store: the Cluster's masters for "cluster", else
// the single node (which the floors use too).
func (r *runner) nodes(store string) redisNodes {
	if store == "cluster" {
		return r.cluster
	}
	return redisNodes{r.redis}
}
