// Package admin is a client of a running server's admin routes (the
// server's STICKYCALLS_ADMIN_TOKEN): keys, export and import, for the
// commands that work through the server, which holds the store, instead of
// on the store itself.
package admin

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/stickycalls/stickycalls/context/backup"
	"github.com/stickycalls/stickycalls/context/callcontext"
	"github.com/stickycalls/stickycalls/context/keys"
)

// ErrNoServer means no server answered at the client's URL: the commands
// then work on the store.
var ErrNoServer = errors.New("no server answers")

// Client manages keys, exports and imports through a running server's
// admin routes.
type Client struct {
	http  *http.Client
	base  string
	token string
}

// NewClient is a client of the server at base (scheme, host and port) that
// sends token with each request, through hc.
func NewClient(hc *http.Client, base, token string) *Client {
	return &Client{http: hc, base: base, token: token}
}

// key is a key as the admin routes show it.
type key struct {
	ID       string           `json:"id"`
	Tenant   string           `json:"tenant"`
	Mode     callcontext.Mode `json:"mode"`
	Prefix   string           `json:"prefix"`
	Created  time.Time        `json:"created_at"`
	LastUsed *time.Time       `json:"last_used_at"`
	Revoked  *time.Time       `json:"revoked_at"`
	Key      string           `json:"key"`
}

func (k key) apiKey() keys.Key {
	out := keys.Key{ID: k.ID, Tenant: k.Tenant, Mode: k.Mode, Prefix: k.Prefix, Created: k.Created}
	if k.LastUsed != nil {
		out.LastUsed = *k.LastUsed
	}
	if k.Revoked != nil {
		out.Revoked = *k.Revoked
	}
	return out
}

// Create creates a key of tenant in mode and returns its secret.
func (c *Client) Create(ctx context.Context, tenant string, mode callcontext.Mode) (string, keys.Key, error) {
	body, _ := json.Marshal(map[string]string{"tenant": tenant, "mode": string(mode)})
	var k key
	if err := c.do(ctx, "POST", "/admin/keys", body, http.StatusCreated, &k); err != nil {
		return "", keys.Key{}, err
	}
	return k.Key, k.apiKey(), nil
}

// List lists the keys, as GET /admin/keys shows them.
func (c *Client) List(ctx context.Context) ([]keys.Key, error) {
	var out struct {
		Keys []key `json:"keys"`
	}
	if err := c.do(ctx, "GET", "/admin/keys", nil, http.StatusOK, &out); err != nil {
		return nil, err
	}
	all := make([]keys.Key, len(out.Keys))
	for i, k := range out.Keys {
		all[i] = k.apiKey()
	}
	return all, nil
}

// Revoke revokes the key id.
func (c *Client) Revoke(ctx context.Context, id string) error {
	return c.do(ctx, "DELETE", "/admin/keys/"+id, nil, http.StatusNoContent, nil)
}

// do sends one admin request and decodes the answer into v. A server that
// does not answer at all is ErrNoServer; one that answers otherwise than
// want is an error with its message.
func (c *Client) do(ctx context.Context, method, path string, body []byte, want int, v any) error {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("%w at %s: %v", ErrNoServer, c.base, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	switch {
	case resp.StatusCode == http.StatusUnauthorized:
		return fmt.Errorf("the server at %s refused STICKYCALLS_ADMIN_TOKEN (401): is it the server's?", c.base)
	case resp.StatusCode == http.StatusNotFound && path == "/admin/keys":
		return fmt.Errorf("the server at %s has no admin routes: start it with STICKYCALLS_ADMIN_TOKEN set", c.base)
	case resp.StatusCode != want:
		var e struct {
			Message string `json:"message"`
		}
		json.Unmarshal(raw, &e)
		return fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, cmp.Or(e.Message, http.StatusText(resp.StatusCode)))
	}
	if v != nil {
		if err := json.Unmarshal(raw, v); err != nil {
			return fmt.Errorf("%s %s: %w", method, path, err)
		}
	}
	return nil
}

// Ping checks that a server with admin routes answers, and takes the token.
func (c *Client) Ping(ctx context.Context) error {
	return c.do(ctx, "GET", "/admin/keys", nil, http.StatusOK, nil)
}

// Export streams the server's export of sc into w.
func (c *Client) Export(ctx context.Context, sc callcontext.Scope, w io.Writer) (backup.Counts, error) {
	resp, err := c.send(ctx, "GET", "/admin/export?"+scopeQuery(sc), nil)
	if err != nil {
		return backup.Counts{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return backup.Counts{}, answerError(resp)
	}
	lc := &lineCounter{}
	if _, err := io.Copy(io.MultiWriter(w, lc), resp.Body); err != nil {
		return backup.Counts{}, fmt.Errorf("the export was cut short: %w", err)
	}
	return lc.counts, nil
}

// Import sends the export in r to the server, to write into sc.
func (c *Client) Import(ctx context.Context, sc callcontext.Scope, r io.Reader) (backup.Counts, error) {
	resp, err := c.send(ctx, "POST", "/admin/import?"+scopeQuery(sc), r)
	if err != nil {
		return backup.Counts{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return backup.Counts{}, answerError(resp)
	}
	var counts backup.Counts
	if err := json.NewDecoder(resp.Body).Decode(&counts); err != nil {
		return backup.Counts{}, fmt.Errorf("import answer: %w", err)
	}
	return counts, nil
}

// send sends one admin request with a streamed body.
func (c *Client) send(ctx context.Context, method, path string, body io.Reader) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/x-ndjson")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w at %s: %v", ErrNoServer, c.base, err)
	}
	return resp, nil
}

// answerError is an error answer's message, every problem listed.
func answerError(resp *http.Response) error {
	var e struct {
		Message string `json:"message"`
		Details *struct {
			Issues []struct {
				Path    []string `json:"path"`
				Message string   `json:"message"`
			} `json:"issues"`
		} `json:"details"`
	}
	json.NewDecoder(io.LimitReader(resp.Body, 4<<20)).Decode(&e)
	msg := fmt.Sprintf("%d %s", resp.StatusCode, cmp.Or(e.Message, http.StatusText(resp.StatusCode)))
	if e.Details != nil {
		for _, is := range e.Details.Issues {
			msg += "\n  " + strings.Join(is.Path, " ") + ": " + is.Message
		}
	}
	return errors.New(msg)
}

// scopeQuery names sc's set fields in a query.
func scopeQuery(sc callcontext.Scope) string {
	q := url.Values{}
	if sc.Tenant != "" {
		q.Set("tenant", sc.Tenant)
	}
	if sc.Mode != "" {
		q.Set("mode", string(sc.Mode))
	}
	return q.Encode()
}

// lineCounter counts an export's customers and line types as it passes.
type lineCounter struct {
	counts  backup.Counts
	partial []byte
}

func (l *lineCounter) Write(p []byte) (int, error) {
	data := append(l.partial, p...)
	for {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			break
		}
		switch line := data[:i]; {
		case bytes.HasPrefix(line, []byte(`{"customer"`)):
			l.counts.Customers++
		case bytes.HasPrefix(line, []byte(`{"line_type"`)):
			l.counts.LineTypes++
		}
		data = data[i+1:]
	}
	l.partial = append(l.partial[:0], data...)
	return len(p), nil
}
