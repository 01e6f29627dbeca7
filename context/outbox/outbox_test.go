package outbox_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/stickycalls/stickycalls/context/callapi"
	"github.com/stickycalls/stickycalls/context/callcontext"
	"github.com/stickycalls/stickycalls/context/outbox"
)

// clock is a settable time for the outbox's ages.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// store stands in for the service: unavailable until up, then it records
// what it was given.
type store struct {
	mu      sync.Mutex
	up      bool
	missing map[string]bool // calls that have no record
	broken  map[string]bool // calls whose completion fails otherwise
	got     []outbox.Entry
}

func (s *store) apply(_ context.Context, e outbox.Entry) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case !s.up:
		return fmt.Errorf("commit completion: %w", callcontext.ErrUnavailable)
	case s.missing[e.Completion.CallID]:
		return fmt.Errorf("read call: %w", callcontext.ErrNotFound)
	case s.broken[e.Completion.CallID]:
		return errors.New("decode call record: unexpected end of JSON input")
	}
	s.got = append(s.got, e)
	return nil
}

func (s *store) set(up bool) { s.mu.Lock(); s.up = up; s.mu.Unlock() }

func (s *store) applied() []outbox.Entry {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]outbox.Entry(nil), s.got...)
}

func open(t *testing.T, path string, c *clock, reg prometheus.Registerer) *outbox.Outbox {
	t.Helper()
	o, err := outbox.Open(path, outbox.Options{Interval: 10 * time.Millisecond, MaxAge: time.Hour, Now: c.Now, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// waitFor polls cond for up to 5 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// Completions put while the store is away survive a restart, are applied
// once it is back with the time their callback arrived, oldest first, and
// a retry of one callback is one entry.
func TestOutboxKeepsAndApplies(t *testing.T) {
	path := filepath.Join(t.TempDir(), "outbox.db")
	c := &clock{t: time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)}
	o := open(t, path, c, nil)
	arrived := c.Now()
	for _, p := range []struct {
		tenant string
		c      callcontext.Completion
	}{
		{"default", callcontext.Completion{CallID: "CA2", Status: "completed", Duration: 40, At: arrived.Add(time.Second)}},
		{"default", callcontext.Completion{CallID: "CA1", Status: "completed", Duration: 30, At: arrived}},
		{"default", callcontext.Completion{CallID: "CA1", Status: "completed", Duration: 30, At: arrived.Add(2 * time.Second)}}, // Twilio's retry
		{"acme", callcontext.Completion{CallID: "CA1", Status: "busy", Duration: 0, At: arrived.Add(3 * time.Second)}},          // another tenant's call
	} {
		if err := o.Put(p.tenant, p.c); err != nil {
			t.Fatal(err)
		}
	}
	if n := o.Len(); n != 3 {
		t.Fatalf("Len = %d, want 3 (a retry is one entry)", n)
	}
	o.Close()

	reg := prometheus.NewRegistry()
	o = open(t, path, c, reg)
	defer o.Close()
	if n := o.Len(); n != 3 {
		t.Fatalf("Len after reopening = %d, want 3: the outbox is durable", n)
	}
	s := &store{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { o.Run(ctx, s.apply); close(done) }()
	defer func() { cancel(); <-done }()

	c.add(time.Minute)
	time.Sleep(50 * time.Millisecond) // several intervals with the store away
	if n := o.Len(); n != 3 || len(s.applied()) != 0 {
		t.Fatalf("store away: Len %d, applied %d; want all kept", n, len(s.applied()))
	}
	if age := gaugeValue(t, reg, "stickycalls_outbox_oldest_age_seconds"); age != 60 {
		t.Errorf("oldest age = %v s, want 60", age)
	}
	s.set(true)
	waitFor(t, "the outbox to drain", func() bool { return o.Len() == 0 })
	got := s.applied()
	if len(got) != 3 || got[0].Completion.CallID != "CA1" || !got[0].Completion.At.Equal(arrived) || got[0].Completion.Duration != 30 ||
		got[1].Completion.CallID != "CA2" || got[2].Tenant != "acme" {
		t.Errorf("applied %+v, want CA1 (as first reported), CA2, then acme's CA1", got)
	}
	if d := gaugeValue(t, reg, "stickycalls_outbox_depth"); d != 0 {
		t.Errorf("depth gauge = %v after draining, want 0", d)
	}
}

// A completion whose call the store does not know is done with; one that
// keeps failing is dropped after the maximum age.
func TestOutboxDrops(t *testing.T) {
	c := &clock{t: time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)}
	o := open(t, filepath.Join(t.TempDir(), "outbox.db"), c, nil)
	defer o.Close()
	s := &store{up: true, missing: map[string]bool{"CAgone": true}}
	o.Put("default", callcontext.Completion{CallID: "CAgone", Status: "completed"})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { o.Run(ctx, s.apply); close(done) }()
	defer func() { cancel(); <-done }()
	waitFor(t, "an unknown call to leave the outbox", func() bool { return o.Len() == 0 })

	s.set(false)
	o.Put("default", callcontext.Completion{CallID: "CAold", Status: "completed"})
	time.Sleep(30 * time.Millisecond)
	if o.Len() != 1 {
		t.Fatalf("Len = %d before the maximum age, want 1", o.Len())
	}
	c.add(2 * time.Hour)
	waitFor(t, "an entry past its maximum age to be dropped", func() bool { return o.Len() == 0 })
	if len(s.applied()) != 0 {
		t.Errorf("applied %v, want nothing", s.applied())
	}
}

// A second process cannot open the same outbox file.
func TestOutboxLocked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "outbox.db")
	c := &clock{t: time.Now()}
	o := open(t, path, c, nil)
	defer o.Close()
	if _, err := outbox.Open(path, outbox.Options{}); err == nil {
		t.Error("second Open of a file in use succeeded, want an error")
	}
}

// gaugeValue reads a gauge gathered from reg.
func gaugeValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

// One entry that keeps failing otherwise than with the store away does not
// hold back the others; ends wait beside completions.
func TestOutboxBrokenEntry(t *testing.T) {
	c := &clock{t: time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)}
	o := open(t, filepath.Join(t.TempDir(), "outbox.db"), c, nil)
	defer o.Close()
	s := &store{up: true, broken: map[string]bool{"CAbad": true}}
	o.Put("default", callcontext.Completion{CallID: "CAbad", Status: "completed", At: c.Now()})
	o.Put("default", callcontext.Completion{CallID: "CAgood", Status: "completed", At: c.Now().Add(time.Second)})
	o.PutEnd("default", callapi.EndRequest{CallID: "CAgood", Intent: "billing", Status: "open"})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { o.Run(ctx, s.apply); close(done) }()
	defer func() { cancel(); <-done }()
	waitFor(t, "the good entries to apply past the broken one", func() bool { return len(s.applied()) == 2 })
	ends := 0
	for _, e := range s.applied() {
		if e.Completion.CallID != "CAgood" {
			t.Errorf("applied %+v, want only CAgood's", e)
		}
		if e.End != nil && e.End.Intent == "billing" {
			ends++
		}
	}
	if ends != 1 {
		t.Errorf("applied %+v, want CAgood's completion and its end", s.applied())
	}
	// The pass recounts when it ends.
	waitFor(t, "the broken entry alone to wait", func() bool { return o.Len() == 1 })
}
