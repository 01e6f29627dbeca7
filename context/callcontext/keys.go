package callcontext

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
)

// ErrBadKey means a key is missing, malformed, unknown or revoked. The
// cases are not told apart, so a caller learns nothing from the difference.
var ErrBadKey = errors.New("invalid API key")

var keyFormat = regexp.MustCompile(`^sk_(test|prod|live)_[A-Za-z0-9]{32,}$`)

// HashKey is how a key is stored: only its SHA-256. Keys carry 190 bits of
// randomness, so a slow hash would add latency to every request and no
// safety.
func HashKey(secret string) string {
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

// CreateKey makes a key for a tenant and mode and stores its hash. The
// secret is returned once and never stored.
func (s *Service) CreateKey(ctx context.Context, tenant string, mode Mode) (string, APIKey, error) {
	if mode != Test && mode != Prod {
		return "", APIKey{}, fmt.Errorf("mode must be test or prod, not %q", mode)
	}
	secret := "sk_" + string(mode) + "_" + randomString(32)
	k := APIKey{
		ID: "key_" + strings.ToLower(randomString(8)), Tenant: tenant, Mode: mode,
		Hash: HashKey(secret), Prefix: secret[:12], Created: s.now().UTC(),
	}
	if err := s.store.PutKey(ctx, k); err != nil {
		return "", APIKey{}, fmt.Errorf("store key: %w", err)
	}
	return secret, k, nil
}

// Keys lists every stored key.
func (s *Service) Keys(ctx context.Context) ([]APIKey, error) { return s.store.Keys(ctx) }

// RevokeKey revokes a key by id.
func (s *Service) RevokeKey(ctx context.Context, id string) error {
	s.keys.forget(id)
	return s.store.RevokeKey(ctx, id, s.now().UTC())
}

// Authenticate returns the live key whose secret is given, or ErrBadKey.
func (s *Service) Authenticate(ctx context.Context, secret string) (APIKey, error) {
	if !keyFormat.MatchString(secret) {
		return APIKey{}, ErrBadKey
	}
	// sk_live_ is the same key as sk_prod_ with another prefix.
	hash := HashKey(strings.Replace(secret, "sk_live_", "sk_prod_", 1))
	if k, ok := s.keys.get(hash, s.now()); ok {
		return k, nil
	}
	k, err := s.store.KeyByHash(ctx, hash)
	if errors.Is(err, ErrNotFound) {
		return APIKey{}, ErrBadKey
	}
	if err != nil {
		return APIKey{}, fmt.Errorf("read key: %w", err)
	}
	if subtle.ConstantTimeCompare([]byte(k.Hash), []byte(hash)) != 1 || !k.Revoked.IsZero() {
		return APIKey{}, ErrBadKey
	}
	s.keys.put(hash, k, s.now())
	return k, nil
}

// keyCacheTTL is how long a live key is trusted without asking the store:
// a key revoked by another process stops working within it.
const keyCacheTTL = 5 * time.Second

// keyCache keeps recently checked live keys, so that a request does not
// pay a store round trip for its key. Unknown keys are never cached.
type keyCache struct {
	mu   sync.Mutex
	keys map[string]cachedKey // by hash
}

type cachedKey struct {
	key   APIKey
	until time.Time
}

func (c *keyCache) get(hash string, now time.Time) (APIKey, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.keys[hash]
	if !ok || !now.Before(e.until) {
		delete(c.keys, hash)
		return APIKey{}, false
	}
	return e.key, true
}

func (c *keyCache) put(hash string, k APIKey, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.keys == nil {
		c.keys = map[string]cachedKey{}
	}
	c.keys[hash] = cachedKey{k, now.Add(keyCacheTTL)}
}

// forget drops a key, by id, so that this process stops trusting it at once.
func (c *keyCache) forget(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for hash, e := range c.keys {
		if e.key.ID == id {
			delete(c.keys, hash)
		}
	}
}

// TouchKey records a key's use.
func (s *Service) TouchKey(ctx context.Context, id string) error {
	return s.store.TouchKey(ctx, id, s.now().UTC())
}

// Now is the service's clock, for callers that must agree with it.
func (s *Service) Now() time.Time { return s.now().UTC() }
