package main

import (
	"context"
	"encoding/base64"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// chromium is Debian's headless browser; make test installs it when
// missing (scripts/test-deps.sh).
const chromium = "/usr/bin/chromium"

// The dashboard, loaded in a real browser after a scripted set of calls,
// shows the figures the traffic implies; a screenshot of it is kept (and,
// with STICKYCALLS_SCREENSHOT set to a path, written there: make
// screenshot refreshes docs/dashboard.png).
func TestDashboardInBrowser(t *testing.T) {
	if _, err := exec.LookPath(chromium); err != nil {
		t.Fatalf("%s not found: apt-get install -y chromium (make test does it when missing)", chromium)
	}
	const admin = "dash0admin0token"
	s := startServer(t, map[string]string{"STICKYCALLS_ADMIN_TOKEN": admin})
	// Four new callers; three come back and are recognized; intents opened
	// on the first calls, two resolved on the second, one abandoned.
	for i := range 4 {
		hints := `"identity_hints":{"ani":"+1415555020` + string(rune('0'+i)) + `"},"telco":{"line_type":"mobile","attestation":"A"}`
		id := "d" + string(rune('0'+i))
		s.mustDo(t, "/v1/calls/start", `{"call_id":"`+id+`a",`+hints+`}`)
		s.mustDo(t, "/v1/calls/end", `{"call_id":"`+id+`a","customer_ref":"cust_`+id+`","intent":"billing","intent_status":"open","variables":{"name":"N`+id+`"}}`)
		if i == 3 {
			continue
		}
		s.mustDo(t, "/v1/calls/start", `{"call_id":"`+id+`b",`+hints+`}`)
		status := map[bool]string{true: "resolved", false: "abandoned"}[i < 2]
		s.mustDo(t, "/v1/calls/end", `{"call_id":"`+id+`b","customer_ref":"cust_`+id+`","intent":"billing","intent_status":"`+status+`"}`)
	}
	// An end without a start: a call of its own.
	s.mustDo(t, "/v1/calls/end", `{"call_id":"d9","customer_ref":"cust_d0","intent":"refund","intent_status":"open"}`)

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chromium), chromedp.NoSandbox, chromedp.WindowSize(1280, 1100))
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancel()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	auth := "Basic " + base64.StdEncoding.EncodeToString([]byte("ops:"+admin))
	if _, err := chromedp.Call(ctx, network.Enable, network.EnableParams{}); err != nil {
		t.Fatalf("start %s: %v", chromium, err)
	}
	if _, err := chromedp.Call(ctx, network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{Headers: network.Headers{"Authorization": auth}}); err != nil {
		t.Fatal(err)
	}
	page, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := chromedp.Do(page, chromedp.Navigate(s.base+"/dashboard?tenant=default&mode=test"), chromedp.WaitVisible(chromedp.CSS("#calls"))); err != nil {
		t.Fatalf("load the dashboard in %s: %v", chromium, err)
	}
	text := func(sel string) string {
		v, err := chromedp.Run(page, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("read %s: %v", sel, err)
		}
		return strings.TrimSpace(v)
	}
	value := func(sel string) string {
		v, err := chromedp.Run(page, chromedp.AttributeValue(chromedp.CSS(sel), "data-value"))
		if err != nil || !v.Exists {
			t.Fatalf("read %s: %v", sel, err)
		}
		return v.Value
	}
	// 7 starts (4 new, 3 recognized) and the end without a start are the
	// calls; 4 new callers and the lone end's are billable (it names an
	// existing customer: not billable, so 4).
	want := map[string]string{"calls": "8", "starts": "7", "recognition": "42.9 %", "billable": "4", "non-billable": "4",
		"ends": "8", "resolution": "66.7 %"}
	for id, w := range want {
		if got := text("#" + id); got != w {
			t.Errorf("#%s shows %q, want %q", id, got, w)
		}
	}
	reuse, ignore := value(`#mix rect[data-label="reuse"]`), value(`#mix rect[data-label="ignore"]`)
	resolved, abandoned := value(`#intents rect[data-label="resolved"]`), value(`#intents rect[data-label="abandoned"]`)
	if reuse != "3" || ignore != "4" || resolved != "2" || abandoned != "1" {
		t.Errorf("charts show reuse %s, ignore %s, resolved %s, abandoned %s; want 3, 4, 2, 1", reuse, ignore, resolved, abandoned)
	}
	shot, err := chromedp.Run(page, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	file := filepath.Join(t.TempDir(), "dashboard.png")
	if path := os.Getenv("STICKYCALLS_SCREENSHOT"); path != "" {
		file = path
	}
	if err := os.WriteFile(file, shot, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s (%d bytes)", file, len(shot))
}

// mustDo sends a request with the server's key and fails the test on
// anything but 200.
func (s *server) mustDo(t *testing.T, path, body string) {
	t.Helper()
	if code, _, m := s.do("POST", path, body); code != 200 {
		t.Fatalf("POST %s %s = %d %v", path, body, code, m)
	}
}
