package redistest

import (
	"fmt"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// failoverWait bounds how long a promotion may take.
const failoverWait = 30 * time.Second

// ReplicatedSentinel is a durable master with one replica and three
// Sentinels watching them (quorum 2, the master down after 1 s without an
// answer), for failover tests: kill the master and the Sentinels promote
// the replica. It is stopped when the test ends (or by Main).
type ReplicatedSentinel struct {
	t                testing.TB
	master, replica  *node
	sentinels        []*node
	killed, promoted bool
}

// DurableSentinel starts a ReplicatedSentinel whose data nodes keep an
// append-only file with --appendfsync fsync, and waits until the replica
// has synced.
func DurableSentinel(t testing.TB, fsync string) *ReplicatedSentinel {
	t.Helper()
	checkFsync(t, fsync)
	mu.Lock()
	defer mu.Unlock()
	mustMain(t)
	r := &ReplicatedSentinel{t: t}
	var started []*node
	fail := func(what string, err error) *ReplicatedSentinel {
		forgetLocked(started...)
		t.Fatalf("redistest: start %s: %v", what, err)
		return nil
	}
	var err error
	if r.master, err = startNodeWith(config{fsync: fsync}); err != nil {
		return fail("the master", err)
	}
	started = append(started, r.master)
	if r.replica, err = startNodeWith(config{fsync: fsync, replica: r.master.addr}); err != nil {
		return fail("the replica", err)
	}
	started = append(started, r.replica)
	if err := waitSynced(r.master.addr, 1); err != nil {
		return fail("replication", err)
	}
	for range 3 {
		s, err := startNodeWith(config{watch: r.master.addr, quorum: 2, downMs: 1000})
		if err != nil {
			return fail("a sentinel", err)
		}
		started = append(started, s)
		r.sentinels = append(r.sentinels, s)
	}
	t.Cleanup(func() {
		if err := forget(started...); err != nil {
			t.Errorf("redistest: stop the replicated Sentinel setup: %v", err)
		}
	})
	return r
}

// SentinelAddrs are the Sentinels' addresses: what STICKYCALLS_REDIS_URL
// names, with STICKYCALLS_REDIS_SENTINEL_MASTER set to SentinelMaster.
func (r *ReplicatedSentinel) SentinelAddrs() []string {
	var out []string
	for _, s := range r.sentinels {
		out = append(out, s.addr)
	}
	return out
}

// CutReplication makes replication lag for real: the replica is paused
// (SIGSTOP) and the master drops its link to it, so what the master takes
// from now on reaches no replica (a paused process's socket would still
// buffer it). ResumeReplica undoes the pause.
func (r *ReplicatedSentinel) CutReplication() {
	r.t.Helper()
	r.signal(syscall.SIGSTOP, r.replica)
	if _, err := command(r.master.addr, "CLIENT", "KILL", "TYPE", "replica"); err != nil {
		r.t.Fatalf("redistest: drop the replica's link: %v", err)
	}
}

// ResumeReplica continues the replica (SIGCONT).
func (r *ReplicatedSentinel) ResumeReplica() { r.signal(syscall.SIGCONT, r.replica) }

// RestartOldMaster starts the killed master again; the Sentinels make it a
// replica of the new one.
func (r *ReplicatedSentinel) RestartOldMaster() {
	r.t.Helper()
	if err := r.master.restart(); err != nil {
		r.t.Fatalf("redistest: restart the old master: %v", err)
	}
}

// KillMaster kills the master (SIGKILL): the Sentinels will promote the
// replica once it answers.
func (r *ReplicatedSentinel) KillMaster() {
	r.t.Helper()
	if err := killNodes(r.master); err != nil {
		r.t.Fatalf("redistest: kill the master: %v", err)
	}
}

// WaitPromoted waits until every Sentinel names the replica as the master,
// and returns how long that took from the call.
func (r *ReplicatedSentinel) WaitPromoted() time.Duration {
	r.t.Helper()
	began := time.Now()
	for {
		agreed := 0
		for _, s := range r.sentinels {
			addr, err := command(s.addr, "SENTINEL", "get-master-addr-by-name", SentinelMaster)
			if err == nil && strings.ReplaceAll(addr, "\n", ":") == r.replica.addr {
				agreed++
			}
		}
		role, _ := command(r.replica.addr, "ROLE")
		if agreed == len(r.sentinels) && strings.HasPrefix(role, "master") {
			return time.Since(began)
		}
		if time.Since(began) > failoverWait {
			r.t.Fatalf("redistest: the replica %s was not promoted within %s (%d of %d sentinels agree; role %q)",
				r.replica.addr, failoverWait, agreed, len(r.sentinels), role)
		}
		time.Sleep(pollEvery)
	}
}

func (r *ReplicatedSentinel) signal(sig syscall.Signal, n *node) {
	r.t.Helper()
	if err := signalNodes(sig, n); err != nil {
		r.t.Fatalf("redistest: signal %v: %v", sig, err)
	}
}

// ReplicatedCluster is a durable Redis Cluster of three masters, each with
// a replica, for failover tests: kill a master and the cluster promotes
// its replica. It is stopped when the test ends (or by Main).
type ReplicatedCluster struct {
	t     testing.TB
	nodes []*node
}

// DurableReplicatedCluster starts a ReplicatedCluster whose nodes keep an
// append-only file with --appendfsync fsync, and waits until every node
// sees six nodes and every slot.
func DurableReplicatedCluster(t testing.TB, fsync string) *ReplicatedCluster {
	t.Helper()
	checkFsync(t, fsync)
	mu.Lock()
	defer mu.Unlock()
	mustMain(t)
	nodes, err := startClusterOf(6, config{cluster: true, fsync: fsync})
	if err != nil {
		t.Fatalf("redistest: start a replicated Redis Cluster: %v", err)
	}
	c := &ReplicatedCluster{t: t, nodes: nodes}
	for _, m := range c.masters() {
		if err := waitSynced(m, 1); err != nil {
			forgetLocked(nodes...)
			t.Fatalf("redistest: replicated Redis Cluster: %v", err)
		}
	}
	t.Cleanup(func() {
		if err := forget(nodes...); err != nil {
			t.Errorf("redistest: stop the replicated Redis Cluster: %v", err)
		}
	})
	return c
}

// Addrs returns every node's address, masters and replicas.
func (c *ReplicatedCluster) Addrs() []string {
	var out []string
	for _, n := range c.nodes {
		out = append(out, n.addr)
	}
	return out
}

// MasterOf returns the address of the master serving key now.
func (c *ReplicatedCluster) MasterOf(key string) string {
	c.t.Helper()
	for _, n := range c.nodes {
		if slot, err := command(n.addr, "CLUSTER", "KEYSLOT", key); err == nil {
			for _, line := range strings.Split(c.clusterNodes(), "\n") {
				if f := strings.Fields(line); len(f) >= 9 && strings.Contains(f[2], "master") && !strings.Contains(f[2], "fail") && ownsSlot(f[8:], slot) {
					return strings.Split(f[1], "@")[0]
				}
			}
		}
	}
	c.t.Fatalf("redistest: no master serves %q", key)
	return ""
}

// ReplicaOf returns the address of the replica of the master at addr.
func (c *ReplicatedCluster) ReplicaOf(master string) string {
	c.t.Helper()
	id := ""
	lines := strings.Split(c.clusterNodes(), "\n")
	for _, line := range lines {
		if f := strings.Fields(line); len(f) >= 2 && strings.Split(f[1], "@")[0] == master {
			id = f[0]
		}
	}
	for _, line := range lines {
		if f := strings.Fields(line); len(f) >= 4 && f[3] == id && id != "" {
			return strings.Split(f[1], "@")[0]
		}
	}
	c.t.Fatalf("redistest: no replica of %s", master)
	return ""
}

// CutReplication pauses the replica at replica (SIGSTOP) and has its
// master drop its link, so what the master takes from now on reaches no
// replica. Resume undoes the pause.
func (c *ReplicatedCluster) CutReplication(master, replica string) {
	c.t.Helper()
	c.signal(syscall.SIGSTOP, replica)
	if _, err := command(master, "CLIENT", "KILL", "TYPE", "replica"); err != nil {
		c.t.Fatalf("redistest: drop %s's replica link: %v", master, err)
	}
}

// Resume continues the paused node at addr (SIGCONT).
func (c *ReplicatedCluster) Resume(addr string) { c.signal(syscall.SIGCONT, addr) }

// Restart starts the killed node at addr again with its data and cluster
// configuration; an old master rejoins as a replica of its successor.
func (c *ReplicatedCluster) Restart(addr string) {
	c.t.Helper()
	if err := c.node(addr).restart(); err != nil {
		c.t.Fatalf("redistest: restart %s: %v", addr, err)
	}
}
func (c *ReplicatedCluster) Kill(addr string) {
	c.t.Helper()
	if err := killNodes(c.node(addr)); err != nil {
		c.t.Fatalf("redistest: kill %s: %v", addr, err)
	}
}

// WaitPromoted waits until the node at addr is a master and the cluster
// serves every slot again, as seen from that node, and returns how long
// that took from the call.
func (c *ReplicatedCluster) WaitPromoted(addr string) time.Duration {
	c.t.Helper()
	began := time.Now()
	for {
		role, _ := command(addr, "ROLE")
		info, _ := command(addr, "CLUSTER", "INFO")
		if strings.HasPrefix(role, "master") && strings.Contains(info, "cluster_state:ok") {
			return time.Since(began)
		}
		if time.Since(began) > failoverWait {
			c.t.Fatalf("redistest: %s was not promoted within %s (role %q)", addr, failoverWait, role)
		}
		time.Sleep(pollEvery)
	}
}

func (c *ReplicatedCluster) signal(sig syscall.Signal, addr string) {
	c.t.Helper()
	if err := signalNodes(sig, c.node(addr)); err != nil {
		c.t.Fatalf("redistest: signal %v to %s: %v", sig, addr, err)
	}
}

func (c *ReplicatedCluster) node(addr string) *node {
	for _, n := range c.nodes {
		if n.addr == addr {
			return n
		}
	}
	c.t.Fatalf("redistest: no node %s", addr)
	return nil
}

// clusterNodes is CLUSTER NODES from the first node that answers.
func (c *ReplicatedCluster) clusterNodes() string {
	for _, n := range c.nodes {
		if out, err := command(n.addr, "CLUSTER", "NODES"); err == nil {
			return out
		}
	}
	return ""
}

// masters lists the addresses of the nodes that are masters.
func (c *ReplicatedCluster) masters() []string {
	var out []string
	for _, n := range c.nodes {
		if role, err := command(n.addr, "ROLE"); err == nil && strings.HasPrefix(role, "master") {
			out = append(out, n.addr)
		}
	}
	return out
}

// ownsSlot reports whether slot is in one of CLUSTER NODES's slot ranges.
func ownsSlot(ranges []string, slot string) bool {
	var s int
	fmt.Sscan(slot, &s)
	for _, r := range ranges {
		var lo, hi int
		if n, _ := fmt.Sscanf(r, "%d-%d", &lo, &hi); n == 2 && lo <= s && s <= hi {
			return true
		}
		if n, _ := fmt.Sscanf(r, "%d", &lo); n == 1 && !strings.Contains(r, "-") && lo == s {
			return true
		}
	}
	return false
}

// waitSynced waits until the master at addr has count replicas online.
func waitSynced(addr string, count int) error {
	deadline := time.Now().Add(readyWait)
	for {
		info, err := command(addr, "INFO", "replication")
		if err == nil && strings.Count(info, "state=online") >= count {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: %d replica(s) not online within %s: %q, %v", addr, count, readyWait, info, err)
		}
		time.Sleep(pollEvery)
	}
}

// forgetLocked is forget for a caller that holds mu.
func forgetLocked(nodes ...*node) {
	for _, n := range nodes {
		n.stop()
	}
	all = slices.DeleteFunc(all, func(n *node) bool { return slices.Contains(nodes, n) })
}
