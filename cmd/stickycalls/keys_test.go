package main

import (
	"bytes"
	"context"
	"io"
	"path/filepath"
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

// While a server holds the embedded store's file, the keys commands fail at
// once with a message that says so.
func TestKeysWhileServing(t *testing.T) {
	data := filepath.Join(t.TempDir(), "held.db")
	startServer(t, map[string]string{"STICKYCALLS_DATA": data})
	var out bytes.Buffer
	err := run(context.Background(), []string{"keys", "list"}, func(k string) string {
		return map[string]string{"STICKYCALLS_DATA": data}[k]
	}, &out, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "stop the server first") {
		t.Errorf("keys list while serving = %v, want an error telling to stop the server", err)
	}
}
