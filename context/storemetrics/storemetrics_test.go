package storemetrics_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/stickycalls/stickycalls/context/boltstore"
	"github.com/stickycalls/stickycalls/context/callcontext"
	"github.com/stickycalls/stickycalls/context/storemetrics"
)

// Each operation is timed; a failure is counted, a "not found" is not; the
// embedded store's turns pass through.
func TestMeasures(t *testing.T) {
	inner, err := boltstore.Open(filepath.Join(t.TempDir(), "db"), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	s := storemetrics.Wrap(inner, reg)
	sc := callcontext.Scope{Tenant: "default", Mode: callcontext.Test}
	if _, err := s.Call(context.Background(), sc, "nope"); !errors.Is(err, callcontext.ErrNotFound) {
		t.Fatalf("Call(nope) = %v, want ErrNotFound", err)
	}
	inner.Close()
	if err := s.Ping(context.Background()); err == nil {
		t.Fatal("Ping on a closed store succeeded")
	}
	if n := errorsOf(t, reg, "call"); n != 0 {
		t.Errorf("errors{call} = %v after a not found, want 0", n)
	}
	if n := errorsOf(t, reg, "ping"); n != 1 {
		t.Errorf("errors{ping} = %v after a failure, want 1", n)
	}
	if n, err := testutil.GatherAndCount(reg, "stickycalls_store_operation_duration_seconds"); err != nil || n != 2 {
		t.Errorf("duration series = %d, %v; want call and ping", n, err)
	}
	ctx := context.Background()
	release, err := s.Serialize(ctx, sc, "cust_1") // the embedded store's turn: a second one for the customer waits for it
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan struct{})
	go func() {
		if second, err := s.Serialize(ctx, sc, "cust_1"); err == nil {
			second()
		}
		close(got)
	}()
	select {
	case <-got:
		t.Fatal("a second turn of the customer ran while the first was held")
	case <-time.After(50 * time.Millisecond):
	}
	// A wait whose context ends gives up, and leaves the turn as it was.
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if _, err := s.Serialize(short, sc, "cust_1"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Serialize(a context that ends while the turn is held) = %v, want DeadlineExceeded", err)
	}
	release()
	<-got
}

// errorsOf reads stickycalls_store_errors_total{operation=op}.
func errorsOf(t *testing.T, reg *prometheus.Registry, op string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			if mf.GetName() == "stickycalls_store_errors_total" && m.GetLabel()[0].GetValue() == op {
				return m.GetCounter().GetValue()
			}
		}
	}
	t.Fatalf("no errors series for %s", op)
	return 0
}
