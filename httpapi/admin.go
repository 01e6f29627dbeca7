package httpapi

import (
	"crypto/subtle"
	"encoding/json"
	"net/http"
	"regexp"
	"strings"

	"github.com/rs/zerolog"

	"github.com/stickycalls/stickycalls/context/callcontext"
)

// Option changes what NewHandler serves.
type Option func(*options)

type options struct {
	adminToken string
}

// WithAdminToken serves the admin routes (/admin/keys) to requests that
// carry token as their bearer credential; without it they do not exist.
func WithAdminToken(token string) Option { return func(o *options) { o.adminToken = token } }

// requireAdmin lets through only requests that carry the admin token,
// compared in constant time: as the bearer credential, or, for a browser,
// as the password of HTTP Basic authentication (any user name), which a
// 401 asks for.
func requireAdmin(logger zerolog.Logger, token string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return handle(logger, func(w http.ResponseWriter, r *http.Request) error {
			secret := ""
			if _, password, ok := r.BasicAuth(); ok {
				secret = password
			} else if scheme, s, ok := strings.Cut(r.Header.Get("Authorization"), " "); ok && strings.EqualFold(scheme, "Bearer") {
				secret = strings.TrimSpace(s)
			}
			if subtle.ConstantTimeCompare([]byte(secret), []byte(token)) != 1 {
				w.Header().Set("WWW-Authenticate", `Basic realm="stickycalls admin", charset="UTF-8"`)
				return errUnauthorized
			}
			next.ServeHTTP(w, r)
			return nil
		})
	}
}

// keyView is a stored key as the admin routes show it: never its hash.
type keyView struct {
	ID       string           `json:"id"`
	Tenant   string           `json:"tenant"`
	Mode     callcontext.Mode `json:"mode"`
	Prefix   string           `json:"prefix"`
	Created  string           `json:"created_at"`
	LastUsed *string          `json:"last_used_at"`
	Revoked  *string          `json:"revoked_at"`
	Key      string           `json:"key,omitempty"` // the secret, in the answer to its creation only
}

func viewKey(k callcontext.APIKey) keyView {
	v := keyView{ID: k.ID, Tenant: k.Tenant, Mode: k.Mode, Prefix: k.Prefix, Created: callcontext.Timestamp(k.Created)}
	if !k.LastUsed.IsZero() {
		t := callcontext.Timestamp(k.LastUsed)
		v.LastUsed = &t
	}
	if !k.Revoked.IsZero() {
		t := callcontext.Timestamp(k.Revoked)
		v.Revoked = &t
	}
	return v
}

// tenantName is what a tenant may be called (as in the configuration file).
var tenantName = regexp.MustCompile(`^[a-z0-9_-]{1,64}$`)

// handleKeyCreate makes a key: {"tenant":"default","mode":"prod"} → 201
// with the secret, shown this once.
func handleKeyCreate(calls *callcontext.Service) func(http.ResponseWriter, *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		body, err := readBody(w, r, smallBody)
		if err != nil {
			return err
		}
		var req struct {
			Tenant string `json:"tenant"`
			Mode   string `json:"mode"`
		}
		v := &callcontext.ValidationError{}
		if err := json.Unmarshal(body, &req); err != nil {
			v.Issues = append(v.Issues, callcontext.Issue{Path: []string{"body"}, Message: "must be an object with tenant and mode strings"})
			return v
		}
		if req.Tenant == "" {
			req.Tenant = "default"
		}
		if !tenantName.MatchString(req.Tenant) {
			v.Issues = append(v.Issues, callcontext.Issue{Path: []string{"tenant"}, Message: "1 to 64 characters of a-z, 0-9, _ and -"})
		}
		if req.Mode != string(callcontext.Test) && req.Mode != string(callcontext.Prod) {
			v.Issues = append(v.Issues, callcontext.Issue{Path: []string{"mode"}, Message: "must be test or prod"})
		}
		if len(v.Issues) > 0 {
			return v
		}
		secret, k, err := calls.CreateKey(r.Context(), req.Tenant, callcontext.Mode(req.Mode))
		if err != nil {
			return err
		}
		view := viewKey(k)
		view.Key = secret
		writeJSON(w, http.StatusCreated, view)
		return nil
	}
}

// handleKeyList lists every key, revoked ones included.
func handleKeyList(calls *callcontext.Service) func(http.ResponseWriter, *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		keys, err := calls.Keys(r.Context())
		if err != nil {
			return err
		}
		out := struct {
			Keys []keyView `json:"keys"`
		}{Keys: []keyView{}}
		for _, k := range keys {
			out.Keys = append(out.Keys, viewKey(k))
		}
		writeJSON(w, http.StatusOK, out)
		return nil
	}
}

// handleKeyRevoke revokes a key: 204, or 404 for an unknown id.
func handleKeyRevoke(calls *callcontext.Service) func(http.ResponseWriter, *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		if err := calls.RevokeKey(r.Context(), r.PathValue("key_id")); err != nil {
			return err // ErrNotFound is a 404
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
}
