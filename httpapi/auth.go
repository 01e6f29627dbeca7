package httpapi

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/stickycalls/stickycalls/context/callcontext"
	"github.com/stickycalls/stickycalls/context/keys"
)

type scopeKey struct{}

func withScope(ctx context.Context, sc callcontext.Scope) context.Context {
	return context.WithValue(ctx, scopeKey{}, sc)
}

// scopeOf is the tenant and mode of the request's key.
func scopeOf(ctx context.Context) callcontext.Scope {
	sc, _ := ctx.Value(scopeKey{}).(callcontext.Scope)
	return sc
}

// touchEvery bounds how often a key's last use is written.
const touchEvery = time.Minute

// requireKey checks the bearer key, puts its scope in the context, then
// applies limit: auth comes first, the rate limit second.
func requireKey(logger zerolog.Logger, ring *keys.Keyring, limit func(http.ResponseWriter, *http.Request, callcontext.Scope) error) func(http.Handler) http.Handler {
	var mu sync.Mutex
	touched := map[string]time.Time{}
	return func(next http.Handler) http.Handler {
		return handle(logger, func(w http.ResponseWriter, r *http.Request) error {
			// The scheme name is case-insensitive (RFC 7235).
			scheme, secret, ok := strings.Cut(r.Header.Get("Authorization"), " ")
			if !ok || !strings.EqualFold(scheme, "Bearer") {
				return errUnauthorized
			}
			k, err := ring.Authenticate(r.Context(), strings.TrimSpace(secret))
			if err != nil {
				return err
			}
			sc := callcontext.Scope{Tenant: k.Tenant, Mode: k.Mode}
			noteScope(r.Context(), sc)
			mu.Lock()
			stale := time.Since(touched[k.ID]) > touchEvery
			if stale {
				touched[k.ID] = time.Now()
			}
			mu.Unlock()
			if stale {
				_ = ring.Touch(r.Context(), k.ID) // last use is informational
			}
			if err := limit(w, r, sc); err != nil {
				return err
			}
			next.ServeHTTP(w, r.WithContext(withScope(r.Context(), sc)))
			return nil
		})
	}
}
