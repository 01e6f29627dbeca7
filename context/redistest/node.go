package redistest

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/stickycalls/stickycalls/context/childproc"
)

// Timings of starting and stopping a server.
const (
	startAttempts = 5
	readyWait     = 15 * time.Second
	clusterWait   = 30 * time.Second
	stopWait      = 5 * time.Second
	pollEvery     = 50 * time.Millisecond
)

// node is one redis-server on a fixed port and directory. A throwaway node
// runs once; a durable one (see Durable) may be killed and started again on
// the same port and directory.
type node struct {
	addr string
	dir  string
	bin  string
	args []string

	mu      sync.Mutex // guards proc, stopped and err
	proc    *proc      // nil while the server is down
	stopped bool
	err     error
}

// proc is one run of a node's redis-server.
type proc struct {
	cmd    *exec.Cmd
	exited chan struct{} // closed when the process has exited
}

// config is what a node is started with.
type config struct {
	cluster bool
	fsync   string // "" keeps no data (--appendonly no); else the AOF's --appendfsync
	watch   string // a sentinel watching the master at this address, as SentinelMaster
	quorum  int    // of a sentinel: how many sentinels must agree the master is down (0: 1)
	downMs  int    // of a sentinel: how long the master may not answer before it is down (0: 2000 ms)
	replica string // a replica of the master at this address
}

// startNode starts a redis-server on a free port, retrying with another
// port when the chosen one was taken before the server could bind it. The
// caller holds mu.
func startNode(clusterEnabled bool) (*node, error) {
	return startNodeWith(config{cluster: clusterEnabled})
}

func startNodeWith(cfg config) (*node, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, fmt.Errorf("redis-server not found (%v); %s", err, installHint)
	}
	var errs []error
	for range startAttempts {
		n, retry, err := tryNode(bin, cfg)
		if err == nil {
			all = append(all, n)
			return n, nil
		}
		errs = append(errs, err)
		if !retry {
			break
		}
	}
	return nil, errors.Join(errs...)
}

// tryNode makes one attempt; retry reports whether another port may work.
func tryNode(bin string, cfg config) (n *node, retry bool, err error) {
	port, err := freePort(cfg.cluster)
	if err != nil {
		return nil, true, err
	}
	dir, err := os.MkdirTemp("", "redistest-")
	if err != nil {
		return nil, false, err
	}
	args := []string{
		"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--protected-mode", "yes",
		"--save", "", "--dir", dir, "--daemonize", "no", "--logfile", filepath.Join(dir, "redis.log"),
	}
	if cfg.watch != "" {
		if args, err = sentinelArgs(dir, port, cfg); err != nil {
			return nil, false, err
		}
	} else if cfg.fsync == "" {
		args = append(args, "--appendonly", "no")
	} else {
		args = append(args, "--appendonly", "yes", "--appendfsync", cfg.fsync)
	}
	if cfg.replica != "" {
		host, port, _ := net.SplitHostPort(cfg.replica)
		args = append(args, "--replicaof", host, port)
	}
	if cfg.cluster {
		args = append(args, "--cluster-enabled", "yes", "--cluster-config-file", filepath.Join(dir, "nodes.conf"),
			"--cluster-node-timeout", "2000")
	}
	n = &node{addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), dir: dir, bin: bin, args: args}
	inUse, err := n.run()
	if err != nil {
		n.stop()
		return nil, inUse, err
	}
	return n, false, nil
}

// run starts the node's server and waits until it answers. inUse reports
// that the port was taken. The caller holds n.mu or owns n alone.
func (n *node) run() (inUse bool, err error) {
	logStart := n.logSize()
	p := &proc{cmd: exec.Command(n.bin, n.args...), exited: make(chan struct{})}
	if err := spawn(p.cmd); err != nil {
		return false, fmt.Errorf("start %s: %w", n.bin, err)
	}
	go func() {
		p.cmd.Wait()
		close(p.exited)
	}()
	if err := p.waitReady(n.addr); err != nil {
		log := n.logFrom(logStart)
		p.kill()
		return strings.Contains(log, "Address already in use"), fmt.Errorf("%s on %s: %w\n%s", n.bin, n.addr, err, tail(log))
	}
	n.proc = p
	return false, nil
}

// freePort returns a port the OS had free. For a cluster node the bus port
// (port+10000) must be free too.
func freePort(clusterEnabled bool) (int, error) {
	for range 20 {
		port, err := listenFree(0)
		if err != nil {
			return 0, err
		}
		if port == 6379 || (clusterEnabled && port+10000 > 65535) {
			continue
		}
		if !clusterEnabled {
			return port, nil
		}
		if _, err := listenFree(port + 10000); err == nil {
			return port, nil
		}
	}
	return 0, errors.New("no free port (with a free port+10000) found")
}

// listenFree listens on port (0: any) of 127.0.0.1, closes, and returns the
// port.
func listenFree(port int) (int, error) {
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

var (
	spawnerOnce sync.Once
	spawner     *childproc.Spawner
)

// spawn starts cmd so that it gets SIGKILL when this process dies. The
// spawner's thread is never closed: it must outlive every child, and the
// test binary's servers live as long as it does.
func spawn(cmd *exec.Cmd) error {
	spawnerOnce.Do(func() { spawner = childproc.NewSpawner() })
	return spawner.Start(cmd)
}

// waitReady waits until the server answers PING (not while it loads its
// data), or fails when it exits or takes too long.
func (p *proc) waitReady(addr string) error {
	deadline := time.Now().Add(readyWait)
	for {
		reply, err := command(addr, "PING")
		if err == nil && reply == "PONG" {
			return nil
		}
		select {
		case <-p.exited:
			return fmt.Errorf("exited before answering: %v", p.cmd.ProcessState)
		case <-time.After(pollEvery):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no answer to PING within %s (last: %q, %v)", readyWait, reply, err)
		}
	}
}

// waitClusterOK waits until the node sees the whole cluster of three
// nodes and every slot.
func waitClusterOK(n *node) error { return waitClusterOf(n, 3) }

// waitClusterOf waits until the node sees a cluster of count nodes and
// every slot.
func waitClusterOf(n *node, count int) error {
	deadline := time.Now().Add(clusterWait)
	for {
		info, err := command(n.addr, "CLUSTER", "INFO")
		if err == nil && strings.Contains(info, "cluster_state:ok") &&
			strings.Contains(info, fmt.Sprintf("cluster_known_nodes:%d", count)) && strings.Contains(info, "cluster_slots_ok:16384") {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("node %s not ok within %s: %q, %v", n.addr, clusterWait, info, err)
		}
		time.Sleep(pollEvery)
	}
}

// stop terminates the server (SIGTERM, then SIGKILL) and removes its
// directory. It is safe to call more than once; a stopped node does not
// start again.
func (n *node) stop() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.stopped {
		return n.err
	}
	n.stopped = true
	if p := n.proc; p != nil {
		n.proc = nil
		p.cmd.Process.Signal(syscall.SIGTERM)
		syscall.Kill(-p.cmd.Process.Pid, syscall.SIGCONT) // a paused server must run to stop
		select {
		case <-p.exited:
		case <-time.After(stopWait):
			p.kill()
			n.err = fmt.Errorf("%s did not stop on SIGTERM within %s; killed", n.addr, stopWait)
		}
	}
	os.RemoveAll(n.dir)
	return n.err
}

// signalKill sends SIGKILL to the server's process group: the server and
// any child it forked (an AOF rewrite or a save).
func (p *proc) signalKill() {
	if err := syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL); err != nil {
		p.cmd.Process.Kill()
	}
}

// kill sends SIGKILL to the process group and waits until the server has
// exited and no other live process is left in its group.
func (p *proc) kill() error {
	p.signalKill()
	return p.waitGone()
}

func (p *proc) waitGone() error {
	select {
	case <-p.exited:
	case <-time.After(stopWait):
		return fmt.Errorf("redis-server %d did not exit on SIGKILL within %s", p.cmd.Process.Pid, stopWait)
	}
	deadline := time.Now().Add(stopWait)
	for groupAlive(p.cmd.Process.Pid) {
		if time.Now().After(deadline) {
			return fmt.Errorf("process group %d still has live processes %s after SIGKILL", p.cmd.Process.Pid, stopWait)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return nil
}

// groupAlive reports whether a process other than a zombie is in process
// group pgid. A child the server forked is re-parented when the server
// dies, and its zombie is not ours to reap, so zombies do not count.
func groupAlive(pgid int) bool {
	stats, err := filepath.Glob("/proc/[0-9]*/stat")
	if err != nil || len(stats) == 0 {
		return syscall.Kill(-pgid, 0) == nil
	}
	for _, f := range stats {
		b, err := os.ReadFile(f)
		if err != nil {
			continue // gone meanwhile
		}
		// pid (comm) state ppid pgrp ...; comm may hold spaces and parentheses.
		i := strings.LastIndexByte(string(b), ')')
		if i < 0 {
			continue
		}
		fields := strings.Fields(string(b[i+1:]))
		if len(fields) < 3 || fields[0] == "Z" || fields[0] == "X" {
			continue
		}
		if g, err := strconv.Atoi(fields[2]); err == nil && g == pgid {
			return true
		}
	}
	return false
}

// logSize is the current length of the server's log.
func (n *node) logSize() int64 {
	fi, err := os.Stat(filepath.Join(n.dir, "redis.log"))
	if err != nil {
		return 0
	}
	return fi.Size()
}

// logFrom returns what the server logged from offset on.
func (n *node) logFrom(offset int64) string {
	b, _ := os.ReadFile(filepath.Join(n.dir, "redis.log"))
	if offset > int64(len(b)) {
		offset = 0
	}
	return string(b[offset:])
}

// tail returns the end of a log, for error messages.
func tail(log string) string {
	if len(log) > 2000 {
		log = log[len(log)-2000:]
	}
	return log
}

// command sends one command over a fresh connection and returns a simple
// or bulk string reply.
func command(addr string, args ...string) (string, error) {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	req := fmt.Sprintf("*%d\r\n", len(args))
	for _, a := range args {
		req += fmt.Sprintf("$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := c.Write([]byte(req)); err != nil {
		return "", err
	}
	return readReply(bufio.NewReader(c))
}

func readReply(r *bufio.Reader) (string, error) {
	line, err := r.ReadString('\n')
	if err != nil {
		return "", err
	}
	line = strings.TrimRight(line, "\r\n")
	switch {
	case strings.HasPrefix(line, "+"):
		return line[1:], nil
	case strings.HasPrefix(line, "-"):
		return "", errors.New(line[1:])
	case strings.HasPrefix(line, "$"):
		size, err := strconv.Atoi(line[1:])
		if err != nil || size < 0 {
			return "", fmt.Errorf("bad bulk reply %q", line)
		}
		buf := make([]byte, size+2)
		if _, err := io.ReadFull(r, buf); err != nil {
			return "", err
		}
		return string(buf[:size]), nil
	case strings.HasPrefix(line, ":"):
		return line[1:], nil
	case strings.HasPrefix(line, "*"):
		n, err := strconv.Atoi(line[1:])
		if err != nil {
			return "", fmt.Errorf("bad array reply %q", line)
		}
		elems := make([]string, 0, max(n, 0))
		for range n {
			e, err := readReply(r)
			if err != nil {
				return "", err
			}
			elems = append(elems, e)
		}
		return strings.Join(elems, "\n"), nil
	}
	return "", fmt.Errorf("unexpected reply %q", line)
}

// sentinelArgs are the arguments of a sentinel watching master. A sentinel
// needs a configuration file it can rewrite.
func sentinelArgs(dir string, port int, cfg config) ([]string, error) {
	host, mport, err := net.SplitHostPort(cfg.watch)
	if err != nil {
		return nil, err
	}
	quorum, downMs := max(cfg.quorum, 1), cfg.downMs
	if downMs == 0 {
		downMs = 2000
	}
	conf := filepath.Join(dir, "sentinel.conf")
	body := fmt.Sprintf("sentinel monitor %s %s %s %d\nsentinel down-after-milliseconds %s %d\nsentinel failover-timeout %s 10000\n",
		SentinelMaster, host, mport, quorum, SentinelMaster, downMs, SentinelMaster)
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		return nil, err
	}
	return []string{conf, "--sentinel", "--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--dir", dir, "--daemonize", "no", "--logfile", filepath.Join(dir, "redis.log")}, nil
}
