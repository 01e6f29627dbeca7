package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// wrkConns is the connections wrk keeps open: twice the bench's own
// closed loop, so that a generator short of connections shows.
const wrkConns = 64

// wrkRun is the one-wave floor as wrk measured it, a second opinion on the
// bench's own generator: when the two disagree, the generator, not the
// floor, may be what limits the floor's figure.
type wrkRun struct {
	note string // why wrk did not run, or how it failed; empty when it ran
	res  wrkResult
}

// wrkResult is what wrk printed.
type wrkResult struct {
	requests   int64
	elapsed    time.Duration
	throughput float64       // Requests/sec, every answer counted
	non2xx     int64         // answers that were not 2xx or 3xx
	sockErrs   int64         // connect, read, write errors and timeouts
	p99        time.Duration // from --latency
}

// runWrk drives the floor at url with wrk for d, posting body; the
// returned wrkRun says so when wrk is not on the PATH.
func runWrk(ctx context.Context, dir, url string, body []byte, d time.Duration) wrkRun {
	bin, err := exec.LookPath("wrk")
	if err != nil {
		return wrkRun{note: "wrk is not on the PATH (apt-get install -y wrk), so the floor was measured by the bench's own generator only"}
	}
	script := filepath.Join(dir, "floor.lua")
	// A Lua long string holds the JSON body without escaping; the body
	// never contains "]]".
	lua := fmt.Sprintf("wrk.method = \"POST\"\nwrk.body = [[%s]]\nwrk.headers[\"Content-Type\"] = \"application/json\"\n", body)
	if err := os.WriteFile(script, []byte(lua), 0o600); err != nil {
		return wrkRun{note: fmt.Sprintf("wrk did not run: %v", err)}
	}
	secs := max(int(d.Round(time.Second).Seconds()), 1) // wrk takes whole seconds
	out, err := exec.CommandContext(ctx, bin, "-t2", fmt.Sprintf("-c%d", wrkConns), fmt.Sprintf("-d%ds", secs), "--latency",
		"-s", script, url).CombinedOutput()
	if err != nil {
		return wrkRun{note: fmt.Sprintf("wrk failed: %v: %s", err, strings.TrimSpace(string(out)))}
	}
	res, err := parseWrk(string(out))
	if err != nil {
		return wrkRun{note: fmt.Sprintf("wrk's output did not parse: %v", err)}
	}
	return wrkRun{res: res}
}

// parseWrk reads wrk's summary (wrk 4, run with --latency).
func parseWrk(out string) (wrkResult, error) {
	var res wrkResult
	var sawRate, sawCount bool
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) == 2 && f[0] == "Requests/sec:":
			v, err := strconv.ParseFloat(f[1], 64)
			if err != nil {
				return wrkResult{}, fmt.Errorf("requests/sec %q: %w", f[1], err)
			}
			res.throughput, sawRate = v, true
		case len(f) >= 4 && f[1] == "requests" && f[2] == "in":
			n, err := strconv.ParseInt(f[0], 10, 64)
			if err != nil {
				return wrkResult{}, fmt.Errorf("requests %q: %w", f[0], err)
			}
			d, err := time.ParseDuration(strings.TrimSuffix(f[3], ","))
			if err != nil {
				return wrkResult{}, fmt.Errorf("elapsed %q: %w", f[3], err)
			}
			res.requests, res.elapsed, sawCount = n, d, true
		case len(f) == 2 && f[0] == "99%":
			d, err := time.ParseDuration(f[1])
			if err != nil {
				return wrkResult{}, fmt.Errorf("p99 %q: %w", f[1], err)
			}
			res.p99 = d
		case strings.HasPrefix(strings.TrimSpace(line), "Non-2xx or 3xx responses:"):
			res.non2xx, _ = strconv.ParseInt(f[len(f)-1], 10, 64)
		case len(f) == 10 && f[0] == "Socket" && f[1] == "errors:":
			for _, v := range []string{f[3], f[5], f[7], f[9]} { // connect N, read N, write N, timeout N
				n, _ := strconv.ParseInt(strings.TrimSuffix(v, ","), 10, 64)
				res.sockErrs += n
			}
		}
	}
	if !sawRate || !sawCount {
		return wrkResult{}, errors.New("no Requests/sec or request count line")
	}
	return res, nil
}

// goodThroughput is the rate of 2xx and 3xx answers: wrk's Requests/sec
// counts failures too, which the bench's own generator does not.
func (w wrkResult) goodThroughput() float64 {
	if w.requests == 0 || w.elapsed <= 0 {
		return 0
	}
	return float64(w.requests-w.non2xx) / w.elapsed.Seconds()
}

// summary is the one-wave floor by wrk, for the log.
func (w wrkRun) summary() string {
	if w.note != "" {
		return w.note
	}
	return fmt.Sprintf("%.0f req/s (%d non-2xx, %d socket errors), p99 %s", w.res.goodThroughput(), w.res.non2xx, w.res.sockErrs, ms(w.res.p99))
}
