package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stickycalls/stickycalls/voice/retell"
)

// Through the real server: Retell's documented webhooks, signed as Retell
// signs them, start, complete and end one call; a bad signature is a 401.
func TestRetellThroughServer(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "config.yaml")
	yaml := `tenants:
  default:
    retell: {api_key_env: RETELL_KEY}
numbers:
  "+18005550188":
    retell: {intent: intent, intent_status: intent_status, variables: {name: caller_name}}
`
	if err := os.WriteFile(file, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"STICKYCALLS_CONFIG": file, "RETELL_KEY": "key_retell0test",
		"STICKYCALLS_ADDR": freeAddr(t), "STICKYCALLS_ADMIN_TOKEN": "retell0admin"} // the prod key is made through the server
	s := startServer(t, env)
	s.key = createKey(t, env, "prod")
	post := func(path, name, key, callID string) (int, map[string]any) {
		t.Helper()
		raw, err := os.ReadFile(filepath.Join("..", "..", "voice", "retell", "testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		body := []byte(strings.ReplaceAll(string(raw), "CALL_ID", callID))
		req, _ := http.NewRequest("POST", s.base+path, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set(retell.SignatureHeader, retell.Sign(body, key, time.Now()))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		out, _ := io.ReadAll(resp.Body)
		var m map[string]any
		json.Unmarshal(out, &m)
		return resp.StatusCode, m
	}
	if code, _ := post("/integrations/retell/inbound", "call_inbound.json", "key_wrong", ""); code != 401 {
		t.Errorf("a bad signature = %d, want 401", code)
	}
	code, ans := post("/integrations/retell/inbound", "call_inbound.json", "key_retell0test", "")
	ci, _ := ans["call_inbound"].(map[string]any)
	meta, _ := ci["metadata"].(map[string]any)
	callID, _ := meta["stickycalls_call_id"].(string)
	if code != 200 || callID == "" {
		t.Fatalf("call_inbound = %d %v", code, ans)
	}
	for _, name := range []string{"call_ended.json", "call_analyzed.json"} {
		if code, m := post("/integrations/retell/events", name, "key_retell0test", callID); code != 200 {
			t.Fatalf("%s = %d %v", name, code, m)
		}
	}
	code, _, got := s.do("GET", "/v1/calls/"+callID, "")
	if code != 200 || got["status"] != "completed" || got["duration_seconds"] != 142.0 {
		t.Errorf("GET /v1/calls/%s = %d %v, want completed after 142 s", callID, code, got)
	}
	ref, _ := got["customer_ref"].(string)
	if code, _, c := s.do("GET", "/v1/customers/"+ref, ""); code != 200 || !strings.Contains(stringOf(c), "address_change") || !strings.Contains(stringOf(c), "Grace Hopper") {
		t.Errorf("the customer = %d %v, want the analyzed end", code, c)
	}
}
