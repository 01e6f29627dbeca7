// Package keys is the API's keys: made, listed, revoked, and checked on
// every request. Only a key's SHA-256 is stored; its secret is shown once.
package keys

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/stickycalls/stickycalls/context/callcontext"
)

// ErrBadKey means a key is missing, malformed, unknown or revoked. The
// cases are not told apart, so a caller learns nothing from the difference.
var ErrBadKey = errors.New("invalid API key")

// Key is a stored API key. Only a hash of the secret is kept.
type Key struct {
	ID       string           `json:"id"`
	Tenant   string           `json:"tenant"`
	Mode     callcontext.Mode `json:"mode"`
	Hash     string           `json:"hash"`
	Prefix   string           `json:"prefix"` // the key's first 12 characters
	Created  time.Time        `json:"created"`
	LastUsed time.Time        `json:"last_used,omitzero"`
	Revoked  time.Time        `json:"revoked,omitzero"`
}

// Store keeps the keys; both of the service's stores implement it.
type Store interface {
	PutKey(ctx context.Context, k Key) error
	// KeyByHash returns the key with that hash or callcontext.ErrNotFound.
	KeyByHash(ctx context.Context, hash string) (Key, error)
	Keys(ctx context.Context) ([]Key, error)
	// RevokeKey marks a key revoked. callcontext.ErrNotFound if absent.
	RevokeKey(ctx context.Context, id string, now time.Time) error
	TouchKey(ctx context.Context, id string, now time.Time) error
}

// Keyring manages the keys of a store, and checks them with a short-lived
// cache, so that a request does not pay a store round trip for its key.
type Keyring struct {
	store Store
	now   func() time.Time
	cache cache
}

// New returns the keyring of store, on the clock now.
func New(store Store, now func() time.Time) *Keyring {
	return &Keyring{store: store, now: now}
}

var keyFormat = regexp.MustCompile(`^sk_(test|prod|live)_[A-Za-z0-9]{32,}$`)

// Hash is how a key is stored: only its SHA-256. Keys carry 190 bits of
// randomness, so a slow hash would add latency to every request and no
// safety.
func Hash(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

const keyAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

func randomString(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	for i := range b {
		b[i] = keyAlphabet[int(b[i])%len(keyAlphabet)] // 256 % 62 bias is negligible at 32 chars
	}
	return string(b)
}

// Create makes a key for a tenant and mode and stores its hash. The
// secret is returned once and never stored.
func (r *Keyring) Create(ctx context.Context, tenant string, mode callcontext.Mode) (string, Key, error) {
	if mode != callcontext.Test && mode != callcontext.Prod {
		return "", Key{}, fmt.Errorf("mode must be test or prod, not %q", mode)
	}
	secret := "sk_" + string(mode) + "_" + randomString(32)
	k := Key{
		ID: "key_" + strings.ToLower(randomString(8)), Tenant: tenant, Mode: mode,
		Hash: Hash(secret), Prefix: secret[:12], Created: r.now().UTC(),
	}
	if err := r.store.PutKey(ctx, k); err != nil {
		return "", Key{}, fmt.Errorf("store key: %w", err)
	}
	return secret, k, nil
}

// List lists every stored key.
func (r *Keyring) List(ctx context.Context) ([]Key, error) { return r.store.Keys(ctx) }

// Revoke revokes a key by id. The cache forgets it before and after the
// store revokes it; a check that read the key from the store meanwhile
// does not cache what it read (see cache.put).
func (r *Keyring) Revoke(ctx context.Context, id string) error {
	r.cache.forget(id)
	err := r.store.RevokeKey(ctx, id, r.now().UTC())
	r.cache.forget(id)
	return err
}

// Authenticate returns the live key whose secret is given, or ErrBadKey.
func (r *Keyring) Authenticate(ctx context.Context, secret string) (Key, error) {
	if !keyFormat.MatchString(secret) {
		return Key{}, ErrBadKey
	}
	// sk_live_ is the same key as sk_prod_ with another prefix.
	hash := Hash(strings.Replace(secret, "sk_live_", "sk_prod_", 1))
	if k, ok := r.cache.get(hash, r.now()); ok {
		return k, nil
	}
	epoch := r.cache.epoch()
	k, err := r.store.KeyByHash(ctx, hash)
	if errors.Is(err, callcontext.ErrNotFound) {
		return Key{}, ErrBadKey
	}
	if err != nil {
		return Key{}, fmt.Errorf("read key: %w", err)
	}
	if subtle.ConstantTimeCompare([]byte(k.Hash), []byte(hash)) != 1 || !k.Revoked.IsZero() {
		return Key{}, ErrBadKey
	}
	r.cache.put(hash, k, r.now(), epoch)
	return k, nil
}

// Touch records a key's use.
func (r *Keyring) Touch(ctx context.Context, id string) error {
	return r.store.TouchKey(ctx, id, r.now().UTC())
}

// cacheTTL is how long a live key is trusted without asking the store:
// a key revoked by another process stops working within it.
const cacheTTL = 5 * time.Second

// cache keeps recently checked live keys, so that a request does not
// pay a store round trip for its key. Unknown keys are never cached.
type cache struct {
	mu   sync.Mutex
	keys map[string]cachedKey // by hash
	// forgets counts revocations, so that a key read from the store before
	// one is not cached after it (see put).
	forgets uint64
}

type cachedKey struct {
	key   Key
	until time.Time
}

func (c *cache) get(hash string, now time.Time) (Key, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.keys[hash]
	if !ok || !now.Before(e.until) {
		delete(c.keys, hash)
		return Key{}, false
	}
	return e.key, true
}

// epoch is the cache's revocation count, to give put.
func (c *cache) epoch() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.forgets
}

// put caches k, unless a key was revoked since epoch: k was read from the
// store before then, and may be that key.
func (c *cache) put(hash string, k Key, now time.Time, epoch uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.forgets != epoch {
		return
	}
	if c.keys == nil {
		c.keys = map[string]cachedKey{}
	}
	c.keys[hash] = cachedKey{k, now.Add(cacheTTL)}
}

// forget drops a key, by id, so that this process stops trusting it at once.
func (c *cache) forget(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.forgets++
	for hash, e := range c.keys {
		if e.key.ID == id {
			delete(c.keys, hash)
		}
	}
}
