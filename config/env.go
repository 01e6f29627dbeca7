package config

import (
	"cmp"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// env reads the settings that come only from the environment, with their defaults.
func (l *loader) env() Config {
	cfg := Config{
		Addr:                cmp.Or(l.getenv("STICKYCALLS_ADDR"), ":8080"),
		DataPath:            cmp.Or(l.getenv("STICKYCALLS_DATA"), "stickycalls.db"),
		RedisURL:            l.getenv("STICKYCALLS_REDIS_URL"),
		RedisSentinelMaster: l.getenv("STICKYCALLS_REDIS_SENTINEL_MASTER"),
		AdminToken:          l.getenv("STICKYCALLS_ADMIN_TOKEN"),
		LogLevel:            cmp.Or(l.getenv("STICKYCALLS_LOG_LEVEL"), "info"),
		WebhookDeadline:     l.duration("STICKYCALLS_WEBHOOK_DEADLINE", 800*time.Millisecond),
		LookupTimeout:       l.duration("STICKYCALLS_LOOKUP_TIMEOUT", 300*time.Millisecond),
		SweepInterval:       l.duration("STICKYCALLS_SWEEP_INTERVAL", 10*time.Minute),
		RateLimitTimeout:    l.duration("STICKYCALLS_RATE_LIMIT_TIMEOUT", 50*time.Millisecond),
		IdempotencyLease:    l.duration("STICKYCALLS_IDEMPOTENCY_LEASE", 30*time.Second),
		ShutdownTimeout:     l.duration("STICKYCALLS_SHUTDOWN_TIMEOUT", 15*time.Second),
		MinCallDuration:     l.duration("STICKYCALLS_MIN_CALL_DURATION", 5*time.Second),
		ReadTimeout:         l.duration("STICKYCALLS_READ_TIMEOUT", 10*time.Second),
		StoreStartupWait:    l.duration("STICKYCALLS_STORE_STARTUP_WAIT", 30*time.Second),
		RedisWaitReplicas:   l.whole("STICKYCALLS_REDIS_WAIT_REPLICAS", 0),
		MaxConnections:      l.count("STICKYCALLS_MAX_CONNECTIONS", 4096),
	}
	cfg.TLSCertFile, cfg.TLSKeyFile = l.getenv("STICKYCALLS_TLS_CERT_FILE"), l.getenv("STICKYCALLS_TLS_KEY_FILE")
	if (cfg.TLSCertFile == "") != (cfg.TLSKeyFile == "") {
		l.add("STICKYCALLS_TLS_CERT_FILE", "needs STICKYCALLS_TLS_KEY_FILE too, and the other way round")
	}
	cfg.OutboxPath = cmp.Or(l.getenv("STICKYCALLS_OUTBOX"), strings.TrimSuffix(cfg.DataPath, ".db")+".outbox.db")
	if cfg.OutboxPath == cfg.DataPath {
		l.add("STICKYCALLS_OUTBOX", "must be another file than STICKYCALLS_DATA")
	}
	if _, _, err := net.SplitHostPort(cfg.Addr); err != nil {
		l.add("STICKYCALLS_ADDR", "must be host:port or :port, got %q", cfg.Addr)
	}
	switch cfg.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		l.add("STICKYCALLS_LOG_LEVEL", "must be debug, info, warn or error, got %q", cfg.LogLevel)
	}
	// Sentinel needs the sentinels' addresses, which STICKYCALLS_REDIS_URL lists.
	if cfg.RedisSentinelMaster != "" && cfg.RedisURL == "" {
		l.add("STICKYCALLS_REDIS_SENTINEL_MASTER", "needs STICKYCALLS_REDIS_URL too")
	}
	return cfg
}

// duration reads the environment variable name as a positive duration,
// returning def when it is unset or empty.
func (l *loader) duration(name string, def time.Duration) time.Duration {
	s := l.getenv(name)
	if s == "" {
		return def
	}
	d, err := time.ParseDuration(s)
	switch {
	case err != nil:
		l.add(name, "not a duration such as 300ms or 10m: %q", s)
	case d <= 0:
		l.add(name, "must be more than zero, got %q", s)
	}
	return d
}

// count reads the environment variable name as a positive whole number,
// returning def when it is unset or empty.
func (l *loader) count(name string, def int) int {
	n, ok := l.number(name, def)
	if ok && n <= 0 {
		l.add(name, "must be a whole number above zero, got %q", l.getenv(name))
		return def
	}
	return n
}

// whole reads the environment variable name as a whole number, zero
// included, returning def when it is unset or empty.
func (l *loader) whole(name string, def int) int {
	n, ok := l.number(name, def)
	if ok && n < 0 {
		l.add(name, "must be a whole number, 0 or more, got %q", l.getenv(name))
		return def
	}
	return n
}

// number reads the environment variable name as an integer; ok is false
// when it is unset (def) or not a number (a problem is added).
func (l *loader) number(name string, def int) (n int, ok bool) {
	s := l.getenv(name)
	if s == "" {
		return def, false
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		l.add(name, "must be a whole number, got %q", s)
		return def, false
	}
	return n, true
}

// publicURL returns the file's public_url, else STICKYCALLS_PUBLIC_URL,
// without its trailing slash.
func (l *loader) publicURL(fromFile string) string {
	where, s := "public_url", fromFile
	if s == "" {
		where, s = "STICKYCALLS_PUBLIC_URL", l.getenv("STICKYCALLS_PUBLIC_URL")
	}
	if s == "" {
		return ""
	}
	s = strings.TrimSuffix(s, "/")
	u, err := url.Parse(s)
	switch {
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		l.add(where, "must be an absolute http or https URL, got %q", s)
	case strings.HasSuffix(s, "/"):
		l.add(where, "must not end with a slash, got %q", s)
	case u.User != nil:
		l.add(where, "must have no user info") // which may be a password: not echoed
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		l.add(where, "must have no query or fragment, got %q", s)
	}
	return s
}
