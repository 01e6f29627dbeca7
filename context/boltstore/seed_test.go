package boltstore_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/stickycalls/stickycalls/context/boltstore"
	"github.com/stickycalls/stickycalls/context/callcontext"
	"github.com/stickycalls/stickycalls/context/storage"
	"github.com/stickycalls/stickycalls/context/storetest"
)

var t0 = time.Date(2026, 2, 7, 10, 30, 0, 0, time.UTC)

func TestSeed(t *testing.T) {
	s, err := boltstore.Open(filepath.Join(t.TempDir(), "stickycalls.db"), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	storetest.RunSeed(t, s)
}

// TestSeedBatches seeds more customers than one transaction holds and finds
// the first and the last.
func TestSeedBatches(t *testing.T) {
	s, err := boltstore.Open(filepath.Join(t.TempDir(), "stickycalls.db"), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	sc := callcontext.Scope{Tenant: "acme", Mode: callcontext.Test}
	link := storage.Link{LastCall: t0, Expires: t0.Add(24 * time.Hour)}
	recs := make([]storage.Record, 10_001)
	for i := range recs {
		recs[i] = storage.Record{Ref: fmt.Sprintf("cust_%d", i), Version: 1, Created: t0, FirstCall: t0, LastCall: t0,
			ANIs: map[string]storage.Link{fmt.Sprintf("+141555%05d", i): link}, Expires: link.Expires}
	}
	if err := s.Seed(ctx, sc, recs, t0); err != nil {
		t.Fatalf("Seed() error %v", err)
	}
	for _, i := range []int{0, len(recs) - 1} {
		f, err := s.Resolve(ctx, sc, storage.Query{ANI: fmt.Sprintf("+141555%05d", i)}, t0)
		if ref := fmt.Sprintf("cust_%d", i); err != nil || f.Customers[ref].Ref != ref {
			t.Errorf("Resolve(ANI of customer %d) = %v, %v; want %s", i, f.Customers, err, ref)
		}
	}
	expired := storage.Record{Ref: "cust_old", Version: 1, Expires: t0}
	if err := s.Seed(ctx, sc, []storage.Record{expired}, t0); err == nil {
		t.Error("seeding a customer expired as of now: nil error, want one")
	}
}
