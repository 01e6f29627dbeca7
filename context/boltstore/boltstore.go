// Package boltstore is the embedded store: every customer, call, key and
// counter in one bbolt file. It serves one process at a time (the file is
// locked while open); each Store method is one transaction, fsynced on
// commit. Expired data is filtered on read and swept in the background.
//
// Layout: top-level buckets "keys" (id → key) and "keyhash" (hash → id),
// and one bucket per scope ("tenant\x00mode") holding "customers" (ref →
// record), "anis" (ANI → links and line type), "owners" (external id →
// owner), "calls" (call id → call record), "idem" (op:key → idempotency
// record) and "usage" (period → counters). Values are MessagePack (see encode).
package boltstore

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"os"
	"runtime"
	"strconv"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/stickycalls/stickycalls/context/callcontext"
	"github.com/stickycalls/stickycalls/context/storecodec"
)

var _ callcontext.Store = (*Store)(nil)

// ErrLocked means another process holds the file.
var ErrLocked = errors.New("the data file is locked by another process (is a stickycalls server running? stop it first)")

// Store is a callcontext.Store in one bbolt file.
type Store struct {
	db *bolt.DB

	turns [256]chan struct{} // see Serialize: each holds a token while its turn is taken

	batch batcher // see update

	flights *flights // claims in flight

	sweptPage func() // if set, called after a sweep reads a page, before it deletes (tests)
}

var _ callcontext.Serializer = (*Store)(nil)

// Serialize implements callcontext.Serializer: bbolt has one writer, so
// letting the writes about one customer run one at a time costs little
// and keeps their version checks from failing. The turns are a fixed set
// of locks picked by a hash of scope and key: two customers may share one
// now and then, which only makes one wait. A wait ends with ctx: a write
// whose request has given up does not queue behind a slow one.
func (s *Store) Serialize(ctx context.Context, sc callcontext.Scope, key string) (release func(), err error) {
	h := fnv.New32a()
	h.Write(scopeName(sc))
	h.Write([]byte{0})
	h.Write([]byte(key))
	turn := s.turns[h.Sum32()%uint32(len(s.turns))]
	select {
	case turn <- struct{}{}:
		return func() { <-turn }, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("wait for the turn of %q: %w", key, ctx.Err())
	}
}

var (
	bucketKeys    = []byte("keys")
	bucketKeyHash = []byte("keyhash")
	bucketScopes  = []byte("scopes")
)

// Sub-buckets of a scope.
var (
	subCustomers = []byte("customers")
	subANIs      = []byte("anis")
	subOwners    = []byte("owners")
	subCalls     = []byte("calls")
	subIdem      = []byte("idem")
	subUsage     = []byte("usage")
	subTallies   = []byte("tallies")
)

// Option changes how Open opens the file.
type Option func(*bolt.Options)

// NoSync skips the fsync of every commit: a crash may lose or corrupt the
// file. Only for throwaway stores, such as a simulation's.
func NoSync() Option { return func(o *bolt.Options) { o.NoSync = true } }

// Open opens or creates the store at path. It fails with ErrLocked within
// lockWait when another process has the file open.
func Open(path string, lockWait time.Duration, opts ...Option) (*Store, error) {
	bo := &bolt.Options{Timeout: lockWait, FreelistType: bolt.FreelistMapType, InitialMmapSize: initialMap(path)}
	for _, o := range opts {
		o(bo)
	}
	db, err := bolt.Open(path, 0o600, bo)
	if err != nil && bo.InitialMmapSize > 0 && errors.Is(err, syscall.ENOMEM) {
		bo.InitialMmapSize = 0 // no room for the headroom: map the file alone, as bbolt does by default
		db, err = bolt.Open(path, 0o600, bo)
	}
	if errors.Is(err, bolt.ErrTimeout) {
		return nil, fmt.Errorf("open %s: %w", path, ErrLocked)
	}
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketKeys, bucketKeyHash, bucketScopes, bucketLookup, bucketStreams} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("init %s: %w", path, err)
	}
	s := &Store{db: db, flights: newFlights()}
	for i := range s.turns {
		s.turns[i] = make(chan struct{}, 1)
	}
	return s, nil
}

// initialMap is how much address space the file's map takes at first
// (bbolt's InitialMmapSize, as etcd sets it): see mapSize. bbolt maps the
// file anew each time it outgrows its map, in 1 GiB steps past the first;
// a remap waits for every read transaction (an export's lasts as long as
// the export), holds every request meanwhile, and leaves every page to
// fault in again. A store growing by 4 KiB a start (the bench's, at a
// million customers) outgrows a step about every eight minutes at 500
// calls/s. The map is only address space: pages take memory as they are
// read, whatever its size. Not on Windows, where bbolt grows the file to
// its map, nor where addresses are 32 bits.
func initialMap(path string) int {
	if runtime.GOOS == "windows" || strconv.IntSize < 64 {
		return 0
	}
	var file int64
	if st, err := os.Stat(path); err == nil {
		file = st.Size()
	}
	return int(mapSize(file, addressLimit()))
}

// mapSize is the first map of a file of the given size in a process whose
// address space is limited to limit bytes (0: no limit): 8 GiB or twice
// the file, but at most a quarter of the limit, which the process needs
// for everything else too (bbolt maps at least the file in any case).
func mapSize(file, limit int64) int64 {
	size := max(8<<30, 2*file)
	if limit > 0 {
		size = min(size, limit/4)
	}
	return size
}

// Close closes the file.
func (s *Store) Close() error { return s.db.Close() }

// Ping reports whether the file is open.
func (s *Store) Ping(context.Context) error {
	return s.db.View(func(*bolt.Tx) error { return nil })
}

// scope is one scope's buckets inside a transaction.
type scope struct {
	customers, anis, owners, calls, idem, usage *bolt.Bucket
	tallies                                     *bolt.Bucket // hour → counts; nil in a file from before tallies, until written
}

func scopeName(sc callcontext.Scope) []byte { return []byte(sc.Tenant + "\x00" + string(sc.Mode)) }

// writeScope returns the scope's buckets, creating them.
func writeScope(tx *bolt.Tx, sc callcontext.Scope) (scope, error) {
	b, err := tx.Bucket(bucketScopes).CreateBucketIfNotExists(scopeName(sc))
	if err != nil {
		return scope{}, err
	}
	subs := make([]*bolt.Bucket, 7)
	for i, name := range [][]byte{subCustomers, subANIs, subOwners, subCalls, subIdem, subUsage, subTallies} {
		if subs[i], err = b.CreateBucketIfNotExists(name); err != nil {
			return scope{}, err
		}
	}
	return scope{subs[0], subs[1], subs[2], subs[3], subs[4], subs[5], subs[6]}, nil
}

// readScope returns the scope's buckets, or ok false if it has none yet.
func readScope(tx *bolt.Tx, sc callcontext.Scope) (scope, bool) {
	b := tx.Bucket(bucketScopes).Bucket(scopeName(sc))
	if b == nil {
		return scope{}, false
	}
	return scopeOf(b), true
}

// scopeOf is a scope bucket's sub-buckets.
func scopeOf(b *bolt.Bucket) scope {
	return scope{b.Bucket(subCustomers), b.Bucket(subANIs), b.Bucket(subOwners), b.Bucket(subCalls), b.Bucket(subIdem), b.Bucket(subUsage), b.Bucket(subTallies)}
}

// get decodes the value of key into v and reports whether it existed.
func get(b *bolt.Bucket, key string, v any) (bool, error) {
	raw := b.Get([]byte(key))
	if raw == nil {
		return false, nil
	}
	if err := decode(raw, v); err != nil {
		return false, fmt.Errorf("decode %q: %w", key, err)
	}
	return true, nil
}

func put(b *bolt.Bucket, key string, v any) error {
	raw, err := encode(v)
	if err != nil {
		return err
	}
	return b.Put([]byte(key), raw)
}

// Values are encoded by storecodec: MessagePack, JSON from earlier files
// still read, each value rewritten by its next write.
func encode(v any) ([]byte, error) { return storecodec.Encode(v) }

func decode(raw []byte, v any) error { return storecodec.Decode(raw, v) }
