// Package redistest starts throwaway redis-server processes for the tests of
// one test binary: a single node (Single) and a 3-master Cluster (Cluster),
// each started on first use, on ports the OS picks, and shared by every test
// of the binary. Tests keep apart by giving each store its own key prefix
// (Prefix); nothing is ever flushed.
//
// A test binary that uses it must run its tests through Main in TestMain,
// which stops the servers when the tests end. The servers also die with the
// test binary if it is killed (they get SIGKILL when it exits), so a
// timed-out `go test` leaves nothing behind. The shared servers keep no
// data on disk (--save "" --appendonly no, in a temporary directory); no
// server ever uses port 6379, so the machine's own Redis is never touched.
//
// A test that crashes Redis on purpose gets servers of its own: Durable (a
// single node) and DurableCluster (3 masters) keep their data in an
// append-only file with the --appendfsync policy the test asks for, and
// their Kill (SIGKILL) and Restart (same ports, same directories, so the
// same data and, for the Cluster, the same nodes.conf) act out a crash and
// a recovery. They are stopped, and their directories removed, when the
// test ends.
//
// A missing redis-server or redis-cli fails the test with an install hint; it
// never skips. Several test binaries may run at once (go test ./...): each
// starts its own servers, and a port another process took between the
// choice and the bind is retried with another port.
package redistest

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// installHint is appended to every error about a missing binary.
const installHint = "install it with: apt-get install -y redis-server"

var (
	mu         sync.Mutex
	mainActive bool
	single     *node
	singleErr  error
	cluster    []*node
	clusterErr error
	all        []*node // every node started, for stopAll
	prefixes   atomic.Int64
)

// Main runs the tests of m, stops every server they started and exits with
// m's code. Call it from TestMain:
//
//	func TestMain(m *testing.M) { redistest.Main(m) }
func Main(m *testing.M) {
	mu.Lock()
	mainActive = true
	mu.Unlock()
	code := m.Run()
	stopAll()
	os.Exit(code)
}

// Single returns the address ("127.0.0.1:port") of the test binary's single
// redis-server, starting it on first use. It fails t if the server cannot
// start.
func Single(t testing.TB) string {
	t.Helper()
	mu.Lock()
	defer mu.Unlock()
	mustMain(t)
	if single == nil && singleErr == nil {
		single, singleErr = startNode(false)
	}
	if singleErr != nil {
		t.Fatalf("redistest: start redis-server: %v", singleErr)
	}
	return single.addr
}

// Cluster returns the addresses of the test binary's 3-master Redis Cluster
// (no replicas), starting it on first use and waiting until every node
// reports cluster_state:ok. It fails t if the cluster cannot start.
func Cluster(t testing.TB) []string {
	t.Helper()
	mu.Lock()
	defer mu.Unlock()
	mustMain(t)
	if cluster == nil && clusterErr == nil {
		cluster, clusterErr = startCluster()
	}
	if clusterErr != nil {
		t.Fatalf("redistest: start Redis Cluster: %v", clusterErr)
	}
	addrs := make([]string, len(cluster))
	for i, n := range cluster {
		addrs[i] = n.addr
	}
	return addrs
}

// Prefix returns a key prefix no other caller in this test binary gets, so
// a store opened with it sees an empty database on a shared server.
func Prefix(t testing.TB) string {
	t.Helper()
	return fmt.Sprintf("p%d:", prefixes.Add(1))
}

func mustMain(t testing.TB) {
	t.Helper()
	if !mainActive {
		t.Fatalf("redistest: the test binary must run redistest.Main(m) in TestMain, so its servers are stopped")
	}
}

// startCluster starts three cluster-enabled nodes, joins them with
// redis-cli --cluster create and waits until the cluster is ok. On failure
// it stops the nodes it started.
func startCluster() ([]*node, error) {
	return startClusterWith(config{cluster: true})
}

func createCluster(cli string, nodes []*node) error {
	args := []string{"--cluster", "create"}
	for _, n := range nodes {
		args = append(args, n.addr)
	}
	replicas := "0"
	if len(nodes) == 6 {
		replicas = "1" // three masters, each with a replica
	}
	args = append(args, "--cluster-replicas", replicas, "--cluster-yes")
	out, err := exec.Command(cli, args...).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "All 16384 slots covered") {
		return fmt.Errorf("redis-cli %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return nil
}

// stopAll stops every server this binary started and removes their
// directories.
func stopAll() {
	mu.Lock()
	defer mu.Unlock()
	var errs []error
	for _, n := range all {
		errs = append(errs, n.stop())
	}
	if err := errors.Join(errs...); err != nil {
		fmt.Fprintf(os.Stderr, "redistest: stop servers: %v\n", err)
	}
	all, single, cluster = nil, nil, nil
}
