package service

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// limitedServer serves handler behind a limitListener of max connections
// and returns its address.
func limitedServer(t *testing.T, max int, handler http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := newLimitListener(ln, max, zerolog.Nop())
	srv := &http.Server{Handler: handler, ConnState: l.connState}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// get sends one kept-alive request on c and reads its answer's status.
func get(t *testing.T, c net.Conn, r *bufio.Reader) int {
	t.Helper()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatalf("write: %v", err)
	}
	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

func dial(t *testing.T, addr string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, bufio.NewReader(c)
}

// At the limit, nothing is closed until a new connection comes; then the
// connection idle the longest is closed to make room: kept-alive clients
// cannot hold a webhook back.
func TestLimitClosesIdlest(t *testing.T) {
	addr := limitedServer(t, 2, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	first, firstR := dial(t, addr)
	get(t, first, firstR)
	second, secondR := dial(t, addr)
	get(t, second, secondR)
	time.Sleep(100 * time.Millisecond) // at the limit, both idle, nobody waiting
	if status := get(t, first, firstR); status != http.StatusOK {
		t.Fatalf("a kept-alive connection at the limit with nobody waiting: status %d, want 200 (still open)", status)
	}
	// second is now the one idle the longest.

	third, thirdR := dial(t, addr)
	if status := get(t, third, thirdR); status != http.StatusOK {
		t.Fatalf("the third connection's request: status %d, want 200", status)
	}
	second.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := secondR.ReadByte(); err != io.EOF {
		t.Errorf("the connection idle the longest: read %v, want EOF (closed to make room)", err)
	}
	if status := get(t, first, firstR); status != http.StatusOK {
		t.Errorf("the other idle connection: status %d, want 200 (still open)", status)
	}
}

// With no connection idle, a new one waits until one is free; a busy one
// is never closed.
func TestLimitWaitsForBusy(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{}, 2)
	addr := limitedServer(t, 1, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		<-release
	}))
	busy, busyR := dial(t, addr)
	done := make(chan int, 1)
	go func() { done <- get(t, busy, busyR) }()
	<-entered

	waiting, waitingR := dial(t, addr) // the kernel's backlog holds it
	answered := make(chan int, 1)
	go func() { answered <- get(t, waiting, waitingR) }()
	select {
	case <-entered:
		t.Fatal("a second connection was served while the only slot was busy")
	case <-time.After(100 * time.Millisecond):
	}
	close(release)
	if status := <-done; status != http.StatusOK {
		t.Errorf("the busy connection's request: status %d, want 200 (never closed)", status)
	}
	busy.Close() // its slot comes back
	if status := <-answered; status != http.StatusOK {
		t.Errorf("the waiting connection's request: status %d, want 200 once a slot was free", status)
	}
}
