package redistest

import (
	"bufio"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"
)

func TestMain(m *testing.M) { Main(m) }

// A durable server keeps what it acknowledged across a SIGKILL, on the
// same address.
func TestDurableRestart(t *testing.T) {
	s := Durable(t, "always")
	if _, err := command(s.Addr(), "SET", "k", "v"); err != nil {
		t.Fatal(err)
	}
	s.Kill()
	if _, err := command(s.Addr(), "PING"); err == nil {
		t.Fatal("PING after Kill answered")
	}
	s.Kill() // a server that is down: nothing to do
	s.Restart()
	if got, err := command(s.Addr(), "GET", "k"); err != nil || got != "v" {
		t.Fatalf("GET k after restart = %q, %v; want v", got, err)
	}
	s.Restart() // a running server is killed first
	if got, err := command(s.Addr(), "GET", "k"); err != nil || got != "v" {
		t.Fatalf("GET k after a second restart = %q, %v; want v", got, err)
	}
}

// A durable cluster comes back whole: every node on its port, with its
// slots and its keys.
func TestDurableClusterRestart(t *testing.T) {
	c := DurableCluster(t, "always")
	addrs := c.Addrs()
	// Each key goes to the node that owns its slot (the others say MOVED).
	owner := map[string]string{}
	for i := range 12 {
		key := fmt.Sprintf("k%d", i)
		for _, a := range addrs {
			if _, err := command(a, "SET", key, "v"+key); err == nil {
				owner[key] = a
				break
			} else if !strings.HasPrefix(err.Error(), "MOVED") {
				t.Fatalf("SET %s on %s: %v", key, a, err)
			}
		}
	}
	if len(owner) != 12 {
		t.Fatalf("only %d of 12 keys found their node", len(owner))
	}
	c.Kill()
	for _, a := range addrs {
		if _, err := command(a, "PING"); err == nil {
			t.Fatalf("PING %s after Kill answered", a)
		}
	}
	c.Restart()
	if got := c.Addrs(); strings.Join(got, ",") != strings.Join(addrs, ",") {
		t.Errorf("addresses after restart = %v, want %v", got, addrs)
	}
	for key, a := range owner {
		if got, err := command(a, "GET", key); err != nil || got != "v"+key {
			t.Errorf("GET %s on %s after restart = %q, %v; want v%s", key, a, got, err, key)
		}
	}
}

// A paused server accepts connections but does not answer until resumed;
// one left paused still stops when its test ends.
func TestDurablePause(t *testing.T) {
	s := Durable(t, "everysec")
	s.Pause()
	c, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatalf("dial a paused server: %v", err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(300 * time.Millisecond))
	if _, err := c.Write([]byte("*1\r\n$4\r\nPING\r\n")); err != nil {
		t.Fatal(err)
	}
	if reply, err := readReply(bufio.NewReader(c)); err == nil {
		t.Fatalf("a paused server answered PING: %q", reply)
	}
	s.Resume()
	if reply, err := command(s.Addr(), "PING"); err != nil || reply != "PONG" {
		t.Fatalf("PING after Resume = %q, %v; want PONG", reply, err)
	}
	s.Pause() // the cleanup stops it paused
}

func TestDurableRejectsUnknownFsync(t *testing.T) {
	ft := &fakeT{TB: t}
	func() {
		defer func() { recover() }()
		Durable(ft, "sometimes")
	}()
	if !ft.failed {
		t.Error(`Durable(t, "sometimes") did not fail the test`)
	}
}

// fakeT records a Fatalf instead of ending the test.
type fakeT struct {
	testing.TB
	failed bool
}

func (f *fakeT) Helper() {}

func (f *fakeT) Fatalf(format string, args ...any) {
	f.failed = true
	panic("fatal")
}
