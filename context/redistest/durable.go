package redistest

import (
	"errors"
	"fmt"
	"net"
	"os/exec"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Server is a single redis-server of one test's own that keeps its data in
// an append-only file, so that the test can kill it and start it again: a
// crash and a recovery of the production store. It is stopped, and its
// directory removed, when the test ends (or by Main).
//
// Kill, Restart, Pause and Resume fail the test given to Durable, so call
// them from that test's goroutine.
type Server struct {
	t    testing.TB
	node *node
}

// ClusterServer is a 3-master Redis Cluster (no replicas) of one test's
// own, each node keeping its data in an append-only file and its cluster
// configuration (nodes.conf) in its own directory, so that the whole
// cluster can be killed and started again. It is stopped when the test
// ends (or by Main).
//
// Kill, Restart, Pause and Resume fail the test given to DurableCluster,
// so call them from that test's goroutine.
type ClusterServer struct {
	t     testing.TB
	nodes []*node
}

// SentinelMaster is the name under which Sentinel's sentinel watches its master.
const SentinelMaster = "stickycalls"

// Sentinel starts, for t, a master redis-server and one Sentinel watching
// it under the name SentinelMaster, and returns the Sentinel's address:
// what STICKYCALLS_REDIS_URL names with STICKYCALLS_REDIS_SENTINEL_MASTER.
func Sentinel(t testing.TB) string {
	t.Helper()
	mu.Lock()
	defer mu.Unlock()
	mustMain(t)
	master, err := startNodeWith(config{})
	if err != nil {
		t.Fatalf("redistest: start the master: %v", err)
	}
	sentinel, err := startNodeWith(config{watch: master.addr})
	if err != nil {
		forgetLocked(master)
		t.Fatalf("redistest: start the sentinel: %v", err)
	}
	t.Cleanup(func() {
		if err := forget(sentinel, master); err != nil {
			t.Errorf("redistest: stop the sentinel and its master: %v", err)
		}
	})
	return sentinel.addr
}

// fsyncPolicies are the values of redis-server's --appendfsync.
var fsyncPolicies = []string{"always", "everysec", "no"}

// Durable starts a dedicated single redis-server for t with
// --appendonly yes --appendfsync fsync ("always", "everysec" or "no") in a
// directory of its own that Restart keeps. It fails t if the server cannot
// start.
func Durable(t testing.TB, fsync string) *Server {
	t.Helper()
	checkFsync(t, fsync)
	mu.Lock()
	defer mu.Unlock()
	mustMain(t)
	n, err := startNodeWith(config{fsync: fsync})
	if err != nil {
		t.Fatalf("redistest: start durable redis-server: %v", err)
	}
	t.Cleanup(func() {
		if err := forget(n); err != nil {
			t.Errorf("redistest: stop durable redis-server: %v", err)
		}
	})
	return &Server{t: t, node: n}
}

// DurableCluster starts a dedicated 3-master Redis Cluster for t, every
// node with --appendonly yes --appendfsync fsync in a directory of its own
// (data and nodes.conf) that Restart keeps, and waits until every node
// reports cluster_state:ok. It fails t if the cluster cannot start.
func DurableCluster(t testing.TB, fsync string) *ClusterServer {
	t.Helper()
	checkFsync(t, fsync)
	mu.Lock()
	defer mu.Unlock()
	mustMain(t)
	nodes, err := startClusterWith(config{cluster: true, fsync: fsync})
	if err != nil {
		t.Fatalf("redistest: start durable Redis Cluster: %v", err)
	}
	t.Cleanup(func() {
		if err := forget(nodes...); err != nil {
			t.Errorf("redistest: stop durable Redis Cluster: %v", err)
		}
	})
	return &ClusterServer{t: t, nodes: nodes}
}

func checkFsync(t testing.TB, fsync string) {
	t.Helper()
	if !slices.Contains(fsyncPolicies, fsync) {
		t.Fatalf("redistest: appendfsync %q: want one of %v", fsync, fsyncPolicies)
	}
}

// forget stops nodes and drops them from the ones Main stops.
func forget(nodes ...*node) error {
	var errs []error
	for _, n := range nodes {
		errs = append(errs, n.stop())
	}
	mu.Lock()
	all = slices.DeleteFunc(all, func(n *node) bool { return slices.Contains(nodes, n) })
	mu.Unlock()
	return errors.Join(errs...)
}

// Addr returns the server's address, "127.0.0.1:port". It does not change
// across restarts.
func (s *Server) Addr() string { return s.node.addr }

// Kill sends SIGKILL to the server (and any child it forked) and waits
// until it has exited: a crash. Killing a server that is down does
// nothing.
func (s *Server) Kill() {
	s.t.Helper()
	if err := killNodes(s.node); err != nil {
		s.t.Fatalf("redistest: kill: %v", err)
	}
}

// Restart starts the server again on the same port with the same directory
// (so with the data it had acknowledged) and waits until it has loaded the
// data and answers. A server still running is killed first.
func (s *Server) Restart() {
	s.t.Helper()
	if err := killNodes(s.node); err != nil {
		s.t.Fatalf("redistest: restart: %v", err)
	}
	if err := s.node.restart(); err != nil {
		s.t.Fatalf("redistest: restart: %v", err)
	}
}

// Pause stops the server (SIGSTOP) without closing its connections: a hung
// Redis, which clients notice only by their timeouts. Resume undoes it.
func (s *Server) Pause() {
	s.t.Helper()
	if err := signalNodes(syscall.SIGSTOP, s.node); err != nil {
		s.t.Fatalf("redistest: pause: %v", err)
	}
}

// Resume continues a paused server (SIGCONT).
func (s *Server) Resume() {
	s.t.Helper()
	if err := signalNodes(syscall.SIGCONT, s.node); err != nil {
		s.t.Fatalf("redistest: resume: %v", err)
	}
}

// Addrs returns the nodes' addresses. They do not change across restarts.
func (c *ClusterServer) Addrs() []string {
	addrs := make([]string, len(c.nodes))
	for i, n := range c.nodes {
		addrs[i] = n.addr
	}
	return addrs
}

// Kill sends SIGKILL to every node at once and waits until all have
// exited: the whole cluster crashes.
func (c *ClusterServer) Kill() {
	c.t.Helper()
	if err := killNodes(c.nodes...); err != nil {
		c.t.Fatalf("redistest: kill cluster: %v", err)
	}
}

// Restart starts every node again on its port with its directory (data
// and nodes.conf), and waits until each has loaded its data and reports
// cluster_state:ok with all 16384 slots. Nodes still running are killed
// first.
func (c *ClusterServer) Restart() {
	c.t.Helper()
	if err := killNodes(c.nodes...); err != nil {
		c.t.Fatalf("redistest: restart cluster: %v", err)
	}
	errs := make([]error, len(c.nodes))
	var wg sync.WaitGroup
	for i, n := range c.nodes {
		wg.Go(func() { errs[i] = n.restart() })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		c.t.Fatalf("redistest: restart cluster: %v", err)
	}
	for _, n := range c.nodes {
		if err := waitClusterOK(n); err != nil {
			c.t.Fatalf("redistest: restart cluster: %v", err)
		}
	}
}

// Pause stops every node (SIGSTOP): a hung cluster. Resume undoes it.
func (c *ClusterServer) Pause() {
	c.t.Helper()
	if err := signalNodes(syscall.SIGSTOP, c.nodes...); err != nil {
		c.t.Fatalf("redistest: pause cluster: %v", err)
	}
}

// Resume continues every paused node (SIGCONT).
func (c *ClusterServer) Resume() {
	c.t.Helper()
	if err := signalNodes(syscall.SIGCONT, c.nodes...); err != nil {
		c.t.Fatalf("redistest: resume cluster: %v", err)
	}
}

// signalNodes sends sig to the process group of every node; a node that is
// down is an error.
func signalNodes(sig syscall.Signal, nodes ...*node) error {
	var errs []error
	for _, n := range nodes {
		n.mu.Lock()
		if n.proc == nil {
			errs = append(errs, fmt.Errorf("%s is not running", n.addr))
		} else if err := syscall.Kill(-n.proc.cmd.Process.Pid, sig); err != nil {
			errs = append(errs, fmt.Errorf("%s: %v: %w", n.addr, sig, err))
		}
		n.mu.Unlock()
	}
	return errors.Join(errs...)
}

// killNodes sends SIGKILL to every running node first, then waits for
// each, so that no node outlives another by more than the signal.
func killNodes(nodes ...*node) error {
	for _, n := range nodes {
		n.mu.Lock()
		defer n.mu.Unlock()
	}
	for _, n := range nodes {
		if n.proc != nil {
			n.proc.signalKill()
		}
	}
	var errs []error
	for _, n := range nodes {
		if n.proc == nil {
			continue
		}
		if err := n.proc.waitGone(); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", n.addr, err))
			continue
		}
		n.proc = nil
	}
	return errors.Join(errs...)
}

// restart starts a node that is down again on its port and directory. A
// port another process took meanwhile is tried again for a while; the
// port cannot change, since clients and the cluster configuration name it.
func (n *node) restart() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.stopped {
		return fmt.Errorf("%s: the server was stopped at the end of its test", n.addr)
	}
	if n.proc != nil {
		return fmt.Errorf("%s is running", n.addr)
	}
	var errs []error
	for range startAttempts {
		inUse, err := n.run()
		if err == nil {
			return nil
		}
		errs = append(errs, err)
		if !inUse {
			break
		}
		waitPortFree(n.addr)
	}
	return errors.Join(errs...)
}

// waitPortFree waits a little for addr to be free to listen on.
func waitPortFree(addr string) {
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		l, err := net.Listen("tcp", addr)
		if err == nil {
			l.Close()
			return
		}
		time.Sleep(pollEvery)
	}
}

// startClusterWith starts three cluster-enabled nodes, joins them and
// waits until the cluster is ok; on failure it stops what it started. The
// caller holds mu.
func startClusterWith(cfg config) ([]*node, error) {
	return startClusterOf(3, cfg)
}

// startClusterOf starts n cluster-enabled nodes (3, or 6 for three masters
// with a replica each), as startClusterWith does.
func startClusterOf(count int, cfg config) ([]*node, error) {
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		return nil, fmt.Errorf("redis-cli not found (%v); %s", err, installHint)
	}
	var nodes []*node
	fail := func(err error) ([]*node, error) {
		for _, n := range nodes {
			n.stop()
		}
		all = slices.DeleteFunc(all, func(n *node) bool { return slices.Contains(nodes, n) })
		return nil, err
	}
	for range count {
		n, err := startNodeWith(cfg)
		if err != nil {
			return fail(err)
		}
		nodes = append(nodes, n)
	}
	if err := createCluster(cli, nodes); err != nil {
		return fail(err)
	}
	for _, n := range nodes {
		if err := waitClusterOf(n, count); err != nil {
			return fail(err)
		}
	}
	return nodes, nil
}
