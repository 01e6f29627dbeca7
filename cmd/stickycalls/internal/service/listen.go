package service

import (
	"crypto/tls"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// limitListener serves at most max connections at a time. A connection
// stops counting when it closes or when a handler takes it over (a media
// stream's WebSocket, which keeps its own deadlines and is bounded by the
// calls it carries). When a new connection comes at the limit, the
// connection idle the longest (a client's kept-alive one) is closed to make
// room, so idle clients cannot hold a webhook back; with none idle, the new
// connection waits until one closes or turns idle, and the ones after it
// wait in the kernel's backlog. Either way a warning is logged, at most
// once every 10 s. Nothing is closed before a new connection has come: a
// kept-alive client at the limit keeps its connection until someone
// needs the room.
type limitListener struct {
	net.Listener
	slots  chan struct{}
	logger zerolog.Logger

	mu     sync.Mutex
	warned time.Time
	idle   map[*limitedConn]time.Time // since when each idle connection is
}

func newLimitListener(ln net.Listener, max int, logger zerolog.Logger) *limitListener {
	return &limitListener{Listener: ln, slots: make(chan struct{}, max), logger: logger, idle: map[*limitedConn]time.Time{}}
}

// recheckIdle is how often a connection waiting for room looks again for
// one that has turned idle.
const recheckIdle = 50 * time.Millisecond

func (l *limitListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	for {
		select {
		case l.slots <- struct{}{}:
			return &limitedConn{Conn: c, release: func() { <-l.slots }}, nil
		default:
		}
		l.warn()
		l.closeIdlest()
		select {
		case l.slots <- struct{}{}:
			return &limitedConn{Conn: c, release: func() { <-l.slots }}, nil
		case <-time.After(recheckIdle):
		}
	}
}

func (l *limitListener) warn() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if time.Since(l.warned) < 10*time.Second {
		return
	}
	l.warned = time.Now()
	l.logger.Warn().Int("max_connections", cap(l.slots)).
		Msg("connection limit reached: new connections wait until one closes (STICKYCALLS_MAX_CONNECTIONS)")
}

// closeIdlest closes the connection idle the longest, if any is.
func (l *limitListener) closeIdlest() {
	l.mu.Lock()
	var oldest *limitedConn
	for c, since := range l.idle {
		if oldest == nil || since.Before(l.idle[oldest]) {
			oldest = c
		}
	}
	delete(l.idle, oldest)
	l.mu.Unlock()
	if oldest != nil {
		oldest.Close()
	}
}

// connState tracks idle connections and releases a connection's slot when
// a handler hijacks it; give it to http.Server.ConnState.
func (l *limitListener) connState(c net.Conn, state http.ConnState) {
	if t, ok := c.(*tls.Conn); ok {
		c = t.NetConn()
	}
	lc, ok := c.(*limitedConn)
	if !ok {
		return
	}
	l.mu.Lock()
	if state == http.StateIdle {
		l.idle[lc] = time.Now()
	} else {
		delete(l.idle, lc)
	}
	l.mu.Unlock()
	if state == http.StateHijacked {
		lc.done()
	}
}

// limitedConn gives its slot back once, on Close or on hijack.
type limitedConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitedConn) done() { c.once.Do(c.release) }

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.done()
	return err
}
