package bench

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"math"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"
)

// results is everything one bench run measured.
type results struct {
	plan    benchPlan
	machine machine
	began   time.Time
	took    time.Duration
	floors  []floorRun // making 1, 2, 3 ordered round trips
	wrk     wrkRun     // the one-wave floor by wrk
	runs    []storeRun
	// floorPeakRSS is the floor server's peak RSS (the service's is per
	// storeRun).
	floorPeakRSS int64
	profiles     []profileResult
	profileDir   string
}

// machine is where the bench ran.
type machine struct {
	cpus                        int
	model, goVersion, redis, os string
	memory                      int64
	load                        string        // /proc/loadavg's 1-, 5- and 15-minute averages when the bench began
	firstTouch                  time.Duration // a first write to a fresh page, per 4 KiB page
}

func machineInfo(redisVersion string) machine {
	m := machine{cpus: runtime.NumCPU(), goVersion: runtime.Version(), redis: redisVersion, os: runtime.GOOS, firstTouch: firstTouch()}
	if raw, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		m.model = strings.TrimSpace(infoField(strings.ReplaceAll(string(raw), "\t", ""), "model name"))
	}
	if raw, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.os = "Linux " + strings.TrimSpace(string(raw))
	}
	if raw, err := os.ReadFile("/proc/loadavg"); err == nil {
		if f := strings.Fields(string(raw)); len(f) >= 3 {
			m.load = strings.Join(f[:3], " ")
		}
	}
	if raw, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb int64
		fmt.Sscanf(strings.TrimSpace(infoField(string(raw), "MemTotal")), "%d", &kb)
		m.memory = kb << 10
	}
	return m
}

// Markers around the part of the report file the bench writes.
const (
	reportBegin = "<!-- bench:begin (written by stickycalls bench --out; edit outside the markers) -->"
	reportEnd   = "<!-- bench:end -->"
)

// writeReport puts md between the markers of the file at path, keeping
// what is around them; a file without markers gets them appended.
func writeReport(path, md string) error {
	old, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if !strings.HasSuffix(md, "\n") {
		md += "\n"
	}
	section := reportBegin + "\n" + md + reportEnd + "\n"
	before, rest, found := bytes.Cut(old, []byte(reportBegin))
	_, after, closed := bytes.Cut(rest, []byte(reportEnd))
	after = bytes.TrimPrefix(bytes.TrimPrefix(after, []byte("\r")), []byte("\n")) // the marker's own line end, if any
	switch {
	case len(old) == 0:
		old = []byte("# Performance\n\n" + section)
	case found && closed:
		// A new slice: appending to before would write over after, which
		// shares old's array.
		old = slices.Concat(before, []byte(section), after)
	case found:
		return fmt.Errorf("bench: %s has %q without %q", path, reportBegin, reportEnd)
	default:
		old = append(old, "\n"+section...)
	}
	return os.WriteFile(path, old, 0o644)
}

// markdown renders the results.
func (r *results) markdown(command string) string {
	var b strings.Builder
	m := r.machine
	fmt.Fprintf(&b, "Command: `%s` (run %s, took %s).\n\n", strings.TrimSpace(command), r.began.UTC().Format("2006-01-02 15:04 MST"), r.took.Round(time.Second))
	fmt.Fprintf(&b, "Machine: %d CPUs (`nproc`), %s, %.1f GiB RAM, %s, %s, redis-server %s; load average %s when the bench "+
		"began. The load generator, the server and redis-server share these CPUs.\n\n", m.cpus, m.model, float64(m.memory)/(1<<30),
		m.os, m.goVersion, m.redis, m.load)
	p := r.plan
	fmt.Fprintf(&b, "Each phase lasts %s after a %s warm-up. Closed loop: %d connections, each sending its next request when the last "+
		"is answered (maximum throughput). Open loop: requests sent at a fixed rate whatever the answers, each timed from the "+
		"moment it was due, so queueing is counted (no coordinated omission); at most %d outstanding, and a request unanswered "+
		"%s after the phase counts as lost. Open-loop rate: half the one-wave floor's maximum, or half the workload's own maximum on "+
		"that store at the first size if lower; voice at %.0f/s. The returning start's open loop runs %d times at each size and the "+
		"run with the median p99 is shown. Each floor's open loop runs at half its own maximum and, after each run of the service on "+
		"Redis, at the rate of each of its workloads with its waves, on the Redis as that run left it, so that p99s compare at one "+
		"rate and one size.\n\n",
		p.phase, p.warmup, p.conns, p.inflight, p.grace, p.voiceRate, max(p.repeats, 1))
	if slices.Contains(p.stores, "cluster") {
		fmt.Fprintf(&b, "Store \"cluster\": a Redis Cluster of %d masters without replicas, started for its runs on the same machine "+
			"(its redis-server CPU is the sum over the masters, as are its commands and used_memory); the floors ran on the single "+
			"node, so the Cluster's ratios say what spreading the keys over slots costs, not what a cluster of machines would do.\n\n",
			clusterMasters)
	}
	r.writeTargets(&b)
	r.writeLatency(&b)
	r.writeResources(&b)
	r.writeScale(&b)
	r.writeSlow(&b)
	r.writeSeeding(&b)
	r.writeProfiles(&b)
	return b.String()
}

// redisRuns are the runs on the single Redis node.
func (r *results) redisRuns() []storeRun {
	return r.runsWhere(func(store string) bool { return store == "redis" })
}

// redisBackedRuns are the runs on Redis, one node or Cluster.
func (r *results) redisBackedRuns() []storeRun {
	return r.runsWhere(func(store string) bool { return store != "bbolt" })
}

func (r *results) runsWhere(keep func(store string) bool) []storeRun {
	var out []storeRun
	for _, sr := range r.runs {
		if keep(sr.store) {
			out = append(out, sr)
		}
	}
	return out
}

func (sr storeRun) row(name string) (workloadRun, bool) {
	for _, w := range sr.rows {
		if w.name == name {
			return w, true
		}
	}
	return workloadRun{}, false
}

// verdict is "met" when every check holds.
func verdict(ok ...bool) string {
	for _, o := range ok {
		if !o {
			return "**missed**"
		}
	}
	if len(ok) == 0 {
		return "not measured"
	}
	return "met"
}

func (r *results) writeLatency(b *strings.Builder) {
	one, _ := r.floorWith(1)
	b.WriteString("### Throughput and latency\n\n")
	b.WriteString("× 1 wave: maximum throughput against the one-wave floor's; × same waves: against the floor with the workload's " +
		"waves (Redis only); p99 × floor's: against the p99 of the floor with the workload's waves at the same rate. Other load: the " +
		"CPU, in cores, that processes other than the bench, the server and redis-server used during the open-loop phase (other jobs " +
		"on this machine); it disturbs the latencies it comes with.\n\n")
	b.WriteString("| workload | store | customers | max req/s (closed) | × 1 wave | × same waves | open-loop rate | p50 | p90 | p99 | max | p99 × floor's | failed / lost | other load |\n")
	b.WriteString("|---|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n")
	line := func(name, store, customers string, closed phase, same *floorRun, sr storeRun, open ratePhase) {
		max, oneShare, sameShare, p99Ratio := "–", "–", "–", "–"
		if closed.elapsed > 0 {
			max, oneShare = num(closed.throughput()), pct(ratio(closed.throughput(), one.closed.throughput()))
			if same != nil {
				sameShare = pct(ratio(closed.throughput(), same.closed.throughput()))
			}
		}
		if same != nil {
			if fp, ok := same.atRate(sr, open.p.rate); ok {
				p99Ratio = times(open.p.quantile(0.99), fp.p.quantile(0.99))
			}
		}
		fmt.Fprintf(b, "| %s | %s | %s | %s | %s | %s | %s/s | %s | %s | %s | %s | %s | %d / %d | %.2f |\n", name, store, customers, max, oneShare,
			sameShare, num(open.p.rate), ms(open.p.quantile(0.5)), ms(open.p.quantile(0.9)), ms(open.p.quantile(0.99)), ms(open.p.quantile(1)),
			p99Ratio, closed.failed+open.p.failed, open.p.lost, open.load)
	}
	for _, f := range r.floors {
		line(floorName(f.waves), "redis", "–", f.closed, nil, storeRun{}, ratePhase{f.open, f.openLoad})
		keys := slices.SortedFunc(maps.Keys(f.at), func(a, b floorKey) int {
			return cmp.Or(cmp.Compare(r.storeOrder(a.store), r.storeOrder(b.store)), cmp.Compare(a.customers, b.customers), cmp.Compare(a.rate, b.rate))
		})
		for _, k := range keys {
			line(fmt.Sprintf("%s at the rate of %s, after %s", floorName(f.waves), strings.Join(r.workloadsAt(f.waves, k), ", "), k.store), "redis",
				size(k.customers), phase{}, nil, storeRun{}, f.at[k])
		}
	}
	for _, sr := range r.runs {
		for _, w := range sr.rows {
			var same *floorRun
			if f, ok := r.floorFor(sr, w.name, true); ok && sr.store != "bbolt" {
				same = &f
			}
			line(w.name, sr.store, size(sr.customers), w.closed, same, sr, ratePhase{w.open, w.openLoad})
		}
	}
	b.WriteString("\n")
}

func (r *results) writeResources(b *strings.Builder) {
	b.WriteString("### Cost per request (closed loop, at maximum throughput)\n\n")
	b.WriteString("Server and redis-server CPU time from `/proc/PID/stat`, divided by the requests answered; Redis commands from " +
		"`INFO commandstats` deltas (commands that scripts run count too; EVALSHA alone in brackets); waves (Redis round trips, " +
		"a pipeline counting once) from redisstore's go-redis hook, counted on requests made through the service as `serve` " +
		"wires it (a `/v1` request's key check included); store growth: Redis's `used_memory` (INFO memory) or the bbolt " +
		"file's size, after the phase less before it, divided by the requests answered (bbolt grows its file in steps, so a " +
		"phase may see none or a whole step; Redis's figure includes its allocator's slack, and charges its key tables by " +
		"the key, at their cost per key after the phase (MEMORY STATS' `overhead.hashtable.*` over `keys.count`): a table " +
		"doubles at once when its keys pass a power of two, and a phase that crossed one was charged the whole doubling, " +
		"about 80 B per start at 10k customers; `used_memory`'s own growth is in brackets); RSS of the server at the end " +
		"of the phase; other load as above, during the closed-loop phase.\n\n")
	b.WriteString("| workload | store | customers | server CPU/req | redis-server CPU/req | load generator CPU/req | Redis commands/req | waves/req | store growth/req | server RSS | other load |\n")
	b.WriteString("|---|---|---|--:|--:|--:|--:|--:|--:|--:|--:|\n")
	line := func(name, store, customers string, u cost, waves string) {
		cmds, redisCPU := "–", "–"
		if store != "bbolt" {
			cmds, redisCPU = fmt.Sprintf("%.1f (%.1f)", u.cmds, u.evalsha), us(u.redisCPU)
		}
		fmt.Fprintf(b, "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %.2f |\n", name, store, customers, us(u.cpu), redisCPU, us(u.benchCPU),
			cmds, waves, growth(store, u), mib(u.rss), u.others)
	}
	for _, f := range r.floors {
		line(floorName(f.waves), "redis", "–", f.use, fmt.Sprint(f.waves))
	}
	for _, sr := range r.runs {
		for _, w := range sr.rows {
			waves := "–"
			if n, ok := sr.waves[w.name]; ok {
				waves = fmt.Sprintf("%.1f", n)
			}
			line(w.name, sr.store, size(sr.customers), w.use, waves)
		}
	}
	b.WriteString("\nRedis commands per request, by command (the largest run on Redis):\n\n")
	for _, f := range r.floors {
		fmt.Fprintf(b, "- %s: %s\n", floorName(f.waves), byCommand(f.use))
	}
	if runs := r.redisRuns(); len(runs) > 0 {
		for _, w := range runs[len(runs)-1].rows {
			fmt.Fprintf(b, "- %s: %s\n", w.name, byCommand(w.use))
		}
	}
	b.WriteString("\n")
}

// workloadsAt names the workloads of k's run read against the floor with
// waves whose open loop ran at k's rate.
func (r *results) workloadsAt(waves int, k floorKey) []string {
	var names []string
	for _, sr := range r.runs {
		if sr.store != k.store || sr.customers != k.customers {
			continue
		}
		for _, w := range sr.rows {
			if floorWaves(sr.waves[w.name]) == waves && w.open.rate == k.rate && !slices.Contains(names, w.name) {
				names = append(names, w.name)
			}
		}
	}
	return names
}

// storeOrder is a store's place in the plan's order, for sorting.
func (r *results) storeOrder(store string) int { return slices.Index(r.plan.stores, store) }

// growth formats a store's growth per request: "file +312 B", or
// "used_memory +312 B (+498 B)" with used_memory's own growth.
func growth(store string, u cost) string {
	if store == "bbolt" {
		return "file " + signedBytes(u.grew)
	}
	return fmt.Sprintf("used_memory %s (%s)", signedBytes(u.grew), signedBytes(u.grewRaw))
}

func signedBytes(n float64) string {
	if math.Abs(n) >= 1<<10 {
		return fmt.Sprintf("%+.1f KiB", n/(1<<10))
	}
	return fmt.Sprintf("%+.0f B", n)
}

// pct formats a share: "56 %".
func pct(share float64) string { return fmt.Sprintf("%.0f %%", 100*share) }

// byCommand lists a phase's Redis commands per request, most first.
func byCommand(u cost) string {
	names := slices.Collect(maps.Keys(u.byCommand))
	slices.SortFunc(names, func(a, b string) int {
		if c := cmp.Compare(u.byCommand[b], u.byCommand[a]); c != 0 {
			return c
		}
		return strings.Compare(a, b)
	})
	var parts []string
	for _, n := range names {
		if u.byCommand[n] >= 0.05 {
			parts = append(parts, fmt.Sprintf("%s %.1f", strings.ToUpper(n), u.byCommand[n]))
		}
	}
	return strings.Join(parts, ", ")
}

func (r *results) writeScale(b *strings.Builder) {
	if len(r.plan.customers) < 2 {
		return
	}
	b.WriteString("### Latency by customers stored (open loop, same rate at every size)\n\n")
	b.WriteString("| workload | store | customers | rate | p50 | p99 | p50 vs smallest | p99 vs smallest | other load |\n|---|---|---|--:|--:|--:|--:|--:|--:|\n")
	first := map[string]workloadRun{}
	for _, sr := range r.runs {
		for _, w := range sr.rows {
			base, seen := first[sr.store+w.name]
			if !seen {
				first[sr.store+w.name], base = w, w
			}
			fmt.Fprintf(b, "| %s | %s | %s | %s/s | %s | %s | %s | %s | %.2f |\n", w.name, sr.store, size(sr.customers), num(w.open.rate),
				ms(w.open.quantile(0.5)), ms(w.open.quantile(0.99)), times(w.open.quantile(0.5), base.open.quantile(0.5)),
				times(w.open.quantile(0.99), base.open.quantile(0.99)), w.openLoad)
		}
	}
	b.WriteString("\n")
}

// writeSlow lists what took Redis itself 5 ms or more while the service
// ran on it: a tail with nothing here was not Redis's own work.
func (r *results) writeSlow(b *strings.Builder) {
	runs := r.redisBackedRuns()
	if len(runs) == 0 {
		return
	}
	b.WriteString("### Redis's own slow moments\n\nWhat took redis-server itself 5 ms or more during the service's phases on it (its " +
		"latency monitor's events, `LATENCY LATEST`, and its slow log's commands, `SLOWLOG GET`, over every node; seeding " +
		"excluded): a latency tail with nothing here was not Redis's own work.\n\n")
	for _, sr := range runs {
		var faults []string
		for _, w := range sr.rows {
			faults = append(faults, fmt.Sprintf("%s %.2f", w.name, w.use.redisFaults))
		}
		fmt.Fprintf(b, "- %s, %s customers: %s. Page faults of redis-server per request (closed loop): %s.\n", sr.store, size(sr.customers),
			sr.slow, strings.Join(faults, ", "))
	}
	fmt.Fprintf(b, "\nA first write to a fresh 4 KiB page of memory costs %s on this machine (64 MiB touched once by the bench; a few "+
		"hundred nanoseconds on bare metal): a command that makes Redis take new pages waits that long for each.\n\n",
		r.machine.firstTouch.Round(10*time.Nanosecond))
}

func (r *results) writeSeeding(b *strings.Builder) {
	b.WriteString("### Seeding and memory\n\nThe server's peak RSS (VmHWM) over every phase.\n\n")
	b.WriteString("| store | customers | added | seed time | customers/s | server peak RSS |\n|---|---|--:|--:|--:|--:|\n")
	for _, sr := range r.runs {
		fmt.Fprintf(b, "| %s | %s | %s | %s | %s | %s |\n", sr.store, size(sr.customers), num(float64(sr.seeded)),
			sr.seedTime.Round(time.Millisecond), num(float64(sr.seeded)/sr.seedTime.Seconds()), mib(sr.peakRSS))
	}
	fmt.Fprintf(b, "\nFloor server peak RSS (all its floors, up for the whole run): %s.\n\n", mib(r.floorPeakRSS))
}

func (r *results) writeProfiles(b *strings.Builder) {
	if len(r.profiles) == 0 {
		return
	}
	b.WriteString("### Profiles\n\nCPU profiles of the service during the closed-loop phases at the largest size: `go tool pprof -top`, " +
		"then `go tool pprof -top -cum` cut down to the service's own frames and the costliest library ones.\n\n")
	for _, p := range r.profiles {
		fmt.Fprintf(b, "%s:\n\n", p.name)
		switch {
		case p.err != nil:
			fmt.Fprintf(b, "no profile: %v\n\n", p.err)
		case p.top == "":
			fmt.Fprintf(b, "saved at %s (go is not on PATH for `go tool pprof -top`)\n\n", p.path)
		default:
			fmt.Fprintf(b, "```text\n%s\n```\n\n```text\n%s\n```\n\n", dropHeader(p.top), p.cum)
		}
	}
}

// dropHeader leaves out pprof's File, Build ID and Time lines, which
// change with every run.
func dropHeader(top string) string {
	var keep []string
	for _, line := range strings.Split(top, "\n") {
		if strings.HasPrefix(line, "File:") || strings.HasPrefix(line, "Build ID:") || strings.HasPrefix(line, "Time:") {
			continue
		}
		keep = append(keep, line)
	}
	return strings.Join(keep, "\n")
}

// ms formats a latency.
func ms(d time.Duration) string {
	switch {
	case d == lost:
		return "lost"
	case d < 10*time.Millisecond:
		return fmt.Sprintf("%.2f ms", float64(d)/1e6)
	case d < time.Second:
		return fmt.Sprintf("%.1f ms", float64(d)/1e6)
	}
	return fmt.Sprintf("%.2f s", d.Seconds())
}

// us formats a CPU time per request.
func us(d time.Duration) string { return fmt.Sprintf("%.0f µs", float64(d)/1e3) }

func mib(n int64) string { return fmt.Sprintf("%.0f MiB", float64(n)/(1<<20)) }

// num formats a count or rate with thousands separators.
func num(f float64) string {
	s := fmt.Sprintf("%.0f", f)
	for i := len(s) - 3; i > 0 && s[i-1] != '-'; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// size names a store size: 10k, 1M.
func size(n int) string {
	switch {
	case n >= 1_000_000 && n%1_000_000 == 0:
		return fmt.Sprintf("%dM", n/1_000_000)
	case n >= 1000 && n%1000 == 0:
		return fmt.Sprintf("%dk", n/1000)
	}
	return fmt.Sprint(n)
}

// times is a/b as "1.3×".
func times(a, b time.Duration) string {
	if a == lost || b == lost || b == 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f×", float64(a)/float64(b))
}

// durations lists latencies: "4.1 ms, 9.0 ms".
func durations(ds []time.Duration) string {
	parts := make([]string, len(ds))
	for i, d := range ds {
		parts[i] = ms(d)
	}
	return strings.Join(parts, ", ")
}

func lostNote(p phase) string {
	if p.lost == 0 {
		return ""
	}
	return fmt.Sprintf(" (%d of %d lost)", p.lost, p.sent)
}
