package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/stickycalls/stickycalls/config"
	"github.com/stickycalls/stickycalls/context/boltstore"
	"github.com/stickycalls/stickycalls/context/callcontext"
	"github.com/stickycalls/stickycalls/context/redisstore"
)

// backend is the store in use, with what goes with it.
type backend struct {
	store   callcontext.Store
	limiter callcontext.Limiter
	name    string
	// run does the store's background work (sweeping, heartbeats) until
	// ctx is done.
	run   func(ctx context.Context)
	close func() error
	// collectors are the store's metrics.
	collectors []prometheus.Collector
}

// openStore opens Redis when STICKYCALLS_REDIS_URL is set, else the
// embedded store (opened with opts). It is the only place that knows which
// is in use.
func openStore(ctx context.Context, cfg config.Config, lockWait time.Duration, opts ...boltstore.Option) (backend, error) {
	if cfg.RedisURL != "" {
		return openRedis(ctx, cfg)
	}
	s, err := boltstore.Open(cfg.DataPath, lockWait, opts...)
	if err != nil {
		return backend{}, err
	}
	return backend{
		store: s, limiter: callcontext.NewMemoryLimiter(), name: "bbolt", close: s.Close,
		run: func(ctx context.Context) { s.Run(ctx, cfg.SweepInterval, time.Now) },
	}, nil
}

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

func openRedis(ctx context.Context, cfg config.Config) (backend, error) {
	opts, err := redisstore.ParseURL(cfg.RedisURL, cfg.RedisSentinelMaster)
	if err != nil {
		return backend{}, fmt.Errorf("STICKYCALLS_REDIS_URL: %w", err)
	}
	opts.WaitReplicas = cfg.RedisWaitReplicas
	s, err := redisstore.Open(ctx, opts)
	if err != nil {
		return backend{}, fmt.Errorf("open redis: %w", err)
	}
	l := s.Limiter(cfg.RateLimitTimeout)
	fallbacks := prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "stickycalls_rate_limit_fallbacks_total",
		Help: "Rate-limit decisions made without Redis, on this instance's share of the limit.",
	}, func() float64 { return float64(l.Fallbacks()) })
	instances := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "stickycalls_instances", Help: "Service instances sharing the Redis, as last seen.",
	}, func() float64 { return float64(l.Instances()) })
	return backend{
		store: s, limiter: l, name: "redis", close: s.Close,
		run:        func(ctx context.Context) { l.Heartbeat(ctx, 10*time.Second, time.Now) },
		collectors: []prometheus.Collector{fallbacks, instances},
	}, nil
}
