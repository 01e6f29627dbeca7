package bench

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/stickycalls/stickycalls/cmd/stickycalls/internal/service"
	"github.com/stickycalls/stickycalls/config"
	"github.com/stickycalls/stickycalls/context/callapi"
	"github.com/stickycalls/stickycalls/context/callcontext"
	"github.com/stickycalls/stickycalls/context/identity"
	"github.com/stickycalls/stickycalls/context/keys"
	"github.com/stickycalls/stickycalls/context/redisstore"
)

// workloadRun is one workload's figures on one server.
type workloadRun struct {
	name   string
	closed phase // maximum throughput
	open   phase // latency at a fixed rate
	use    cost  // per request, during the closed phase
	// openLoad is the CPU load of other processes during the open phase.
	openLoad float64
	// openP99s are the p99s of each repetition of the open phase, in the
	// order they ran; open is the one with the median p99.
	openP99s []time.Duration
}

// floorRun is the floor making waves ordered round trips per request: its
// closed loop, its open loop at half its maximum, and its open loops at
// the rates of the service's workloads with as many waves, each run right
// after the service's run on a store and size, on the Redis as that run
// left it: a floor on a Redis holding 1M customers is not the floor on an
// empty one.
type floorRun struct {
	waves int
	workloadRun
	at map[floorKey]ratePhase
}

// floorKey names an open loop of a floor: after which run, at what rate.
type floorKey struct {
	store     string
	customers int
	rate      float64
}

// ratePhase is an open-loop phase and the other load during it.
type ratePhase struct {
	p    phase
	load float64
}

// atRate is the floor's open-loop phase at rate after the run of sr, if
// it ran one.
func (f floorRun) atRate(sr storeRun, rate float64) (ratePhase, bool) {
	p, ok := f.at[floorKey{sr.store, sr.customers, rate}]
	return p, ok
}

// floorWaves is the floor a workload making waves round trips per request
// (an average over probes) is read against: waves rounded up, from 1 to
// maxFloorWaves. The average is a sum of n/probes per probe, which can
// land a hair above a whole number (2/3 added three times), and must not
// round up then.
func floorWaves(waves float64) int {
	n := int(math.Ceil(waves - 1e-9))
	return min(max(n, 1), maxFloorWaves)
}

// cost is what requests cost, per request, during a phase.
type cost struct {
	cpu, redisCPU, benchCPU time.Duration // server, redis-server and load generator (this process) CPU time
	cmds, evalsha           float64       // Redis commands (those scripts run included), and EVALSHA alone
	byCommand               map[string]float64
	rss                     int64 // the server's RSS at the phase's end
	// grew is what the store grew by, in bytes per request: Redis's
	// used_memory, its key tables charged by the key (grownBy), or the
	// size of bbolt's file; grewRaw is used_memory's own growth.
	grew, grewRaw float64
	// others is the CPU load, in cores, of every other process on the
	// machine meanwhile: what disturbed the measurement.
	others float64
	// redisFaults is redis-server's page faults per request.
	redisFaults float64
}

// storeRun is the service measured on one store at one size.
type storeRun struct {
	store     string
	customers int
	seeded    int // customers added for this size
	seedTime  time.Duration
	rows      []workloadRun
	peakRSS   int64              // of the service, over every phase
	waves     map[string]float64 // Redis waves per request of each workload
	slow      string             // what took Redis itself 5 ms or more during the service's phases (redisNodes.slowEvents)
}

// measure runs f and charges the CPU time, Redis commands and growth of
// the store (the server's: "redis", "cluster" or "bbolt") spent meanwhile to the
// requests it answered.
func (r *runner) measure(ctx context.Context, pid int, store string, f func() phase) (phase, cost) {
	self := os.Getpid()
	size0 := r.storeBytes(ctx, store)
	rd := r.nodes(store)
	cpu0, rcpu0, bcpu0, all0 := cpuTime(pid), rd.cpu(), cpuTime(self), busyTime()
	cmds0, _ := rd.commandStats(ctx)
	faults0 := rd.pageFaults()
	began := time.Now()
	p := f()
	elapsed := time.Since(began)
	cpu1, rcpu1, bcpu1, all1 := cpuTime(pid), rd.cpu(), cpuTime(self), busyTime()
	cmds1, _ := rd.commandStats(ctx)
	faults1 := rd.pageFaults()
	size1 := r.storeBytes(ctx, store)
	u := cost{byCommand: map[string]float64{}}
	u.rss, _ = memory(pid)
	ours := (cpu1 - cpu0) + (rcpu1 - rcpu0)
	if pid != self {
		ours += bcpu1 - bcpu0
	}
	u.others = max(float64(all1-all0-ours)/float64(elapsed), 0)
	n := p.ok + p.failed
	if n == 0 {
		return p, u
	}
	u.cpu, u.redisCPU, u.benchCPU = (cpu1-cpu0)/time.Duration(n), (rcpu1-rcpu0)/time.Duration(n), (bcpu1-bcpu0)/time.Duration(n)
	u.grew, u.grewRaw = grownBy(size0, size1)/float64(n), float64(size1.bytes-size0.bytes)/float64(n)
	u.redisFaults = float64(faults1-faults0) / float64(n)
	for name, calls := range cmds1 {
		if d := calls - cmds0[name]; name != "info" && d > 0 {
			u.byCommand[name] = float64(d) / float64(n)
			u.cmds += float64(d) / float64(n)
		}
	}
	u.evalsha = u.byCommand["evalsha"]
	return p, u
}

// measureServer starts the service on sr's store and drives every
// workload against it.
func (r *runner) measureServer(ctx context.Context, sr *storeRun, w *workloads, last bool) error {
	addr, err := freeAddr()
	if err != nil {
		return err
	}
	env := r.serverEnv(sr.store, addr)
	profAddr := ""
	if r.p.profile && last {
		if profAddr, err = freeAddr(); err != nil {
			return err
		}
		env["STICKYCALLS_BENCH_PROFILE_ADDR"] = profAddr
	}
	c, err := r.launch(ctx, "server", env, "http://"+addr+"/healthz")
	if err != nil {
		return err
	}
	defer r.stop(c)
	w.base = "http://" + addr
	if err := r.check(ctx, w); err != nil {
		return err
	}
	r.gen.closedLoop(ctx, w.startReturning(), r.p.conns, r.p.warmup)
	for _, t := range []target{w.startReturning(), w.startNew(), w.end(), w.voiceIncoming()} {
		run := r.drive(ctx, c, sr, w, t, profAddr)
		sr.rows = append(sr.rows, run)
		r.logf("%s, %d customers, %s: %.0f req/s max; at %.0f req/s p50 %s p99 %s", sr.store, sr.customers, t.name,
			run.closed.throughput(), run.open.rate, ms(run.open.quantile(0.5)), ms(run.open.quantile(0.99)))
	}
	_, sr.peakRSS = memory(c.pid)
	return ctx.Err()
}

// stop stops a server after closing the load generator's idle
// connections, some of which the server may never have seen a request on
// (it would wait for those before it stops).
func (r *runner) stop(c *child) {
	r.gen.client.CloseIdleConnections()
	c.stop()
}

// drive measures one workload: closed loop, then open loop at the store's
// rate for it.
func (r *runner) drive(ctx context.Context, c *child, sr *storeRun, w *workloads, t target, profAddr string) workloadRun {
	run := workloadRun{name: t.name}
	if t.name == endName && len(sr.rows) > 0 {
		r.topUp(ctx, w, int(sr.rows[0].closed.throughput()*r.p.phase.Seconds()))
	}
	wait := func() {}
	if profAddr != "" && (t.name == returningName || t.name == endName) {
		wait = r.profile(ctx, profAddr, fmt.Sprintf("%s, %s, %d customers", t.name, sr.store, sr.customers))
	}
	run.closed, run.use = r.measure(ctx, c.pid, sr.store, func() phase { return r.gen.closedLoop(ctx, t, r.p.conns, r.p.phase) })
	wait()
	rate := r.openRate(sr.store, t, run.closed)
	if t.name == endName {
		r.topUp(ctx, w, int(rate*r.p.phase.Seconds())+1)
	}
	// The returning start's latency is what sizes are compared on: it is
	// measured several times and the run with the median p99 kept, so
	// that one stall does not decide the comparison.
	repeats := 1
	if t.name == returningName {
		repeats = r.p.repeats
	}
	type measured struct {
		p phase
		u cost
	}
	var runs []measured
	for range max(repeats, 1) {
		p, u := r.measure(ctx, c.pid, sr.store, func() phase { return r.gen.openLoop(ctx, t, rate, r.p.phase, r.p.grace, r.p.inflight) })
		runs = append(runs, measured{p, u})
		run.openP99s = append(run.openP99s, p.quantile(0.99))
	}
	slices.SortFunc(runs, func(a, b measured) int { return cmp.Compare(a.p.quantile(0.99), b.p.quantile(0.99)) })
	median := runs[len(runs)/2]
	run.open, run.openLoad = median.p, median.u.others
	return run
}

// openRate is the open-loop rate of a workload on a store: the voice
// target's rate for voice, else half the one-wave floor's maximum or half the
// workload's own, whichever is lower, as measured at the first size and
// kept for the others so that sizes compare at the same rate.
func (r *runner) openRate(store string, t target, closed phase) float64 {
	if t.name == voiceName {
		return r.p.voiceRate
	}
	key := store + "/" + t.name
	if rate, ok := r.rates[key]; ok {
		return rate
	}
	rate := max(min(r.floorRate, closed.throughput()/2), 1)
	r.rates[key] = rate
	return rate
}

// topUp starts returning callers' calls until the pool holds need.
func (r *runner) topUp(ctx context.Context, w *workloads, need int) {
	for tries := 0; w.pool.len() < need && tries < 120 && ctx.Err() == nil; tries++ {
		r.gen.closedLoop(ctx, w.startReturning(), r.p.conns, 250*time.Millisecond)
	}
}

// check sends one request of each workload and makes sure the server
// does what the bench means to measure: a returning caller is reused, a
// new one is not, an end is applied, and the voice greeting names the
// caller (the Lookup cache answered "mobile").
func (r *runner) check(ctx context.Context, w *workloads) error {
	checks := []struct {
		t    target
		want string
	}{
		{w.startReturning(), `"recommendation":"reuse"`},
		{w.startNew(), `"recommendation":"ignore"`},
		{w.end(), `"customer_ref":"cust_`},
		{w.voiceIncoming(), "Welcome back, Customer "},
	}
	for _, c := range checks {
		i := r.gen.counter.Add(1)
		req, err := c.t.build(i)
		if err != nil {
			return fmt.Errorf("bench: check %s: %w", c.t.name, err)
		}
		resp, err := r.gen.client.Do(req.WithContext(ctx))
		if err != nil {
			return fmt.Errorf("bench: check %s: %w", c.t.name, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !bytes.Contains(body, []byte(c.want)) {
			return fmt.Errorf("bench: check %s: answered %d %s; want 200 with %s", c.t.name, resp.StatusCode, body, c.want)
		}
		if c.t.ok != nil {
			c.t.ok(i)
		}
	}
	return nil
}

// profile takes a CPU profile of the service for one phase, in the
// background; the returned func waits for it.
func (r *runner) profile(ctx context.Context, addr, name string) func() {
	done := make(chan profileResult, 1)
	n := len(r.res.profiles)
	go func() {
		p := profileResult{name: name}
		if p.path, p.err = r.fetchProfile(ctx, addr, n); p.err == nil {
			p.top, p.cum, p.err = pprofTop(ctx, p.path)
		}
		done <- p
	}()
	return func() {
		p := <-done
		if p.path != "" {
			r.logf("CPU profile of %s: %s", p.name, p.path)
		}
		r.res.profiles = append(r.res.profiles, p)
	}
}

// profileResult is a CPU profile of the service and its top entries.
type profileResult struct {
	name, path string
	top        string // go tool pprof -top
	cum        string // go tool pprof -top -cum, the service's own frames and the costliest library ones
	err        error
}

func (r *runner) fetchProfile(ctx context.Context, addr string, n int) (string, error) {
	u := fmt.Sprintf("http://%s/cpu?seconds=%g", addr, r.p.phase.Seconds())
	req, _ := http.NewRequestWithContext(ctx, "GET", u, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("profile: %d %v", resp.StatusCode, err)
	}
	if r.res.profileDir == "" {
		if r.res.profileDir, err = os.MkdirTemp("", "stickycalls-bench-profiles-"); err != nil {
			return "", err
		}
	}
	path := filepath.Join(r.res.profileDir, fmt.Sprintf("cpu-%d.pprof", n))
	return path, os.WriteFile(path, raw, 0o600)
}

// pprofTop runs go tool pprof -top on a profile, flat and cumulative; it
// returns nothing when go is not on PATH.
func pprofTop(ctx context.Context, path string) (top, cum string, err error) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		return "", "", nil
	}
	flat, err := exec.CommandContext(ctx, goBin, "tool", "pprof", "-top", "-nodecount=20", path).Output()
	if err != nil {
		return "", "", fmt.Errorf("go tool pprof: %w", err)
	}
	all, err := exec.CommandContext(ctx, goBin, "tool", "pprof", "-top", "-cum", "-nodecount=400", path).Output()
	if err != nil {
		return "", "", fmt.Errorf("go tool pprof: %w", err)
	}
	return strings.TrimSpace(string(flat)), selectFrames(string(all), 30), nil
}

// selectFrames keeps, of a cumulative pprof listing, the header and the
// first n frames of this module and of the libraries the service spends
// most in (JSON, regexp, syscalls, GC, bbolt's commit).
func selectFrames(listing string, n int) string {
	libraries := []string{"encoding/json.Unmarshal", "encoding/json.Marshal", "regexp.(*Regexp).replaceAll",
		"internal/runtime/syscall/linux.Syscall6", "runtime.gcBgMarkWorker", "runtime.mallocgc", "net.(*conn).Write", "net.(*conn).Read",
		"go.etcd.io/bbolt.(*Tx).Commit", "go.etcd.io/bbolt.fdatasync", "go.etcd.io/bbolt.(*DB).Update", "text/template.(*Template).Execute"}
	var keep []string
	for _, line := range strings.Split(strings.TrimSpace(listing), "\n") {
		f := strings.Fields(line)
		switch {
		case strings.HasPrefix(line, "Type:") || strings.HasPrefix(line, "Duration:") || strings.Contains(line, "flat%"):
			keep = append(keep, line)
		case n > 0 && len(f) == 6 && (strings.HasPrefix(f[5], "github.com/stickycalls/stickycalls/") ||
			strings.HasPrefix(f[5], "main.") || slices.Contains(libraries, f[5])):
			keep = append(keep, line)
			n--
		}
	}
	return strings.Join(keep, "\n")
}

// probeWaves counts the Redis round trips of each workload's request with
// redisstore's wave counter, through the domain service of a service.App,
// wired as serve wires it (a /v1 request authenticates its key first; the voice webhook asks
// Lookup, whose answer is cached, then starts the call).
func (r *runner) probeWaves(ctx context.Context, store string, w *workloads) (map[string]float64, error) {
	env := r.serverEnv(store, "127.0.0.1:1")
	cfg, err := config.Load(func(k string) string { return env[k] })
	if err != nil {
		return nil, err
	}
	be, err := service.OpenStore(ctx, cfg, time.Second)
	if err != nil {
		return nil, err
	}
	defer be.Close()
	a, err := service.New(cfg, be, zerolog.Nop(), prometheus.NewRegistry(), service.Outside{Now: time.Now})
	if err != nil {
		return nil, err
	}
	pr := &prober{calls: a.Calls, keys: a.Keys, key: w.key, n: r.p.probes, waves: map[string]float64{}}
	for range r.p.probes {
		if err := pr.probe(ctx, w, r.gen.counter.Add(1), r.gen.counter.Add(1)); err != nil {
			return nil, err
		}
	}
	return pr.waves, nil
}

// prober sends requests straight to the service and counts their waves.
type prober struct {
	calls *callcontext.Service
	keys  *keys.Keyring
	key   string
	n     int
	waves map[string]float64
}

// probe sends request i of each workload (j for the new caller's start,
// whose call id must differ from the returning caller's).
func (p *prober) probe(ctx context.Context, w *workloads, i, j int64) error {
	sc := callcontext.Scope{Tenant: config.DefaultTenant, Mode: callcontext.Prod}
	start := func(body []byte) func(ctx context.Context) error {
		return func(ctx context.Context) error {
			req, err := callapi.ParseStart(body)
			if err == nil {
				_, err = p.calls.Start(ctx, sc, req, "")
			}
			return err
		}
	}
	end := func(ctx context.Context) error {
		req, err := callapi.ParseEnd(w.endBody(i, startedCall{callID(i), CustomerRef(w.returning(i))}))
		if err == nil {
			_, err = p.calls.End(ctx, sc, req, "")
		}
		return err
	}
	form := w.voiceForm(i)
	voiceStart := callapi.StartRequest{CallID: form.Get("CallSid"), Hints: callapi.Hints{ANI: form.Get("From"), DNIS: benchDNIS},
		Attestation: identity.AttestNone, Channel: "phone"}
	steps := []struct {
		name string
		auth bool
		do   func(ctx context.Context) error
	}{
		{returningName, true, start(w.startBody(i))},
		{newName, true, start(w.newBody(j))},
		{endName, true, end},
		{voiceName, false, func(ctx context.Context) error { _, err := p.calls.Start(ctx, sc, voiceStart, ""); return err }},
	}
	for _, s := range steps {
		wctx, n := redisstore.WithWaveCounter(ctx)
		var err error
		if s.auth {
			_, err = p.keys.Authenticate(wctx, p.key)
		}
		if err == nil {
			err = s.do(wctx)
		}
		if err != nil {
			return fmt.Errorf("bench: count waves of %s: %w", s.name, err)
		}
		p.waves[s.name] += float64(n.N()) / float64(p.n)
	}
	return nil
}
