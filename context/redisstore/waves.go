package redisstore

import (
	"context"
	"slices"
	"sync/atomic"

	"github.com/redis/go-redis/v9"
)

// Waves counts the round-trip waves of the store calls made with a context
// from WithWaveCounter. It is safe for concurrent use.
type Waves struct{ n atomic.Int64 }

// N returns the waves counted so far.
func (w *Waves) N() int64 { return w.n.Load() }

type wavesKey struct{}

// WithWaveCounter returns a context that counts the waves of every store
// call made with it, and the counter.
func WithWaveCounter(ctx context.Context) (context.Context, *Waves) {
	w := &Waves{}
	return context.WithValue(ctx, wavesKey{}, w), w
}

func countWave(ctx context.Context) {
	if w, ok := ctx.Value(wavesKey{}).(*Waves); ok {
		w.n.Add(1)
	}
}

// waveHook counts one wave per command and one per pipeline. It is added
// to the top-level client, so a pipeline that a Cluster splits across nodes
// and sends at once counts once. The handshake of a new connection is not
// counted: it is the pool's work, not the store call's.
type waveHook struct{}

func (waveHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (waveHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if !handshake(cmd) {
			countWave(ctx)
		}
		return next(ctx, cmd)
	}
}

func (waveHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if slices.ContainsFunc(cmds, func(c redis.Cmder) bool { return !handshake(c) }) {
			countWave(ctx)
		}
		return next(ctx, cmds)
	}
}

// handshake reports whether cmd is one go-redis sends when it opens a
// connection; the store itself never sends these.
func handshake(cmd redis.Cmder) bool {
	switch cmd.Name() {
	case "hello", "auth", "select", "readonly", "client":
		return true
	}
	return false
}
