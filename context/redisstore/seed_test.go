package redisstore_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stickycalls/stickycalls/context/callcontext"
	"github.com/stickycalls/stickycalls/context/redisstore"
	"github.com/stickycalls/stickycalls/context/redistest"
	"github.com/stickycalls/stickycalls/context/storage"
	"github.com/stickycalls/stickycalls/context/storetest"
)

func TestSeed(t *testing.T) {
	storetest.RunSeed(t, open(t, redisstore.Options{Addrs: []string{redistest.Single(t)}}))
}

// TestSeedBatches seeds more customers than one pipeline holds and finds
// the first and the last.
func TestSeedBatches(t *testing.T) {
	s := open(t, redisstore.Options{Addrs: []string{redistest.Single(t)}})
	ctx := context.Background()
	sc := callcontext.Scope{Tenant: "acme", Mode: callcontext.Test}
	link := storage.Link{LastCall: t0, Expires: t0.Add(24 * time.Hour)}
	recs := make([]storage.Record, 2500)
	for i := range recs {
		recs[i] = storage.Record{Ref: fmt.Sprintf("cust_%d", i), Version: 1, Created: t0, FirstCall: t0, LastCall: t0,
			ANIs: map[string]storage.Link{fmt.Sprintf("+1415555%04d", i): link}, Expires: link.Expires}
	}
	ctx, waves := redisstore.WithWaveCounter(ctx)
	if err := s.Seed(ctx, sc, recs, t0); err != nil {
		t.Fatalf("Seed() error %v", err)
	}
	if waves.N() != 3 {
		t.Errorf("Seed() of 2500 customers took %d waves, want 3", waves.N())
	}
	for _, i := range []int{0, len(recs) - 1} {
		f, err := s.Resolve(ctx, sc, storage.Query{ANI: fmt.Sprintf("+1415555%04d", i)}, t0)
		if ref := fmt.Sprintf("cust_%d", i); err != nil || f.Customers[ref].Ref != ref {
			t.Errorf("Resolve(ANI of customer %d) = %v, %v; want %s", i, f.Customers, err, ref)
		}
	}
}
