package keys_test

import (
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
