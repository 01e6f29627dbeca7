package boltstore

import (
	"fmt"
	"sync"

	bolt "go.etcd.io/bbolt"
)

// A group commit: bbolt has one writer and fsyncs every commit, so
// concurrent writes wait for each other's fsync. update lets the writes
// that arrive while a commit is under way share the next one. A write that
// finds no commit under way commits at once, alone (no added delay at low
// load, unlike bolt.DB.Batch's timer); under load each commit carries
// everything that queued meanwhile. Every write is acknowledged only
// after the commit that holds it is on disk.
type batcher struct {
	mu      sync.Mutex
	queue   []*pending
	running bool // a goroutine is committing; it takes the queue next
}

// pending is one caller's transaction function and where its result goes.
type pending struct {
	fn   func(*bolt.Tx) error
	done chan error
}

// update runs fn in a read-write transaction, possibly with other
// callers' functions in the same transaction, and returns fn's error or
// the commit's. As with bolt.DB.Batch, fn may run more than once (when
// another function of its batch fails, the batch is run again without
// it), so it must set what it returns afresh on each run.
func (s *Store) update(fn func(*bolt.Tx) error) error {
	w := &pending{fn: fn, done: make(chan error, 1)}
	b := &s.batch
	b.mu.Lock()
	b.queue = append(b.queue, w)
	if b.running {
		b.mu.Unlock()
		return <-w.done
	}
	b.running = true
	b.mu.Unlock()
	s.commitQueued()
	return <-w.done
}

// commitQueued commits what is queued in one transaction, then hands the
// next batch, if any queued meanwhile, to a new goroutine, so the caller
// returns after its own commit.
func (s *Store) commitQueued() {
	b := &s.batch
	b.mu.Lock()
	batch := b.queue
	b.queue = nil
	b.mu.Unlock()
	s.commit(batch)
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.queue) == 0 {
		b.running = false
		return
	}
	go s.commitQueued()
}

// commit runs batch in one transaction. If a function fails, the
// transaction is rolled back, the others are committed without it, and it
// then runs alone, so its error is the one it meets after them, exactly
// as if it had come last.
func (s *Store) commit(batch []*pending) {
	if len(batch) == 0 {
		return
	}
	failed := -1
	err := s.db.Update(func(tx *bolt.Tx) error {
		for i, w := range batch {
			if err := run(w.fn, tx); err != nil {
				failed = i
				return err
			}
		}
		return nil
	})
	switch {
	case failed < 0 || len(batch) == 1:
		for _, w := range batch {
			w.done <- err
		}
	default:
		alone := batch[failed]
		s.commit(append(batch[:failed:failed], batch[failed+1:]...))
		s.commit([]*pending{alone})
	}
}

// run calls fn, turning a panic into an error, so that one caller's bug
// cannot leave the others of its batch waiting forever.
func run(fn func(*bolt.Tx) error, tx *bolt.Tx) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("boltstore: write panicked: %v", p)
		}
	}()
	return fn(tx)
}
