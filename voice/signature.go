package voice

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/url"

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
func RequireSignature(cfg Config) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxForm))
			form, perr := url.ParseQuery(string(body))
			if err != nil || perr != nil {
				forbid(w)
				return
			}
			acct, ok := cfg.account(form.Get("AccountSid"))
			if !ok || !signed(cfg.baseURL(r)+r.URL.RequestURI(), form, r.Header.Get("X-Twilio-Signature"), acct) {
				forbid(w)
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
