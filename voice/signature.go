package voice

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/rs/zerolog"
	"github.com/twilio/twilio-go/client"
)

// maxForm bounds a webhook's form body.
const maxForm = 64 << 10

type tenantKey struct{}

// tenantOf is the tenant whose token signed the request.
func tenantOf(ctx context.Context) string {
	t, _ := ctx.Value(tenantKey{}).(string)
	return t
}

// account returns the account that owns accountSID: the tenant that claims
// it, else the tenant that claims no account.
func (c Config) account(accountSID string) (Account, bool) {
	var catchAll *Account
	for i, a := range c.Accounts {
		if a.AccountSID != "" && a.AccountSID == accountSID {
			return a, true
		}
		if a.AccountSID == "" && catchAll == nil {
			catchAll = &c.Accounts[i]
		}
	}
	if catchAll == nil {
		return Account{}, false
	}
	return *catchAll, true
}

// RequireSignature passes on only requests that carry a valid
// X-Twilio-Signature for the configured public URL, made with the current
// or previous auth token of the tenant owning the request's AccountSid. Any
// other request gets 403 and touches nothing else.
//
// A refusal logs, at most every ten seconds, the URL the signature was
// checked against (query values left out): behind a proxy that rewrites
// the scheme or host, that is the first thing to compare with the URL set
// in Twilio's console.
func RequireSignature(cfg Config, logger zerolog.Logger) func(http.Handler) http.Handler {
	refusals := logger.Sample(&zerolog.BurstSampler{Burst: 1, Period: 10 * time.Second})
	refuse := func(w http.ResponseWriter, r *http.Request, why string) {
		refusals.Warn().Str("url", withoutQueryValues(cfg.baseURL(r)+r.URL.RequestURI())).Str("reason", why).
			Msg("Twilio signature refused")
		forbid(w)
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			sig := r.Header.Get("X-Twilio-Signature")
			if sig == "" {
				refuse(w, r, "no X-Twilio-Signature") // before reading the body
				return
			}
			body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxForm))
			form, perr := url.ParseQuery(string(body))
			if err != nil || perr != nil {
				refuse(w, r, "unreadable form")
				return
			}
			acct, ok := cfg.account(form.Get("AccountSid"))
			if !ok || !signed(cfg.baseURL(r)+r.URL.RequestURI(), form, sig, acct) {
				refuse(w, r, "signature does not match")
				return
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
			ctx := context.WithValue(r.Context(), tenantKey{}, acct.Tenant)
			next.ServeHTTP(w, r.WithContext(ctx))
		})
	}
}

func signed(u string, form url.Values, sig string, acct Account) bool {
	if sig == "" {
		return false
	}
	params := make(map[string]string, len(form))
	for k, v := range form {
		params[k] = v[0] // Twilio signs the first value of each key
	}
	for _, tok := range []string{acct.AuthToken, acct.PreviousAuthToken} {
		if tok == "" {
			continue
		}
		v := client.NewRequestValidator(tok)
		if v.Validate(u, params, sig) {
			return true
		}
	}
	return false
}

// withoutQueryValues is u with its query's values removed, so that a log
// line shows which parameters were signed but none of their values.
func withoutQueryValues(u string) string {
	base, query, ok := strings.Cut(u, "?")
	if !ok {
		return u
	}
	keys := strings.Split(query, "&")
	for i, kv := range keys {
		k, _, _ := strings.Cut(kv, "=")
		keys[i] = k + "="
	}
	return base + "?" + strings.Join(keys, "&")
}

func forbid(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusForbidden)
	io.WriteString(w, "invalid Twilio signature\n")
}

// Sign computes the X-Twilio-Signature Twilio would send for a form posted
// to u. The call command and the tests use it.
func Sign(authToken, u string, form url.Values) string {
	return signature(authToken, u, form)
}
