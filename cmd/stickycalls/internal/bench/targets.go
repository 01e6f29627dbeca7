package bench

import (
	"fmt"
	"strings"
	"time"
)

// The targets of issue 16. What a Redis-backed API can do depends on how
// many ordered round trips to Redis it makes, so each throughput is read
// against the floor making as many (sameWave) and against the one-wave
// floor, the best any API could do.
const (
	sameWaveShare     = 0.80 // returning start, new caller and end, each of the floor with its waves (Redis)
	startOneWaveShare = 0.50 // returning start, of the one-wave floor (Redis)
	endOneWaveShare   = 0.40 // end, of the one-wave floor (Redis)
	boltStartShare    = 0.25 // returning start on bbolt, of the one-wave floor
	p99FloorTimes     = 2    // start p99 at half its maximum, against the same-wave floor's at that rate
	voiceP99          = 10 * time.Millisecond
	voiceCustomers    = 1_000_000 // bbolt's voice target is judged with this many customers stored, or more
	startBytes        = 900       // what a returning start may leave in Redis (used_memory growth per start)
)

// targetRow is one line of the targets table.
type targetRow struct {
	target string // what the issue asks
	floor  string // the floor the row's ratios use
	figs   []string
	oks    []bool // one per judged figure; none means not measured
	// reported: the issue asks for the figures, not for the target to be
	// met (the Cluster's rows); the verdict is shown in brackets.
	reported bool
}

func (t targetRow) result() string {
	if t.reported && len(t.oks) > 0 {
		return "reported (" + strings.Trim(verdict(t.oks...), "*") + ")"
	}
	return verdict(t.oks...)
}

// targets judges the results against issue 16's targets.
func (r *results) targets() []targetRow {
	sameWave := fmt.Sprintf("the workload's own: as many ordered EVALSHAs as its waves per request (measured, rounded up, at most %d)", maxFloorWaves)
	oneWave := "one wave (one EVALSHA)"
	redis := func(store, title string) []targetRow {
		return []targetRow{
			r.shareTarget(store, returningName, title+": `/v1/calls/start`, returning caller", sameWave, sameWaveShare, true),
			r.shareTarget(store, newName, title+": `/v1/calls/start`, new caller", sameWave, sameWaveShare, true),
			r.shareTarget(store, endName, title+": `/v1/calls/end`", sameWave, sameWaveShare, true),
			r.shareTarget(store, returningName, title+": `/v1/calls/start`, returning caller", oneWave, startOneWaveShare, false),
			r.shareTarget(store, endName, title+": `/v1/calls/end`", oneWave, endOneWaveShare, false),
			r.p99Target(store, title, sameWave),
			r.memoryTarget(store, title),
		}
	}
	rows := append(redis("redis", "Redis (one node)"),
		r.shareTarget("bbolt", returningName, "bbolt: `/v1/calls/start`, returning caller", oneWave+" on Redis", boltStartShare, false),
		r.voiceTarget())
	if len(r.runsWhere(func(store string) bool { return store == "cluster" })) > 0 {
		// The same table on the Cluster, reported: its floors are the
		// single node's.
		for _, t := range redis("cluster", fmt.Sprintf("Redis Cluster (%d masters)", clusterMasters)) {
			t.reported = true
			if t.floor != "none" {
				t.floor += ", on the single node"
			}
			rows = append(rows, t)
		}
	}
	return rows
}

// floorWith is the floor making waves round trips, if it was measured.
func (r *results) floorWith(waves int) (floorRun, bool) {
	if waves < 1 || waves > len(r.floors) {
		return floorRun{}, false
	}
	return r.floors[waves-1], true
}

// floorFor is the floor a workload of sr is read against: the one with
// its waves when sameWave, else the one-wave floor.
func (r *results) floorFor(sr storeRun, name string, sameWave bool) (floorRun, bool) {
	if !sameWave {
		return r.floorWith(1)
	}
	return r.floorWith(floorWaves(sr.waves[name]))
}

// shareTarget is "name's maximum throughput on store ≥ want of the
// floor's", at every size measured on store.
func (r *results) shareTarget(store, name, title, floor string, want float64, sameWave bool) targetRow {
	t := targetRow{target: fmt.Sprintf("%s max throughput ≥ %.0f %% of the floor's", title, 100*want), floor: floor}
	for _, sr := range r.runs {
		w, ok := sr.row(name)
		f, fok := r.floorFor(sr, name, sameWave)
		if sr.store != store || !ok || !fok {
			continue
		}
		share := ratio(w.closed.throughput(), f.closed.throughput())
		fig := fmt.Sprintf("%s: %s req/s = %.0f %% of %s", size(sr.customers), num(w.closed.throughput()), 100*share, num(f.closed.throughput()))
		if sameWave {
			fig += fmt.Sprintf(" (%d waves)", f.waves)
		}
		t.figs, t.oks = append(t.figs, fig), append(t.oks, share >= want)
	}
	return t
}

// p99Target is "a returning start's p99 at half its own maximum ≤ 2× the
// p99 of the floor with its waves at the same rate". The rate is fixed at
// the first size, so that sizes compare at one rate; it is lower when
// half the one-wave floor's maximum is.
func (r *results) p99Target(store, title, floor string) targetRow {
	t := targetRow{target: fmt.Sprintf("%s: `/v1/calls/start`, returning caller: p99 at half its own max rate ≤ %d× the floor's p99 at that rate", title, p99FloorTimes),
		floor: floor}
	for _, sr := range r.runs {
		w, ok := sr.row(returningName)
		f, fok := r.floorFor(sr, returningName, true)
		if sr.store != store || !ok || !fok {
			continue
		}
		p99, rate := w.open.quantile(0.99), w.open.rate
		fp, measured := f.atRate(sr, rate)
		if !measured {
			t.figs, t.oks = append(t.figs, fmt.Sprintf("%s: p99 %s at %s/s; the %d-wave floor was not measured at that rate", size(sr.customers),
				ms(p99), num(rate), f.waves)), append(t.oks, false)
			continue
		}
		floorP99 := fp.p.quantile(0.99)
		t.figs = append(t.figs, fmt.Sprintf("%s: p99 %s at %s/s (max %s/s) vs %s (%d waves) = %s%s", size(sr.customers), ms(p99), num(rate),
			num(w.closed.throughput()), ms(floorP99), f.waves, times(p99, floorP99), lostNote(w.open)))
		t.oks = append(t.oks, p99 != lost && floorP99 != lost && p99 <= p99FloorTimes*floorP99)
	}
	return t
}

// memoryTarget is "a returning start leaves at most startBytes in Redis",
// read as used_memory's growth per start over its closed-loop phase, the
// key tables charged by the key (grownBy).
func (r *results) memoryTarget(store, title string) targetRow {
	t := targetRow{target: fmt.Sprintf("%s: `/v1/calls/start`, returning caller leaves ≤ %d B in Redis (used_memory growth per start, closed loop, key tables charged by the key; used_memory's own growth in brackets)", title, startBytes),
		floor: "none"}
	for _, sr := range r.runs {
		w, ok := sr.row(returningName)
		if sr.store != store || !ok || w.closed.ok == 0 {
			continue
		}
		t.figs = append(t.figs, fmt.Sprintf("%s: %s B (%s B)", size(sr.customers), num(w.use.grew), num(w.use.grewRaw)))
		t.oks = append(t.oks, w.use.grew <= startBytes)
	}
	return t
}

// voiceTarget is "/voice/incoming's p99 ≤ 10 ms at 500 calls/s on bbolt
// with 1M customers"; smaller sizes are shown, not judged.
func (r *results) voiceTarget() targetRow {
	t := targetRow{target: fmt.Sprintf("bbolt: `/voice/incoming` with a Lookup cache hit: p99 ≤ %s at 500 calls/s with %s customers (smaller sizes shown, not judged)",
		ms(voiceP99), size(voiceCustomers)), floor: "none"}
	for _, sr := range r.runs {
		w, ok := sr.row(voiceName)
		if sr.store != "bbolt" || !ok {
			continue
		}
		p99 := w.open.quantile(0.99)
		t.figs = append(t.figs, fmt.Sprintf("%s: p99 %s at %s/s%s", size(sr.customers), ms(p99), num(w.open.rate), lostNote(w.open)))
		if sr.customers >= voiceCustomers {
			t.oks = append(t.oks, p99 != lost && w.open.rate >= 500 && p99 <= voiceP99)
		}
	}
	return t
}

func (r *results) writeTargets(b *strings.Builder) {
	b.WriteString("### Targets\n\n")
	r.writeFloors(b)
	b.WriteString("Targets of issue 16. The floor column says which floor a row's ratios use; every floor ran on the same Redis in " +
		"this run (the single node). The Cluster's rows are reported, as the issue asks, with the verdict they would get in " +
		"brackets.\n\n")
	b.WriteString("| target | floor | figures (by customers stored) | result |\n|---|---|---|---|\n")
	for _, t := range r.targets() {
		figs := strings.Join(t.figs, "; ")
		if figs == "" {
			figs = "–"
		}
		fmt.Fprintf(b, "| %s | %s | %s | %s |\n", t.target, t.floor, figs, t.result())
	}
	b.WriteString("\n")
}

// writeFloors describes the floors and wrk's view of the one-wave floor.
func (r *results) writeFloors(b *strings.Builder) {
	one, ok := r.floorWith(1)
	if !ok {
		return
	}
	var parts []string
	for _, f := range r.floors {
		part := fmt.Sprintf("%d wave%s: %s req/s maximum, p99 %s at %s/s (half of it)", f.waves, plural(f.waves), num(f.closed.throughput()),
			ms(f.open.quantile(0.99)), num(f.open.rate))
		if f.waves > 1 {
			part += fmt.Sprintf(", %.0f %% of one wave", 100*ratio(f.closed.throughput(), one.closed.throughput()))
		}
		parts = append(parts, part)
	}
	fmt.Fprintf(b, "Floors, by ordered round trips to Redis per request (the same EVALSHA repeated, each waiting for the last): %s.\n\n",
		strings.Join(parts, "; "))
	if r.wrk.note != "" {
		fmt.Fprintf(b, "%s.\n\n", r.wrk.note)
		return
	}
	fmt.Fprintf(b, "wrk (%d connections, 2 threads, %s) measured the one-wave floor at %s req/s (p99 %s; %d non-2xx, %d socket errors); "+
		"the bench's own generator (%d connections) measured %s req/s, %.0f %% of wrk's figure.\n\n", wrkConns, r.wrk.res.elapsed.Round(10*time.Millisecond),
		num(r.wrk.res.goodThroughput()), ms(r.wrk.res.p99), r.wrk.res.non2xx, r.wrk.res.sockErrs, r.plan.conns, num(one.closed.throughput()),
		100*ratio(one.closed.throughput(), r.wrk.res.goodThroughput()))
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// ratio is a/b, 0 when b is.
func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}
