// Package outbox keeps the call completions the store could not take when
// Twilio reported them, in a small bbolt file of this instance, and applies
// them when the store is back: Twilio retries a status callback only when
// its URL asks to (#rp=…), so a completion refused with a 503 would be lost.
//
// An entry is keyed by tenant and call, so Twilio's retries of one
// callback are one entry, and applying it is idempotent (the service's
// Complete is), so a crash between applying and deleting is harmless. The
// completion keeps the time its callback arrived, which is the time it is
// recorded with however late it is applied.
package outbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	bolt "go.etcd.io/bbolt"

	"github.com/stickycalls/stickycalls/context/callapi"
	"github.com/stickycalls/stickycalls/context/callcontext"
)

var bucket = []byte("completions")

// Defaults of Options.
const (
	DefaultInterval = time.Second
	DefaultMaxAge   = 24 * time.Hour
)

// Entry is one completion, or one end, waiting for the store.
type Entry struct {
	Tenant     string                 `json:"tenant"`
	Completion callcontext.Completion `json:"completion"`
	// End, when set, is an end a platform reported once and will not
	// retry (Vapi's end-of-call report); Completion.At is when it came.
	End *callapi.EndRequest `json:"end,omitempty"`
}

// Options tune an Outbox; zero fields take the defaults.
type Options struct {
	Interval time.Duration // between attempts while entries wait, default 1s
	// MaxAge is how long an entry is retried: an older one is dropped and
	// logged as an error (its call record has expired by then anyway).
	MaxAge     time.Duration
	Logger     zerolog.Logger
	Registerer prometheus.Registerer // nil: no metrics
	Now        func() time.Time      // nil: time.Now
}

// Outbox is a durable queue of completions. It is safe for concurrent use.
type Outbox struct {
	db   *bolt.DB
	opts Options

	mu     sync.Mutex
	depth  int
	oldest time.Time // arrival of the oldest entry; zero when empty

	applied, dropped prometheus.Counter
}

// Open opens or creates the outbox file at path, failing within a second
// when another process has it open.
func Open(path string, opts Options) (*Outbox, error) {
	opts.Interval = cmpDuration(opts.Interval, DefaultInterval)
	opts.MaxAge = cmpDuration(opts.MaxAge, DefaultMaxAge)
	if opts.Now == nil {
		opts.Now = time.Now
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if errors.Is(err, bolt.ErrTimeout) {
		return nil, fmt.Errorf("open outbox %s: the file is locked by another process", path)
	}
	if err != nil {
		return nil, fmt.Errorf("open outbox %s: %w", path, err)
	}
	o := &Outbox{db: db, opts: opts,
		applied: prometheus.NewCounter(prometheus.CounterOpts{Name: "stickycalls_outbox_applied_total", Help: "Completions applied from the outbox once the store was back."}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{Name: "stickycalls_outbox_dropped_total", Help: "Completions dropped from the outbox after retrying for its maximum age."}),
	}
	err = db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(bucket)
		return err
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open outbox %s: %w", path, err)
	}
	o.recount()
	if r := opts.Registerer; r != nil {
		r.MustRegister(o.applied, o.dropped,
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "stickycalls_outbox_depth", Help: "Completions waiting in the outbox for the store."},
				func() float64 { return float64(o.Len()) }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "stickycalls_outbox_oldest_age_seconds", Help: "How long the oldest completion in the outbox has waited; 0 when it is empty."},
				func() float64 { return o.age().Seconds() }))
	}
	return o, nil
}

// Close closes the file. Entries not yet applied stay in it for the next
// start.
func (o *Outbox) Close() error { return o.db.Close() }

// Put keeps a completion of tenant's call, fsynced before it returns. A
// second Put for the same call keeps the first (a retry of one callback).
func (o *Outbox) Put(tenant string, c callcontext.Completion) error {
	return o.put(Entry{Tenant: tenant, Completion: c})
}

// PutEnd keeps an end of tenant's call, as Put keeps a completion.
func (o *Outbox) PutEnd(tenant string, end callapi.EndRequest) error {
	return o.put(Entry{Tenant: tenant, Completion: callcontext.Completion{CallID: end.CallID}, End: &end})
}

func (o *Outbox) put(e Entry) error {
	c := &e.Completion
	if c.At.IsZero() {
		c.At = o.opts.Now()
	}
	v, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("outbox: %w", err)
	}
	added := false
	err = o.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucket)
		k := e.key()
		if b.Get(k) != nil {
			return nil
		}
		added = true
		return b.Put(k, v)
	})
	if err != nil {
		return fmt.Errorf("outbox: %w", err)
	}
	if added {
		o.count(1, c.At)
	}
	return nil
}

// Len is the number of completions waiting.
func (o *Outbox) Len() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.depth
}

// Run applies the waiting completions with apply until ctx is done: each
// interval while any wait, oldest first. An entry is deleted once apply
// returns nil or callcontext.ErrNotFound (there is no call to complete).
// An unavailable store ends the pass; any other error leaves that entry
// for the next pass and goes on with the others. An entry is tried until
// it is older than MaxAge.
func (o *Outbox) Run(ctx context.Context, apply func(context.Context, Entry) error) {
	t := time.NewTicker(o.opts.Interval)
	defer t.Stop()
	for {
		if o.Len() > 0 {
			o.drain(ctx, apply)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// drain makes one pass over the waiting entries.
func (o *Outbox) drain(ctx context.Context, apply func(context.Context, Entry) error) {
	defer o.recount()
	for _, e := range o.pending() {
		if ctx.Err() != nil {
			return
		}
		err := apply(ctx, e)
		switch {
		case err == nil, errors.Is(err, callcontext.ErrNotFound):
			o.applied.Inc()
			o.remove(e)
		case o.opts.Now().Sub(e.Completion.At) > o.opts.MaxAge:
			o.dropped.Inc()
			o.opts.Logger.Error().Err(err).Str("tenant", e.Tenant).Str("call_sid", e.Completion.CallID).
				Dur("age", o.opts.Now().Sub(e.Completion.At)).Msg("outbox: completion dropped after retrying for its maximum age")
			o.remove(e)
		case errors.Is(err, callcontext.ErrUnavailable) || errors.Is(err, context.DeadlineExceeded):
			o.opts.Logger.Debug().Err(err).Int("waiting", o.Len()).Msg("outbox: store still unavailable")
			return
		default:
			o.opts.Logger.Warn().Err(err).Str("call_sid", e.Completion.CallID).Msg("outbox: not applied yet; tried again next pass")
		}
	}
}

// pending reads the waiting entries, oldest first.
func (o *Outbox) pending() []Entry {
	var out []Entry
	o.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucket).ForEach(func(_, v []byte) error {
			var e Entry
			if json.Unmarshal(v, &e) == nil {
				out = append(out, e)
			}
			return nil
		})
	})
	slices.SortStableFunc(out, func(a, b Entry) int { return a.Completion.At.Compare(b.Completion.At) })
	return out
}

// remove deletes an applied or dropped entry.
func (o *Outbox) remove(e Entry) {
	err := o.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucket).Delete(e.key())
	})
	if err != nil {
		o.opts.Logger.Error().Err(err).Msg("outbox: delete completion")
	}
}

// recount sets the depth and oldest arrival from the file.
func (o *Outbox) recount() {
	left := o.pending()
	o.mu.Lock()
	defer o.mu.Unlock()
	o.depth, o.oldest = len(left), time.Time{}
	if len(left) > 0 {
		o.oldest = left[0].Completion.At
	}
}

// count adds n entries, the newest arriving at at.
func (o *Outbox) count(n int, at time.Time) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.depth += n
	if o.oldest.IsZero() || at.Before(o.oldest) {
		o.oldest = at
	}
}

// age is how long the oldest entry has waited.
func (o *Outbox) age() time.Duration {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.depth == 0 || o.oldest.IsZero() {
		return 0
	}
	return o.opts.Now().Sub(o.oldest)
}

// key is an entry's key: one per call and kind, so a platform's retries
// of one report are one entry.
func (e Entry) key() []byte {
	kind := "completion"
	if e.End != nil {
		kind = "end"
	}
	return []byte(e.Tenant + "\x00" + kind + "\x00" + e.Completion.CallID)
}

func cmpDuration(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}
