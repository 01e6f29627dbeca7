package boltstore

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

var bucketTest = []byte("batch_test")

// putKey is a write of one key; it records the transaction it ran in.
func putKey(key string, txs *sync.Map) func(*bolt.Tx) error {
	return func(tx *bolt.Tx) error {
		txs.Store(key, tx.ID())
		b, err := tx.CreateBucketIfNotExists(bucketTest)
		if err != nil {
			return err
		}
		return b.Put([]byte(key), []byte("v"))
	}
}

// Writes queued behind a commit share the next one; a write that fails or
// panics gets its own error and leaves nothing, and the others of its
// batch are committed all the same.
func TestGroupCommit(t *testing.T) {
	s := openStore(t)
	var txs sync.Map
	hold, holding := make(chan struct{}), make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		err := s.update(func(tx *bolt.Tx) error {
			close(holding)
			<-hold // the writer is busy: the writes below queue
			return nil
		})
		if err != nil {
			t.Errorf("holding write: %v", err)
		}
	})
	<-holding
	const n = 40
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			key := fmt.Sprintf("k%02d", i)
			fn := putKey(key, &txs)
			switch i {
			case 7:
				fn = func(tx *bolt.Tx) error {
					putKey(key, &txs)(tx)
					return errors.New("refused")
				}
			case 23:
				fn = func(tx *bolt.Tx) error {
					putKey(key, &txs)(tx)
					panic("bug")
				}
			}
			errs[i] = s.update(fn)
		})
	}
	for queued := 0; queued < n; time.Sleep(time.Millisecond) {
		s.batch.mu.Lock()
		queued = len(s.batch.queue)
		s.batch.mu.Unlock()
	}
	close(hold)
	wg.Wait()

	seen := map[int]int{} // transaction → writes committed in it
	s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketTest)
		for i := range n {
			key := fmt.Sprintf("k%02d", i)
			present := b.Get([]byte(key)) != nil
			if want := i != 7 && i != 23; present != want {
				t.Errorf("%s committed: %v, want %v", key, present, want)
			}
			if id, _ := txs.Load(key); present {
				seen[id.(int)]++
			}
		}
		return nil
	})
	if errs[7] == nil || errs[7].Error() != "refused" || errs[23] == nil || !strings.Contains(errs[23].Error(), "panicked") {
		t.Errorf("failing writes returned %v and %v, want their own errors", errs[7], errs[23])
	}
	for i, err := range errs {
		if err != nil && i != 7 && i != 23 {
			t.Errorf("write %d: %v", i, err)
		}
	}
	if len(seen) > 3 {
		t.Errorf("%d writes queued behind one commit took %d transactions, want them grouped", n, len(seen))
	}
}

// BenchmarkWrites compares fsynced writes committed one by one
// (bolt.DB.Update) with the group commit, from one writer (the group
// commit must add nothing) and from 16 per CPU.
func BenchmarkWrites(b *testing.B) {
	for _, c := range []struct {
		name, mode string
		par        int
	}{{"serial/update", "update", 0}, {"serial/group", "group", 0}, {"parallel/update", "update", 16}, {"parallel/group", "group", 16}} {
		mode := c.mode
		b.Run(c.name, func(b *testing.B) {
			s, err := Open(b.TempDir()+"/bench.db", time.Second)
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			write := s.update
			if mode == "update" {
				write = s.db.Update
			}
			var i sync.Mutex
			n := 0
			if c.par == 0 {
				var txs sync.Map
				for i := 0; b.Loop(); i++ {
					if err := write(putKey(fmt.Sprint(i), &txs)); err != nil {
						b.Fatal(err)
					}
				}
				return
			}
			b.SetParallelism(c.par)
			b.RunParallel(func(pb *testing.PB) {
				var txs sync.Map
				for pb.Next() {
					i.Lock()
					n++
					key := fmt.Sprint(n)
					i.Unlock()
					if err := write(putKey(key, &txs)); err != nil {
						b.Error(err)
					}
				}
			})
		})
	}
}
