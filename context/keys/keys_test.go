package keys_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stickycalls/stickycalls/context/boltstore"
	"github.com/stickycalls/stickycalls/context/callcontext"
	"github.com/stickycalls/stickycalls/context/keys"
)

// A key made is shown once and stored as its hash; it authenticates as
// itself and as its sk_live_ twin, and nothing else does; revoked, it stops
// at once in this process.
func TestKeyring(t *testing.T) {
	store, err := boltstore.Open(filepath.Join(t.TempDir(), "keys.db"), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	ring := keys.New(store, time.Now)
	ctx := t.Context()
	secret, k, err := ring.Create(ctx, "acme", callcontext.Prod)
	if err != nil || !strings.HasPrefix(secret, "sk_prod_") || k.Hash != keys.Hash(secret) || k.Prefix != secret[:12] {
		t.Fatalf("Create() = %q, %+v, %v", secret, k, err)
	}
	if _, _, err := ring.Create(ctx, "acme", "staging"); err == nil {
		t.Error("a key of mode staging was made")
	}
	for _, s := range []string{secret, strings.Replace(secret, "sk_prod_", "sk_live_", 1)} {
		if got, err := ring.Authenticate(ctx, s); err != nil || got.ID != k.ID || got.Tenant != "acme" {
			t.Errorf("Authenticate(%.12s…) = %+v, %v; want key %s", s, got, err, k.ID)
		}
	}
	for _, s := range []string{"", "sk_prod_short", strings.Replace(secret, "sk_prod_", "sk_test_", 1), secret + "x"} {
		if _, err := ring.Authenticate(ctx, s); !errors.Is(err, keys.ErrBadKey) {
			t.Errorf("Authenticate(%q) = %v, want ErrBadKey", s, err)
		}
	}
	if err := ring.Revoke(ctx, k.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := ring.Authenticate(ctx, secret); !errors.Is(err, keys.ErrBadKey) {
		t.Errorf("a revoked key authenticates: %v", err)
	}
	all, err := ring.List(ctx)
	if err != nil || len(all) != 1 || all[0].Revoked.IsZero() || strings.Contains(all[0].Hash, secret) {
		t.Errorf("List() = %+v, %v; want the one key, revoked, without its secret", all, err)
	}
}

// slowRead holds a key read, once, until released: the read a revocation
// overtakes.
type slowRead struct {
	keys.Store
	read, release chan struct{}
}

func (s *slowRead) KeyByHash(ctx context.Context, hash string) (keys.Key, error) {
	k, err := s.Store.KeyByHash(ctx, hash)
	if s.read != nil {
		close(s.read)
		<-s.release
		s.read = nil
	}
	return k, err
}

// A check that read a key just before it was revoked does not put it in
// the cache, where it would be trusted for seconds after its revocation.
func TestRevokeOvertakesARead(t *testing.T) {
	store, err := boltstore.Open(filepath.Join(t.TempDir(), "keys.db"), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	slow := &slowRead{Store: store}
	ring := keys.New(slow, time.Now)
	secret, k, err := ring.Create(t.Context(), "acme", callcontext.Test)
	if err != nil {
		t.Fatal(err)
	}
	slow.read, slow.release = make(chan struct{}), make(chan struct{})
	done := make(chan error)
	go func() { _, err := ring.Authenticate(t.Context(), secret); done <- err }()
	<-slow.read // the check has read the live key
	if err := ring.Revoke(t.Context(), k.ID); err != nil {
		t.Fatal(err)
	}
	close(slow.release)
	<-done // it may pass: it began before the revocation
	if _, err := ring.Authenticate(t.Context(), secret); !errors.Is(err, keys.ErrBadKey) {
		t.Errorf("after the revocation the key still authenticates (%v): the overtaken read cached it", err)
	}
}
