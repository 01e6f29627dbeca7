package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stickycalls/stickycalls/context/redistest"
	"github.com/stickycalls/stickycalls/httpapi/apitest"
)

func TestMain(m *testing.M) { redistest.Main(m) }

// Two instances on one Redis share the rate limit and the quota exactly:
// a plan of 20 a minute admits floor(20 × 1.1) = 22 across both, and a
// quota of 30 admits 30.
func TestTwoInstancesShareLimits(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "config.yaml")
	plans := "tenants:\n  default:\n    plans:\n      test: {rate_limit_per_minute: 20}\n      prod: {monthly_quota: 30}\n"
	if err := os.WriteFile(cfg, []byte(plans), 0o600); err != nil {
		t.Fatal(err)
	}
	// A generous limiter timeout: on a loaded test machine Redis may take
	// over 50 ms, and the per-instance fallback is not exact by design.
	// A Redis of its own: the first instance must find it empty to print a key.
	env := map[string]string{"STICKYCALLS_REDIS_URL": "redis://" + redistest.Durable(t, "no").Addr() + "/0", "STICKYCALLS_CONFIG": cfg,
		"STICKYCALLS_RATE_LIMIT_TIMEOUT": "5s"}
	a := startServer(t, env)
	b := launch(t, env) // sees a's key in the shared Redis and prints none
	if strings.Contains(b.out.String(), "sk_test_") {
		t.Errorf("the second instance printed a key of its own:\n%s", b.out.String())
	}

	if got := countOK(t, []*server{a, b}, a.key, 60); got[200] != 22 || got[429] != 38 {
		t.Errorf("60 test-mode starts across two instances = %v, want 22 × 200 and 38 × 429", got)
	}
	prod := createKey(t, env, "prod")
	if got := countOK(t, []*server{a, b}, prod, 40); got[200] != 30 || got[402] != 10 {
		t.Errorf("40 prod starts against a quota of 30 = %v, want 30 × 200 and 10 × 402", got)
	}
}

// countOK sends n distinct starts, alternating between the servers, all at
// once, and counts the statuses.
func countOK(t *testing.T, servers []*server, key string, n int) map[int]int {
	t.Helper()
	var mu sync.Mutex
	got := map[int]int{}
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := servers[i%len(servers)]
			body := fmt.Sprintf(`{"call_id":"share_%s_%d","identity_hints":{"ani":"+14155550100"}}`, key[:8], i)
			req, _ := http.NewRequest("POST", s.base+"/v1/calls/start", strings.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+key)
			req.Header.Set("Content-Type", "application/json")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			raw, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				t.Error(err)
				return
			}
			apitest.Check(t, req, resp, raw)
			mu.Lock()
			got[resp.StatusCode]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	return got
}

// createKey runs `keys create` beside the running servers, as Redis allows.
func createKey(t *testing.T, env map[string]string, mode string) string {
	t.Helper()
	var out strings.Builder
	if err := run(t.Context(), []string{"keys", "create", "--mode", mode}, func(k string) string { return env[k] }, &out, nil); err != nil {
		t.Fatalf("keys create beside running servers: %v", err)
	}
	return strings.Fields(out.String())[3]
}
