package service

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/stickycalls/stickycalls/config"
	"github.com/stickycalls/stickycalls/context/boltstore"
	"github.com/stickycalls/stickycalls/context/callcontext"
	"github.com/stickycalls/stickycalls/context/keys"
	"github.com/stickycalls/stickycalls/context/ratelimit"
	"github.com/stickycalls/stickycalls/context/redisstore"
	"github.com/stickycalls/stickycalls/context/storemetrics"
	"github.com/stickycalls/stickycalls/httpapi"
)

// Backend is the store in use, with what goes with it.
type Backend struct {
	Store   storemetrics.Measured
	Limiter httpapi.Limiter
	Name    string // "bbolt" or "redis"
	// Collectors are the store's metrics.
	Collectors []prometheus.Collector

	run   func(ctx context.Context, logger zerolog.Logger)
	close func() error
}

// OpenStore opens Redis when STICKYCALLS_REDIS_URL is set, else the
// embedded store (opened with opts), waiting at most lockWait for another
// process to let go of its file. It is the only place that knows which is
// in use.
func OpenStore(ctx context.Context, cfg config.Config, lockWait time.Duration, opts ...boltstore.Option) (Backend, error) {
	if cfg.RedisURL != "" {
		return openRedis(ctx, cfg)
	}
	s, err := boltstore.Open(cfg.DataPath, lockWait, opts...)
	if err != nil {
		return Backend{}, err
	}
	return Backend{
		Store: s, Limiter: ratelimit.NewMemory(), Name: "bbolt", close: s.Close,
		run: func(ctx context.Context, logger zerolog.Logger) {
			s.Run(ctx, cfg.SweepInterval, time.Now, func(err error) {
				logger.Error().Err(err).Msg("sweeping expired data failed; the next sweep tries again")
			})
		},
	}, nil
}

// waitForStore opens the store for serve. A Redis that does not answer yet
// (started beside the service by docker-compose, or restarting) is tried
// again, every attempt logged, until STICKYCALLS_STORE_STARTUP_WAIT is
// spent; any other error, such as a bad URL or a locked file, is returned
// at once.
func waitForStore(ctx context.Context, logger zerolog.Logger, cfg config.Config) (Backend, error) {
	deadline := time.Now().Add(cfg.StoreStartupWait)
	pause := 100 * time.Millisecond
	for {
		be, err := OpenStore(ctx, cfg, time.Second)
		if err == nil || !errors.Is(err, callcontext.ErrUnavailable) || time.Now().Add(pause).After(deadline) {
			return be, err
		}
		logger.Warn().Err(err).Dur("retry_in", pause).Msg("the store does not answer yet; trying again")
		select {
		case <-ctx.Done():
			return Backend{}, err
		case <-time.After(pause):
		}
		pause = min(2*pause, 2*time.Second)
	}
}

// Run does the store's background work (sweeping, heartbeats) until ctx is
// done, logging what fails.
func (b Backend) Run(ctx context.Context, logger zerolog.Logger) { b.run(ctx, logger) }

// Close closes the store.
func (b Backend) Close() error { return b.close() }

// Keys is the keyring of b's store, on the wall clock, as the keys
// commands use it when no server holds the store.
func (b Backend) Keys() *keys.Keyring { return keys.New(b.Store, time.Now) }

// redisLog adapts zerolog to go-redis's logger.
type redisLog struct{ l zerolog.Logger }

// redisLogOnce guards go-redis's logger, which is process-wide: it is set
// once, by the first server of the process (tests run several).
var redisLogOnce sync.Once

// logRedis sends go-redis's own log lines, which it writes through a
// package-level logger of its own, to ours (JSON, redacted), at most a few
// lines a second.
func logRedis(logger zerolog.Logger) {
	redisLogOnce.Do(func() {
		redis.SetLogger(redisLog{logger.Sample(&zerolog.BurstSampler{Burst: 5, Period: time.Second})})
	})
}

func (r redisLog) Printf(_ context.Context, format string, v ...any) {
	r.l.Warn().Str("component", "redis").Msg(fmt.Sprintf(format, v...))
}

func openRedis(ctx context.Context, cfg config.Config) (Backend, error) {
	opts, err := redisstore.ParseURL(cfg.RedisURL, cfg.RedisSentinelMaster)
	if err != nil {
		return Backend{}, fmt.Errorf("STICKYCALLS_REDIS_URL: %w", err)
	}
	opts.WaitReplicas = cfg.RedisWaitReplicas
	s, err := redisstore.Open(ctx, opts)
	if err != nil {
		return Backend{}, fmt.Errorf("open redis: %w", err)
	}
	l := s.Limiter(cfg.RateLimitTimeout)
	fallbacks := prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "stickycalls_rate_limit_fallbacks_total",
		Help: "Rate-limit decisions made without Redis, on this instance's share of the limit.",
	}, func() float64 { return float64(l.Fallbacks()) })
	instances := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "stickycalls_instances", Help: "Service instances sharing the Redis, as last seen.",
	}, func() float64 { return float64(l.Instances()) })
	return Backend{
		Store: s, Limiter: l, Name: "redis", close: s.Close,
		run:        func(ctx context.Context, _ zerolog.Logger) { l.Heartbeat(ctx, 10*time.Second, time.Now) },
		Collectors: []prometheus.Collector{fallbacks, instances},
	}, nil
}
