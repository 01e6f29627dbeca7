package redisstore

import (
	"errors"
	"fmt"
	"strings"

	"github.com/redis/go-redis/v9"
)

// ParseURL turns STICKYCALLS_REDIS_URL (and STICKYCALLS_REDIS_SENTINEL_MASTER)
// into Options:
//
//   - one redis:// or rediss:// URL: a single node (or, detected by Open,
//     one node of a Cluster);
//   - a comma-separated list of such URLs: the Cluster nodes to start from;
//   - with sentinelMaster set: the URLs name the sentinels that watch that
//     master.
//
// User, password, database (the path, "/0") and rediss's TLS come from the
// first URL; the others may repeat them but not differ. The credentials are
// the data nodes' (with Sentinel: the master's, not the sentinels'). Query
// parameters go-redis knows, such as dial_timeout or read_timeout, set the
// timeouts. A Cluster has only database 0.
func ParseURL(url, sentinelMaster string) (Options, error) {
	var o Options
	for i, u := range strings.Split(url, ",") {
		u = strings.TrimSpace(u)
		if !strings.HasPrefix(u, "redis://") && !strings.HasPrefix(u, "rediss://") {
			return Options{}, fmt.Errorf("redis URL %q: want redis:// or rediss://", redact(u))
		}
		p, err := redis.ParseURL(u)
		if err != nil {
			return Options{}, fmt.Errorf("redis URL %q: %w", redact(u), err)
		}
		if i == 0 {
			o = Options{
				Username: p.Username, Password: p.Password, DB: p.DB, TLS: p.TLSConfig,
				DialTimeout: p.DialTimeout, ReadTimeout: p.ReadTimeout, WriteTimeout: p.WriteTimeout, PoolTimeout: p.PoolTimeout,
			}
		} else if p.Username != o.Username || p.Password != o.Password || p.DB != o.DB || (p.TLSConfig == nil) != (o.TLS == nil) {
			return Options{}, fmt.Errorf("redis URL %q: user, password, database and scheme must match the first URL's", redact(u))
		}
		o.Addrs = append(o.Addrs, p.Addr)
	}
	o.SentinelMaster = sentinelMaster
	o.Cluster = sentinelMaster == "" && len(o.Addrs) > 1
	if o.Cluster && o.DB != 0 {
		return Options{}, errors.New("redis URLs: a Cluster has only database 0")
	}
	return o, nil
}

// redact hides the password of a URL in error messages.
func redact(u string) string {
	scheme, rest, ok := strings.Cut(u, "://")
	if !ok {
		return u
	}
	userinfo, host, ok := strings.Cut(rest, "@")
	if !ok {
		return u
	}
	user, _, hasPass := strings.Cut(userinfo, ":")
	if !hasPass {
		return u
	}
	return scheme + "://" + user + ":xxxxx@" + host
}
