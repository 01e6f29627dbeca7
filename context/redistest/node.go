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
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Timings of starting and stopping a server.
const (
	startAttempts = 5
	readyWait     = 15 * time.Second
	clusterWait   = 30 * time.Second
	stopWait      = 5 * time.Second
	pollEvery     = 50 * time.Millisecond
)

// node is one running redis-server.
type node struct {
	addr   string
	dir    string
	cmd    *exec.Cmd
	exited chan struct{} // closed when the process has exited
	once   sync.Once
	err    error
}

// startNode starts a redis-server on a free port, retrying with another
// port when the chosen one was taken before the server could bind it.
func startNode(clusterEnabled bool) (*node, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, fmt.Errorf("redis-server not found (%v); %s", err, installHint)
	}
	var errs []error
	for range startAttempts {
		n, retry, err := tryNode(bin, clusterEnabled)
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
func tryNode(bin string, clusterEnabled bool) (n *node, retry bool, err error) {
	port, err := freePort(clusterEnabled)
	if err != nil {
		return nil, true, err
	}
	dir, err := os.MkdirTemp("", "redistest-")
	if err != nil {
		return nil, false, err
	}
	args := []string{
		"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--protected-mode", "yes",
		"--save", "", "--appendonly", "no", "--dir", dir, "--daemonize", "no",
		"--logfile", filepath.Join(dir, "redis.log"),
	}
	if clusterEnabled {
		args = append(args, "--cluster-enabled", "yes", "--cluster-config-file", filepath.Join(dir, "nodes.conf"),
			"--cluster-node-timeout", "2000")
	}
	n = &node{addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), dir: dir, cmd: exec.Command(bin, args...), exited: make(chan struct{})}
	if err := spawn(n.cmd); err != nil {
		os.RemoveAll(dir)
		return nil, false, fmt.Errorf("start %s: %w", bin, err)
	}
	go func() {
		n.cmd.Wait()
		close(n.exited)
	}()
	if err := n.waitReady(); err != nil {
		log := n.logTail()
		n.stop()
		return nil, strings.Contains(log, "Address already in use"), fmt.Errorf("%s on %s: %w\n%s", bin, n.addr, err, log)
	}
	return n, false, nil
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

var spawns = make(chan spawnReq)

type spawnReq struct {
	cmd  *exec.Cmd
	done chan error
}

var spawnerOnce sync.Once

// spawn starts cmd so that it gets SIGKILL when this process dies. The
// parent-death signal fires when the thread that started the child exits,
// so every child is started from one goroutine locked to its thread for
// the life of the process.
func spawn(cmd *exec.Cmd) error {
	spawnerOnce.Do(func() {
		go func() {
			runtime.LockOSThread() // never unlocked: the thread must outlive every child
			for r := range spawns {
				r.done <- r.cmd.Start()
			}
		}()
	})
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	done := make(chan error, 1)
	spawns <- spawnReq{cmd, done}
	return <-done
}

// waitReady waits until the server answers PING, or fails when it exits or
// takes too long.
func (n *node) waitReady() error {
	deadline := time.Now().Add(readyWait)
	for {
		reply, err := command(n.addr, "PING")
		if err == nil && reply == "PONG" {
			return nil
		}
		select {
		case <-n.exited:
			return fmt.Errorf("exited before answering: %v", n.cmd.ProcessState)
		case <-time.After(pollEvery):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no answer to PING within %s (last: %q, %v)", readyWait, reply, err)
		}
	}
}

// waitClusterOK waits until the node sees the whole cluster and every slot.
func waitClusterOK(n *node) error {
	deadline := time.Now().Add(clusterWait)
	for {
		info, err := command(n.addr, "CLUSTER", "INFO")
		if err == nil && strings.Contains(info, "cluster_state:ok") &&
			strings.Contains(info, "cluster_known_nodes:3") && strings.Contains(info, "cluster_slots_ok:16384") {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("node %s not ok within %s: %q, %v", n.addr, clusterWait, info, err)
		}
		time.Sleep(pollEvery)
	}
}

// stop terminates the server (SIGTERM, then SIGKILL) and removes its
// directory. It is safe to call more than once.
func (n *node) stop() error {
	n.once.Do(func() {
		n.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-n.exited:
		case <-time.After(stopWait):
			n.cmd.Process.Kill()
			<-n.exited
			n.err = fmt.Errorf("%s did not stop on SIGTERM within %s; killed", n.addr, stopWait)
		}
		os.RemoveAll(n.dir)
	})
	return n.err
}

// logTail returns the end of the server's log, for error messages.
func (n *node) logTail() string {
	b, _ := os.ReadFile(filepath.Join(n.dir, "redis.log"))
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
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
	}
	return "", fmt.Errorf("unexpected reply %q", line)
}
