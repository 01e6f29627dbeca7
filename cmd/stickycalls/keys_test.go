package main

import (
	"bytes"
	"context"
	"io"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func TestKeysCommands(t *testing.T) {
	env := map[string]string{"STICKYCALLS_DATA": filepath.Join(t.TempDir(), "keys.db")}
	getenv := func(k string) string { return env[k] }
	cli := func(args ...string) (string, error) {
		var out bytes.Buffer
		err := run(context.Background(), args, getenv, &out, io.Discard)
		return out.String(), err
	}
	out, err := cli("keys", "create", "--tenant", "acme", "--mode", "prod")
	if err != nil || !strings.Contains(out, "sk_prod_") || !strings.Contains(out, "key_") {
		t.Fatalf("keys create = %q, %v; want a printed sk_prod_ key and its id", out, err)
	}
	id := strings.Fields(out)[0]
	secret := strings.Fields(out)[3]
	out, err = cli("keys", "list")
	if err != nil || !strings.Contains(out, id) || !strings.Contains(out, secret[:12]+"...") || strings.Contains(out, secret) {
		t.Fatalf("keys list = %q, %v; want the id and the first 12 characters only", out, err)
	}
	if _, err := cli("keys", "revoke", id); err != nil {
		t.Fatalf("keys revoke: %v", err)
	}
	if out, _ = cli("keys", "list"); !strings.Contains(out, "revoked") {
		t.Errorf("keys list after revoke = %q, want it marked revoked", out)
	}
	if _, err := cli("keys", "create", "--mode", "live"); err == nil {
		t.Error("keys create --mode live = nil error, want a refusal")
	}
}

// While a server holds the embedded store's file, the keys commands
// without the admin token fail at once and say what to do; with it they go
// through the running server: create, list, revoke, and the revoked key is
// refused at once.
func TestKeysWhileServing(t *testing.T) {
	data := filepath.Join(t.TempDir(), "held.db")
	addr := freeAddr(t)
	s := startServer(t, map[string]string{"STICKYCALLS_DATA": data, "STICKYCALLS_ADDR": addr, "STICKYCALLS_ADMIN_TOKEN": "adm1n-token"})
	cli := func(env map[string]string, args ...string) (string, error) {
		var out bytes.Buffer
		err := run(context.Background(), append([]string{"keys"}, args...), func(k string) string { return env[k] }, &out, io.Discard)
		return out.String(), err
	}
	noToken := map[string]string{"STICKYCALLS_DATA": data, "STICKYCALLS_ADDR": addr}
	if _, err := cli(noToken, "list"); err == nil || !strings.Contains(err.Error(), "set STICKYCALLS_ADMIN_TOKEN") || !strings.Contains(err.Error(), "stop the server") {
		t.Errorf("keys list while serving, no token = %v, want an error saying to use the admin token or stop the server", err)
	}
	wrong := map[string]string{"STICKYCALLS_DATA": data, "STICKYCALLS_ADDR": addr, "STICKYCALLS_ADMIN_TOKEN": "not-it"}
	if _, err := cli(wrong, "list"); err == nil || !strings.Contains(err.Error(), "refused STICKYCALLS_ADMIN_TOKEN") {
		t.Errorf("keys list with a wrong token = %v, want the server's refusal", err)
	}

	env := map[string]string{"STICKYCALLS_DATA": data, "STICKYCALLS_ADDR": addr, "STICKYCALLS_ADMIN_TOKEN": "adm1n-token"}
	out, err := cli(env, "create", "--mode", "prod")
	m := regexp.MustCompile(`(?m)^(key_\S+)\tdefault\tprod\n(sk_prod_\S+)$`).FindStringSubmatch(out)
	if err != nil || m == nil {
		t.Fatalf("keys create through the server = %q, %v", out, err)
	}
	id, secret := m[1], m[2]
	s.key = secret
	if code, _, body := s.do("GET", "/v1/usage", ""); code != 200 {
		t.Fatalf("the new prod key = %d %v, want 200", code, body)
	}
	if out, err := cli(env, "list", "--url", "http://"+addr); err != nil || !strings.Contains(out, id) || !strings.Contains(out, "active") {
		t.Errorf("keys list through the server = %q, %v; want %s active", out, err, id)
	}
	if out, err := cli(env, "revoke", id); err != nil || !strings.Contains(out, "revoked "+id) {
		t.Errorf("keys revoke through the server = %q, %v", out, err)
	}
	if code, _, _ := s.do("GET", "/v1/usage", ""); code != 401 {
		t.Errorf("the revoked key = %d, want 401 at once", code)
	}
	if _, err := cli(env, "revoke", "key_nope"); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("revoking an unknown key = %v, want a 404", err)
	}
}

// The admin routes exist only with a token, and refuse any other.
func TestAdminRoutes(t *testing.T) {
	s := startServer(t, map[string]string{"STICKYCALLS_ADMIN_TOKEN": "adm1n-token"})
	for _, tc := range []struct {
		token, body string
		want        int
	}{
		{"", `{"mode":"test"}`, 401},
		{"wrong", `{"mode":"test"}`, 401},
		{"adm1n-token", `{"tenant":"Acme!","mode":"staging"}`, 400},
		{"adm1n-token", `{"tenant":"acme","mode":"test"}`, 201},
	} {
		s.key = tc.token
		if code, _, body := s.do("POST", "/admin/keys", tc.body); code != tc.want {
			t.Errorf("POST /admin/keys with %q %s = %d %v, want %d", tc.token, tc.body, code, body, tc.want)
		}
	}
	off := startServer(t, nil)
	off.key = "anything"
	if code, _, _ := off.do("GET", "/admin/keys", ""); code != 404 {
		t.Errorf("GET /admin/keys without STICKYCALLS_ADMIN_TOKEN = %d, want 404: the routes are off", code)
	}
}
