// Package redisstore is the production callcontext.Store: Redis (a single
// node, Sentinel or a Cluster) through go-redis's UniversalClient. Any number
// of service instances may share it. It behaves like context/boltstore in
// every method, as context/storetest checks.
//
// # Key layout
//
// P is Options.Prefix and S is "P" + "t:<tenant>:<mode>" (every part escaped
// so that '{', '}', ':' and '%' cannot appear in it). Braces mark the hash
// tag: keys with the same tag share a Cluster slot and can change together
// in one Lua script.
//
//	{S:c:<ref>}               hash: customer record ("rec": MessagePack, JSON before; "v": version;
//	                          "c:<call id>": the expiry of a call its start filed, for Erase)
//	{S:c:<ref>}:lock          string: lock of an end that changes several customers
//	{S:a:<ani>}               hash: ANI index ("l:<ref>": link JSON; "lt", "ltx", "ltk": line type,
//	                          expiry, a time the key's TTL reaches)
//	{S:o:<key:value>}         hash: external id index (<ref> → link expiry)
//	{S}:call:<id>             string: call record, a MessagePack map of start and end fields, leases,
//	                          responses (a hash before, rewritten by its next write)
//	{S}:call:<id>:keys        set: the idempotency keys claimed for the call
//	{S}:stream:<id>           hash: the call's media stream lease (holder, expiry)
//	{S}:idem:<op>:<key>       hash: Idempotency-Key record (print, call key, expiry)
//	{S}:usage:<period>        hash: requests, billable, non_billable (ends, and starts under a quota)
//	{S}:tally:<hour>          hash: the hour's tallies; a start's field ends in its usage code
//	{S}:rc:<ref>              set: call records that name the customer (ends and answers)
//	{Pkeys}:k:<id>            hash: API key (JSON, revoked, last_used)
//	{Pkeys}:h, {Pkeys}:ids    hash and set: key hash → key, all keys
//
// Calls, idempotency keys and usage counters of a scope share the scope's
// slot, so a claim (idempotency key, lease and quota) is one Lua script and
// exact under concurrency. Each customer has its own slot; index entries
// have their own. Times that scripts compare are passed in as zero-padded
// Unix nanoseconds; no script reads the clock.
//
// # Atomicity
//
// A customer's change is one Lua script in its slot that checks the stored
// version: that script is the commit point. CommitEnd writes index entries
// first (harmless if the end then fails), then the customers (when an end
// changes several, it locks them all first and writes the target last),
// then the call record and usage counters; on a single node one script
// does all of it, in that order. Resolve trusts an index entry
// only when the customer's own record holds the live link, so entries of a
// failed end are never reported. Erase removes index entries and call
// records before the customer, so a retried erase finishes the job.
//
// # Expiry
//
// Every key's TTL is the expiry of what it holds, measured from the time
// the caller passed in, plus a minute. Reads filter what has expired by the
// passed-in time, exactly as the bbolt store does; the TTLs only reclaim
// memory.
//
// # Round trips
//
// A wave is one round trip: one command, or one pipeline that a Cluster
// splits across nodes and sends at once. WithWaveCounter attaches a counter
// to a context; every store call made with it adds its waves (a new
// connection's handshake is not counted). Claim, Release, SaveStart,
// ConfirmCall, Customers, Call, Usage and the key and Lookup-cache methods
// take one wave. On a single node (or Sentinel), where a script may read
// keys of any slot, a start's claim also follows the index entries to the
// customers, so a start takes two waves; on a Cluster a returning caller's
// customers are read in a wave of their own, between the claim and the
// save. TestRequestCommands counts the commands: a returning caller's
// start runs 10 on a single node (two scripts: the claim with its reads,
// the save with the counters), a new caller's 8. Resolve takes one when
// no index entry matches (or only a customer_ref is given) and two for a
// returning caller (a third only if dangling entries hid the ANI's latest
// customers). CommitEnd takes one on
// a single node (one script: see commitScript), unless it deletes a
// customer; on a Cluster three for an end that writes one customer, four
// when it also changes others (an external id moved). Erase takes three.
package redisstore

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/stickycalls/stickycalls/context/callcontext"
	"github.com/stickycalls/stickycalls/context/storage"
)

var _ callcontext.Store = (*Store)(nil)

// Options configure a Store. Zero durations take their defaults.
type Options struct {
	Addrs          []string // host:port of the node, the Cluster nodes to start from, or the sentinels
	Cluster        bool     // Addrs are Cluster nodes (one address of a cluster node is detected too)
	SentinelMaster string   // Addrs are sentinels watching this master
	Username       string
	Password       string
	DB             int // single node and Sentinel only
	TLS            *tls.Config
	Prefix         string // prepended to every key; must not hold '{' or '}'

	DialTimeout  time.Duration // default 2s
	ReadTimeout  time.Duration // default 1s
	WriteTimeout time.Duration // default ReadTimeout
	PoolTimeout  time.Duration // default 2s
	LockTTL      time.Duration // how long an end holds the customers it changes, default 5s

	// WaitReplicas, when above 0, makes every write wait (WAIT, on the
	// connection that wrote) until that many replicas have it, for at most
	// WaitTimeout (default half the ReadTimeout); a write too few took is
	// answered as unavailable, never acknowledged, so a failover cannot
	// lose it.
	WaitReplicas int
	WaitTimeout  time.Duration
}

// Store is a callcontext.Store in Redis. It is safe for concurrent use.
type Store struct {
	rdb     redis.UniversalClient
	cluster bool // scripts must keep to one slot
	prefix  string
	lockTTL time.Duration

	waitReplicas int
	waitTimeout  time.Duration
}

// Open connects to Redis, checks that it answers and loads the scripts. An
// unreachable Redis gives an error that wraps callcontext.ErrUnavailable.
func Open(ctx context.Context, opts Options) (*Store, error) {
	if len(opts.Addrs) == 0 {
		return nil, errors.New("redisstore: no address")
	}
	if strings.ContainsAny(opts.Prefix, "{}") {
		return nil, fmt.Errorf("redisstore: prefix %q must not hold '{' or '}'", opts.Prefix)
	}
	if !opts.Cluster && opts.SentinelMaster == "" && len(opts.Addrs) == 1 {
		cluster, err := isCluster(ctx, opts)
		if err != nil {
			return nil, err
		}
		opts.Cluster = cluster
	}
	s := &Store{rdb: newClient(opts), cluster: opts.Cluster, prefix: opts.Prefix, lockTTL: orDefault(opts.LockTTL, 5*time.Second),
		waitReplicas: opts.WaitReplicas, waitTimeout: orDefault(opts.WaitTimeout, orDefault(opts.ReadTimeout, time.Second)/2)}
	if err := s.loadScripts(ctx); err != nil {
		s.rdb.Close()
		return nil, err
	}
	return s, nil
}

func newClient(opts Options) redis.UniversalClient {
	rdb := redis.NewUniversalClient(&redis.UniversalOptions{
		Addrs: opts.Addrs, IsClusterMode: opts.Cluster, MasterName: opts.SentinelMaster,
		Username: opts.Username, Password: opts.Password, DB: opts.DB, TLSConfig: opts.TLS,
		DialTimeout:  orDefault(opts.DialTimeout, 2*time.Second),
		ReadTimeout:  orDefault(opts.ReadTimeout, time.Second),
		WriteTimeout: orDefault(opts.WriteTimeout, orDefault(opts.ReadTimeout, time.Second)),
		PoolTimeout:  orDefault(opts.PoolTimeout, 2*time.Second),
		// One dial attempt, then the error: the caller answers 503 and its
		// client retries, rather than the request waiting out retries.
		DialerRetries: 1,
		// A retried script could run twice (a claim would then meet its own
		// lease), so failures are reported instead.
		MaxRetries:            -1,
		ContextTimeoutEnabled: true,
	})
	rdb.AddHook(waveHook{})
	return rdb
}

// isCluster reports whether the one node of opts is a Cluster node, so that
// a single URL naming a cluster node works.
func isCluster(ctx context.Context, opts Options) (bool, error) {
	rdb := newClient(opts)
	defer rdb.Close()
	info, err := rdb.Info(ctx, "cluster").Result()
	if err != nil {
		return false, storeErr("open", err)
	}
	return strings.Contains(info, "cluster_enabled:1"), nil
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// Close closes the connections.
func (s *Store) Close() error { return s.rdb.Close() }

// Ping reports whether Redis answers PING; its error wraps
// callcontext.ErrUnavailable when Redis cannot be reached.
func (s *Store) Ping(ctx context.Context) error {
	return storeErr("ping", s.rdb.Ping(ctx).Err())
}

// storeErr wraps a Redis error for the store's callers: connection
// failures, timeouts and a Redis that cannot serve also wrap
// callcontext.ErrUnavailable.
func storeErr(what string, err error) error {
	switch {
	case err == nil:
		return nil
	case unavailable(err):
		return fmt.Errorf("redis %s: %w: %w", what, callcontext.ErrUnavailable, err)
	}
	return fmt.Errorf("redis %s: %w", what, err)
}

// unavailableReplies are error replies of a Redis that cannot serve now.
var unavailableReplies = []string{"LOADING", "READONLY", "MASTERDOWN", "CLUSTERDOWN", "TRYAGAIN", "NOREPLICAS", "BUSY", "ERR max number of clients",
	"MOVED", "ASK"} // a slot that moved, seen by a write sent to its master directly (WaitReplicas on a Cluster)

func unavailable(err error) bool {
	if errors.Is(err, context.Canceled) {
		return false // the caller gave up; Redis may be fine
	}
	var reply redis.Error
	if !errors.As(err, &reply) {
		return true // no reply at all: dial, I/O, timeout, pool or closed client
	}
	for _, p := range unavailableReplies {
		if strings.HasPrefix(reply.Error(), p) {
			return true
		}
	}
	return false
}

// names builds the keys of one scope.
type names struct {
	space string // "P t:<tenant>:<mode>", the start of every tag
	tag   string // "{space}", the scope's own slot
}

func (s *Store) names(sc callcontext.Scope) names {
	space := s.prefix + "t:" + esc(sc.Tenant) + ":" + esc(string(sc.Mode))
	return names{space: space, tag: "{" + space + "}"}
}

func (n names) customer(ref string) string { return "{" + n.space + ":c:" + esc(ref) + "}" }
func (n names) lock(ref string) string     { return n.customer(ref) + ":lock" }
func (n names) ani(ani string) string      { return "{" + n.space + ":a:" + esc(ani) + "}" }
func (n names) owner(id string) string     { return "{" + n.space + ":o:" + esc(id) + "}" }
func (n names) call(id string) string      { return n.tag + ":call:" + esc(id) }
func (n names) usage(period string) string { return n.tag + ":usage:" + esc(period) }
func (n names) tallies(t time.Time) string { return n.tag + ":tally:" + storage.TallyHour(t) }
func (n names) stream(id string) string    { return n.tag + ":stream:" + esc(id) }
func (n names) refCalls(ref string) string { return n.tag + ":rc:" + esc(ref) }
func (n names) idem(op storage.Op, key string) string {
	return n.tag + ":idem:" + string(op) + ":" + esc(key)
}

var escaper = strings.NewReplacer("%", "%25", "{", "%7B", "}", "%7D", ":", "%3A")

// esc escapes a name part so that it cannot end a hash tag or run into the
// next part.
func esc(s string) string { return escaper.Replace(s) }
