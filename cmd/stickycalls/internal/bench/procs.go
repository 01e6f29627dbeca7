package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/stickycalls/stickycalls/cmd/stickycalls/internal/service"
	"github.com/stickycalls/stickycalls/context/childproc"
)

// child is a running server under measurement: the floor or the service.
type child struct {
	pid  int
	stop func() error
}

// launcher starts a server of role ("floor" or "server") with env and
// returns once it answers on its health URL.
type launcher func(ctx context.Context, role string, env map[string]string, health string) (*child, error)

// tailBuffer keeps the last bytes written to it, for error messages.
type tailBuffer struct {
	mu sync.Mutex
	b  []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > 8<<10 {
		t.b = t.b[len(t.b)-8<<10:]
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}

// processLauncher runs each server as a child process of this binary
// ("stickycalls bench --role ROLE"), so that its CPU time and memory are
// its own.
func processLauncher(sp *childproc.Spawner) (launcher, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("bench: find own binary: %w", err)
	}
	return func(ctx context.Context, role string, env map[string]string, health string) (*child, error) {
		cmd := exec.Command(exe, "bench", "--role", role)
		for k, v := range env {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
		errs := &tailBuffer{}
		cmd.Stderr = errs // stdout (a log line per request) goes to /dev/null
		if err := sp.Start(cmd); err != nil {
			return nil, fmt.Errorf("bench: start %s: %w", role, err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		c := &child{pid: cmd.Process.Pid, stop: func() error {
			cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-exited:
			case <-time.After(20 * time.Second):
				cmd.Process.Kill()
				<-exited
			}
			return nil
		}}
		if err := waitHealthy(ctx, health, exited); err != nil {
			c.stop()
			return nil, fmt.Errorf("bench: %s did not come up: %w\n%s", role, err, errs.String())
		}
		return c, nil
	}, nil
}

// inProcessLauncher runs each server in this process (for tests, where
// the binary is the test binary); CPU and memory are then this process's.
func inProcessLauncher(ctx context.Context, role string, env map[string]string, health string) (*child, error) {
	ctx, cancel := context.WithCancel(ctx)
	exited := make(chan error, 1)
	getenv := func(k string) string { return env[k] }
	go func() {
		if role == "floor" {
			exited <- floor(ctx, getenv)
			return
		}
		exited <- service.Serve(ctx, getenv, io.Discard)
	}()
	c := &child{pid: os.Getpid(), stop: func() error { cancel(); return <-exited }}
	if err := waitHealthy(ctx, health, exited); err != nil {
		c.stop()
		return nil, fmt.Errorf("bench: %s did not come up: %w", role, err)
	}
	return c, nil
}

// waitHealthy polls url until it answers 200, the process exits or 60
// seconds pass.
func waitHealthy(ctx context.Context, url string, exited <-chan error) error {
	deadline := time.Now().Add(time.Minute)
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case err := <-exited:
			return fmt.Errorf("exited: %v", err)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no answer from %s: %v", url, err)
		}
	}
}

// freeAddr returns "127.0.0.1:port" of a port the OS had free, never 6379.
func freeAddr() (string, error) {
	for range 10 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return "", err
		}
		addr := ln.Addr().String()
		ln.Close()
		if !strings.HasSuffix(addr, ":6379") {
			return addr, nil
		}
	}
	return "", errors.New("bench: no free port")
}

// redisServer is the bench's own redis-server.
type redisServer struct {
	addr    string
	pid     int
	version string
	rdb     *redis.Client // for INFO
	stop    func()
}

// startRedis starts redis-server on a free port with nothing kept on disk;
// a cluster node when cluster is set.
func startRedis(ctx context.Context, sp *childproc.Spawner, dir string, cluster bool) (*redisServer, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, errors.New("bench: redis-server is not on PATH; install it with: apt-get install -y redis-server")
	}
	var errs []error
	for range 3 {
		r, err := tryRedis(ctx, sp, bin, dir, cluster)
		if err == nil {
			return r, nil
		}
		errs = append(errs, err)
	}
	return nil, errors.Join(errs...)
}

func tryRedis(ctx context.Context, sp *childproc.Spawner, bin, dir string, cluster bool) (*redisServer, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	_, port, _ := net.SplitHostPort(addr)
	args := []string{"--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--dir", dir, "--daemonize", "no", "--logfile", filepath.Join(dir, "redis-"+port+".log"),
		// Redis's own record of what took it 5 ms or more (see slowEvents).
		"--latency-monitor-threshold", "5", "--slowlog-log-slower-than", "5000", "--slowlog-max-len", "1024"}
	if cluster {
		if n, _ := strconv.Atoi(port); n+10000 > 65535 { // the cluster bus listens on port+10000
			return nil, fmt.Errorf("bench: port %s leaves no room for its cluster bus port", port)
		}
		args = append(args, "--cluster-enabled", "yes", "--cluster-config-file", filepath.Join(dir, "nodes-"+port+".conf"),
			"--cluster-node-timeout", "5000")
	}
	cmd := exec.Command(bin, args...)
	if err := sp.Start(cmd); err != nil {
		return nil, fmt.Errorf("bench: start redis-server: %w", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	r := &redisServer{addr: addr, pid: cmd.Process.Pid, rdb: redis.NewClient(&redis.Options{Addr: addr})}
	r.stop = func() {
		r.rdb.Close()
		cmd.Process.Kill()
		<-exited
	}
	for start := time.Now(); ; {
		err := r.rdb.Ping(ctx).Err()
		if err == nil {
			break
		}
		select {
		case <-exited:
			log, _ := os.ReadFile(filepath.Join(dir, "redis-"+port+".log"))
			r.stop()
			return nil, fmt.Errorf("bench: redis-server on %s exited: %s", addr, bytes.TrimSpace(log))
		case <-time.After(20 * time.Millisecond):
		}
		if time.Since(start) > 15*time.Second {
			r.stop()
			return nil, fmt.Errorf("bench: redis-server on %s does not answer: %w", addr, err)
		}
	}
	info, _ := r.rdb.Info(ctx, "server").Result()
	r.version = infoField(info, "redis_version")
	return r, nil
}

// redisNodes is a Redis the service runs on: the bench's single node, or
// the masters of the Cluster the "cluster" store runs on. What is measured
// of it is the sum over its nodes.
type redisNodes []*redisServer

// url is the service's STICKYCALLS_REDIS_URL for the nodes: several URLs
// make a Cluster.
func (ns redisNodes) url() string {
	urls := make([]string, len(ns))
	for i, n := range ns {
		urls[i] = "redis://" + n.addr + "/0"
	}
	return strings.Join(urls, ",")
}

func (ns redisNodes) cpu() time.Duration {
	var t time.Duration
	for _, n := range ns {
		t += cpuTime(n.pid)
	}
	return t
}

func (ns redisNodes) pageFaults() int64 {
	var n int64
	for _, node := range ns {
		n += pageFaults(node.pid)
	}
	return n
}

func (ns redisNodes) commandStats(ctx context.Context) (map[string]int64, error) {
	sum := map[string]int64{}
	for _, n := range ns {
		stats, err := n.commandStats(ctx)
		if err != nil {
			return nil, err
		}
		for name, calls := range stats {
			sum[name] += calls
		}
	}
	return sum, nil
}

func (ns redisNodes) usedMemory(ctx context.Context) storeSize {
	var sum storeSize
	for _, n := range ns {
		s := n.usedMemory(ctx)
		sum.bytes, sum.tables, sum.keys = sum.bytes+s.bytes, sum.tables+s.tables, sum.keys+s.keys
	}
	return sum
}

func (ns redisNodes) stop() {
	for _, n := range ns {
		n.stop()
	}
}

// slowEvents says what took Redis itself 5 ms or more since the last call
// (the latency monitor's events and the slow log's commands, over every
// node), and resets both: "none" when nothing did.
func (ns redisNodes) slowEvents(ctx context.Context) string {
	events := map[string]time.Duration{} // name → worst
	counts := map[string]int{}
	for _, n := range ns {
		latest, _ := n.rdb.Do(ctx, "LATENCY", "LATEST").Slice()
		for _, e := range latest {
			f, ok := e.([]any)
			if len(f) < 4 || !ok {
				continue
			}
			name, _ := f[0].(string)
			worst, _ := f[3].(int64)
			events["latency monitor: "+name] = max(events["latency monitor: "+name], time.Duration(worst)*time.Millisecond)
		}
		logs, _ := n.rdb.SlowLogGet(ctx, 1024).Result()
		for _, l := range logs {
			name := "slow command"
			if len(l.Args) > 0 {
				name += ": " + strings.ToUpper(l.Args[0])
			}
			events[name] = max(events[name], l.Duration)
			counts[name]++
		}
		n.rdb.Do(ctx, "LATENCY", "RESET")
		n.rdb.SlowLogReset(ctx)
	}
	if len(events) == 0 {
		return "none"
	}
	var parts []string
	for _, name := range slices.Sorted(maps.Keys(events)) {
		label := name
		if n := counts[name]; n > 0 { // the slow log counts; the latency monitor keeps each event's worst only
			label = fmt.Sprintf("%s ×%d", name, n)
		}
		parts = append(parts, fmt.Sprintf("%s (worst %s)", label, events[name].Round(100*time.Microsecond)))
	}
	return strings.Join(parts, "; ")
}

// clusterSlots is how many hash slots a Redis Cluster has.
const clusterSlots = 16384

// startCluster starts a Cluster of masters masters (no replicas), each
// with an equal share of the slots, and waits until every node says the
// cluster is ok.
func startCluster(ctx context.Context, sp *childproc.Spawner, dir string, masters int) (redisNodes, error) {
	var ns redisNodes
	fail := func(err error) (redisNodes, error) {
		ns.stop()
		return nil, fmt.Errorf("bench: start a Redis Cluster: %w", err)
	}
	for range masters {
		n, err := startRedis(ctx, sp, dir, true)
		if err != nil {
			return fail(err)
		}
		ns = append(ns, n)
	}
	for i, n := range ns {
		from, to := i*clusterSlots/masters, (i+1)*clusterSlots/masters-1
		if err := n.rdb.ClusterAddSlotsRange(ctx, from, to).Err(); err != nil {
			return fail(err)
		}
		if i > 0 {
			host, port, _ := net.SplitHostPort(n.addr)
			if err := ns[0].rdb.ClusterMeet(ctx, host, port).Err(); err != nil {
				return fail(err)
			}
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for _, n := range ns {
		for {
			info, err := n.rdb.ClusterInfo(ctx).Result()
			if err == nil && infoField(info, "cluster_state") == "ok" && infoField(info, "cluster_known_nodes") == strconv.Itoa(masters) {
				break
			}
			if time.Now().After(deadline) {
				return fail(fmt.Errorf("%s is not ok after 30 s: %v %s", n.addr, err, info))
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return ns, nil
}

// commandStats returns the calls of each command since the server
// started, from INFO commandstats; commands that scripts run count too.
func (r *redisServer) commandStats(ctx context.Context) (map[string]int64, error) {
	info, err := r.rdb.Info(ctx, "commandstats").Result()
	if err != nil {
		return nil, err
	}
	out := map[string]int64{}
	for _, line := range strings.Split(info, "\n") {
		name, rest, ok := strings.Cut(strings.TrimSpace(line), ":")
		name, isCmd := strings.CutPrefix(name, "cmdstat_")
		if !ok || !isCmd {
			continue
		}
		calls, _, _ := strings.Cut(strings.TrimPrefix(rest, "calls="), ",")
		out[name], _ = strconv.ParseInt(calls, 10, 64)
	}
	return out, nil
}

// usedMemory is Redis's used_memory (INFO memory) with its key tables'
// part and its keys (MEMORY STATS); zero if it does not answer.
func (r *redisServer) usedMemory(ctx context.Context) storeSize {
	info, err := r.rdb.Info(ctx, "memory").Result()
	if err != nil {
		return storeSize{}
	}
	var s storeSize
	s.bytes, _ = strconv.ParseInt(strings.TrimSpace(infoField(info, "used_memory")), 10, 64)
	stats, err := r.rdb.Do(ctx, "MEMORY", "STATS").Result()
	if err != nil {
		return s
	}
	for name, v := range pairsOf(stats) {
		switch {
		case name == "keys.count":
			s.keys, _ = v.(int64)
		case strings.HasPrefix(name, "db."):
			for f, n := range pairsOf(v) {
				if n, ok := n.(int64); ok && strings.HasPrefix(f, "overhead.hashtable.") {
					s.tables += n
				}
			}
		}
	}
	return s
}

// pairsOf is a reply's name, value pairs: a map (RESP3) or a flat list.
func pairsOf(reply any) map[string]any {
	out := map[string]any{}
	switch v := reply.(type) {
	case map[any]any:
		for k, val := range v {
			if name, ok := k.(string); ok {
				out[name] = val
			}
		}
	case []any:
		for i := 0; i+1 < len(v); i += 2 {
			if name, ok := v[i].(string); ok {
				out[name] = v[i+1]
			}
		}
	}
	return out
}

func infoField(info, name string) string {
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), name+":"); ok {
			return v
		}
	}
	return ""
}

// cpuTime returns the user plus system CPU time of a process so far.
func cpuTime(pid int) time.Duration {
	f := procStat(pid)
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	const clockTicks = 100 // USER_HZ on Linux
	return time.Duration(utime+stime) * time.Second / clockTicks
}

// pageFaults returns the page faults of a process so far, minor and major.
func pageFaults(pid int) int64 {
	f := procStat(pid)
	if len(f) < 10 {
		return 0
	}
	minor, _ := strconv.ParseInt(f[7], 10, 64)
	major, _ := strconv.ParseInt(f[9], 10, 64)
	return minor + major
}

// procStat returns the fields of /proc/PID/stat after the command name,
// from the state on; nil if the process is gone.
func procStat(pid int) []string {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil
	}
	// The command name may hold spaces; the fields after it do not.
	_, rest, _ := bytes.Cut(raw, []byte(") "))
	return strings.Fields(string(rest))
}

// firstTouch is what a process pays for the first write to a fresh page of
// memory here, per 4 KiB page: a few hundred nanoseconds on bare metal,
// far more in some virtual machines, where every page a growing Redis
// takes is a stall of its one thread.
func firstTouch() time.Duration {
	const size, page = 64 << 20, 4096
	b, err := syscall.Mmap(-1, 0, size, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		return 0
	}
	defer syscall.Munmap(b)
	began := time.Now()
	for i := 0; i < size; i += page {
		b[i] = 1
	}
	return time.Since(began) / (size / page)
}

// busyTime returns the CPU time every process on the machine has used
// since boot (all CPUs, idle and I/O wait left out).
func busyTime() time.Duration {
	raw, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(raw), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return 0
	}
	var ticks int64
	for i, v := range f[1:9] { // user nice system idle iowait irq softirq steal
		if n, err := strconv.ParseInt(v, 10, 64); err == nil && i != 3 && i != 4 {
			ticks += n
		}
	}
	return time.Duration(ticks) * time.Second / 100
}

// memory returns a process's resident set size now and at its peak.
func memory(pid int) (rss, peak int64) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0
	}
	for _, line := range strings.Split(string(raw), "\n") {
		name, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		switch name {
		case "VmRSS":
			rss = kb << 10
		case "VmHWM":
			peak = kb << 10
		}
	}
	return rss, peak
}
