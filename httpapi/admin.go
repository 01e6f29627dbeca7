package httpapi

import (
	"cmp"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/stickycalls/stickycalls/context/backup"
	"github.com/stickycalls/stickycalls/context/callapi"
	"github.com/stickycalls/stickycalls/context/callcontext"
	"github.com/stickycalls/stickycalls/context/keys"
)

// Option changes what NewHandler serves.
type Option func(*options)

type options struct {
	adminToken string
	backup     Backup
	vapi       http.Handler
	retell     [2]http.Handler
}

// WithRetell serves a Retell number's inbound webhook and its agent's
// webhook at /integrations/retell/inbound and /integrations/retell/events
// (see voice/retell).
func WithRetell(inbound, events http.Handler) Option {
	return func(o *options) { o.retell = [2]http.Handler{inbound, events} }
}

// WithVapi serves a Vapi assistant's server URL at /integrations/vapi
// with h (see voice/vapi).
func WithVapi(h http.Handler) Option { return func(o *options) { o.vapi = h } }

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

func viewKey(k keys.Key) keyView {
	v := keyView{ID: k.ID, Tenant: k.Tenant, Mode: k.Mode, Prefix: k.Prefix, Created: callapi.Timestamp(k.Created)}
	if !k.LastUsed.IsZero() {
		t := callapi.Timestamp(k.LastUsed)
		v.LastUsed = &t
	}
	if !k.Revoked.IsZero() {
		t := callapi.Timestamp(k.Revoked)
		v.Revoked = &t
	}
	return v
}

// tenantName is what a tenant may be called (as in the configuration file).
var tenantName = regexp.MustCompile(`^[a-z0-9_-]{1,64}$`)

// handleKeyCreate makes a key: {"tenant":"default","mode":"prod"} → 201
// with the secret, shown this once.
func handleKeyCreate(ring *keys.Keyring) func(http.ResponseWriter, *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		body, err := readBody(w, r, smallBody)
		if err != nil {
			return err
		}
		var req struct {
			Tenant string `json:"tenant"`
			Mode   string `json:"mode"`
		}
		v := &callapi.ValidationError{}
		if err := json.Unmarshal(body, &req); err != nil {
			v.Issues = append(v.Issues, callapi.Issue{Path: []string{"body"}, Message: "must be an object with tenant and mode strings"})
			return v
		}
		if req.Tenant == "" {
			req.Tenant = "default"
		}
		if !tenantName.MatchString(req.Tenant) {
			v.Issues = append(v.Issues, callapi.Issue{Path: []string{"tenant"}, Message: "1 to 64 characters of a-z, 0-9, _ and -"})
		}
		if req.Mode != string(callcontext.Test) && req.Mode != string(callcontext.Prod) {
			v.Issues = append(v.Issues, callapi.Issue{Path: []string{"mode"}, Message: "must be test or prod"})
		}
		if len(v.Issues) > 0 {
			return v
		}
		secret, k, err := ring.Create(r.Context(), req.Tenant, callcontext.Mode(req.Mode))
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
func handleKeyList(ring *keys.Keyring) func(http.ResponseWriter, *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		all, err := ring.List(r.Context())
		if err != nil {
			return err
		}
		out := struct {
			Keys []keyView `json:"keys"`
		}{Keys: []keyView{}}
		for _, k := range all {
			out.Keys = append(out.Keys, viewKey(k))
		}
		writeJSON(w, http.StatusOK, out)
		return nil
	}
}

// handleKeyRevoke revokes a key: 204, or 404 for an unknown id.
func handleKeyRevoke(ring *keys.Keyring) func(http.ResponseWriter, *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		if err := ring.Revoke(r.Context(), r.PathValue("key_id")); err != nil {
			return err // ErrNotFound is a 404
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
}

// Backup moves a scope's recognition state out of the store and into it
// (see context/backup). Import's scope may leave its fields empty: the
// file's are taken.
type Backup interface {
	Export(ctx context.Context, sc callcontext.Scope, w io.Writer) (backup.Counts, error)
	Import(ctx context.Context, sc callcontext.Scope, r io.Reader) (backup.Counts, error)
}

// errNDJSON refuses an import that is not JSON Lines.
var errNDJSON = errors.New("content type is not application/x-ndjson")

// WithBackup serves /admin/export and /admin/import with b, beside the
// other admin routes.
func WithBackup(b Backup) Option { return func(o *options) { o.backup = b } }

// adminScope reads ?tenant=&mode= (default: default, prod).
func adminScope(r *http.Request) (callcontext.Scope, error) {
	q := r.URL.Query()
	tenant, mode := cmp.Or(q.Get("tenant"), "default"), cmp.Or(q.Get("mode"), string(callcontext.Prod))
	v := &callapi.ValidationError{}
	if !tenantName.MatchString(tenant) {
		v.Issues = append(v.Issues, callapi.Issue{Path: []string{"query", "tenant"}, Message: "1 to 64 characters of a-z, 0-9, _ and -"})
	}
	if mode != string(callcontext.Test) && mode != string(callcontext.Prod) {
		v.Issues = append(v.Issues, callapi.Issue{Path: []string{"query", "mode"}, Message: "must be test or prod"})
	}
	if len(v.Issues) > 0 {
		return callcontext.Scope{}, v
	}
	return callcontext.Scope{Tenant: tenant, Mode: callcontext.Mode(mode)}, nil
}

// handleExport streams a scope's state as JSON Lines.
func handleExport(b Backup) func(http.ResponseWriter, *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		sc, err := adminScope(r)
		if err != nil {
			return err
		}
		w.Header().Set("Content-Type", "application/x-ndjson")
		cw := &countingWriter{w: w}
		if _, err = b.Export(r.Context(), sc, cw); err != nil && cw.n == 0 {
			w.Header().Del("Content-Type")
			return err // nothing sent yet: an error answer
		}
		if err != nil {
			// The status is out: the response is aborted, not ended, so
			// the reader sees a broken transfer rather than a short file.
			noteError(r.Context(), err)
			panic(http.ErrAbortHandler)
		}
		return nil
	}
}

// handleImport reads a whole export and writes it into a scope (the
// file's, or the query's when it names the same), or refuses it whole: 400
// listing every bad line or naming another scope, 409 when customers are
// stored otherwise than in the file. The body must be
// application/x-ndjson, which no page can send across sites without the
// browser asking first (the admin token may be a browser's cached Basic
// credentials), and may take up to an hour to arrive.
func handleImport(b Backup) func(http.ResponseWriter, *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/x-ndjson" {
			return errNDJSON
		}
		q := r.URL.Query()
		want := callcontext.Scope{Tenant: q.Get("tenant"), Mode: callcontext.Mode(q.Get("mode"))}
		if want.Tenant != "" || want.Mode != "" {
			if _, err := adminScope(r); err != nil {
				return err
			}
		}
		http.NewResponseController(w).SetReadDeadline(time.Now().Add(time.Hour))
		counts, err := b.Import(r.Context(), want, http.MaxBytesReader(w, r.Body, maxImport))
		var bad *backup.BadFile
		switch {
		case errors.Is(err, backup.ErrOtherScope):
			return &callapi.ValidationError{Issues: []callapi.Issue{{Path: []string{"query"}, Message: err.Error()}}}
		case errors.As(err, &bad):
			v := &callapi.ValidationError{}
			for _, l := range bad.Lines {
				v.Issues = append(v.Issues, callapi.Issue{Path: []string{"line", strconv.Itoa(l.Line)}, Message: l.Message})
			}
			return v
		case errors.Is(err, backup.ErrConflict):
			return fmt.Errorf("%w: %v", callcontext.ErrConflict, err)
		case err != nil:
			return err
		}
		writeJSON(w, http.StatusOK, counts)
		return nil
	}
}

// countingWriter counts the bytes written through it.
type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// maxImport bounds an import's body: about a million customers.
const maxImport = 8 << 30
