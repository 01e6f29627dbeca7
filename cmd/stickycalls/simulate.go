package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/stickycalls/stickycalls/cmd/stickycalls/internal/service"
	"github.com/stickycalls/stickycalls/cmd/stickycalls/simulate"
	"github.com/stickycalls/stickycalls/config"
	"github.com/stickycalls/stickycalls/context/boltstore"
	"github.com/stickycalls/stickycalls/context/callcontext"
)

// The simulated Twilio account, in process only; its number is
// simulate.DefaultNumber.
const (
	simAccountSID = "AC5130000000000000000000000000000a"
	simAuthToken  = "sim0auth0token"
	simPublicURL  = "https://sim.stickycalls.example"
)

// simulation plays a generated call history through the service and
// prints how well it recognizes callers: in process by default (the
// handler serve builds, on a throwaway embedded store, with the clock
// following the history), or against a running server with --url.
func simulation(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	f, err := simulate.ParseFlags(args, getenv)
	if err != nil {
		return err
	}
	w, err := simulate.NewWorld(f.Params)
	if err != nil {
		return err
	}
	began := time.Now()
	var rep *simulate.Report
	if f.URL != "" {
		rep, err = simulate.Play(ctx, w, f.Remote())
	} else {
		rep, err = simulateInProcess(ctx, w, f.Scoring, nil)
	}
	if err != nil {
		return err
	}
	rep.Command = "stickycalls simulate " + strings.Join(args, " ")
	if err := rep.WriteText(stdout); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "\n%d calls in %s\n", rep.Overall.Calls, time.Since(began).Round(100*time.Millisecond))
	if f.Out == "" {
		return nil
	}
	return rep.WriteFiles(f.Out)
}

// simulateInProcess builds the service as serve does, over a throwaway
// embedded store (no fsync) with the simulation's clock, refs and Lookup,
// and plays w through its handler without any network. A non-nil wrap
// wraps the in-process transport (tests check every answer with it).
func simulateInProcess(ctx context.Context, w *simulate.World, scoring string, wrap func(http.RoundTripper) http.RoundTripper) (*simulate.Report, error) {
	dir, err := os.MkdirTemp("", "stickycalls-simulate-")
	if err != nil {
		return nil, fmt.Errorf("simulate: %w", err)
	}
	defer os.RemoveAll(dir)
	cfg, err := simConfig(dir, scoring)
	if err != nil {
		return nil, err
	}
	be, err := service.OpenStore(ctx, cfg, time.Second, boltstore.NoSync())
	if err != nil {
		return nil, err
	}
	defer be.Close()
	clock := &simulate.Clock{}
	clock.Set(w.Params.Start)
	a, err := service.New(cfg, be, zerolog.New(io.Discard), prometheus.NewRegistry(),
		service.Outside{Now: clock.Now, Lookup: w.Lookup(clock.Now), Refs: simulate.NewRefs(w.Params.Seed)})
	if err != nil {
		return nil, err
	}
	key, _, err := a.Keys.Create(ctx, config.DefaultTenant, callcontext.Prod)
	if err != nil {
		return nil, fmt.Errorf("simulate: create key: %w", err)
	}
	var transport http.RoundTripper = handlerTransport{a.Handler}
	if wrap != nil {
		transport = wrap(transport)
	}
	return simulate.Play(ctx, w, simulate.Target{
		Client: &http.Client{Transport: transport}, BaseURL: simPublicURL, APIKey: key,
		AuthToken: simAuthToken, AccountSID: simAccountSID, Number: simulate.DefaultNumber, SetClock: clock.Set,
	})
}

// simConfig is the configuration of the simulated deployment, read as
// serve reads its own: one Twilio number of tenant default whose next
// action is a redirect, Lookup credentials, deadlines long enough that a
// slow machine never changes an answer, and the tenant's scoring overrides
// (see scoringYAML).
func simConfig(dir, scoring string) (config.Config, error) {
	file := filepath.Join(dir, "config.yaml")
	yaml := fmt.Sprintf("numbers:\n  %q:\n    next: {redirect: \"https://app.example.com/twiml\"}\n", simulate.DefaultNumber)
	if scoring != "" {
		over, err := scoringYAML(scoring)
		if err != nil {
			return config.Config{}, err
		}
		yaml += "tenants:\n  default:\n    scoring:\n" + over
	}
	if err := os.WriteFile(file, []byte(yaml), 0o600); err != nil {
		return config.Config{}, fmt.Errorf("simulate: %w", err)
	}
	env := map[string]string{
		"STICKYCALLS_CONFIG": file, "STICKYCALLS_DATA": filepath.Join(dir, "sim.db"), "STICKYCALLS_PUBLIC_URL": simPublicURL,
		"TWILIO_ACCOUNT_SID": simAccountSID, "TWILIO_AUTH_TOKEN": simAuthToken,
		"STICKYCALLS_WEBHOOK_DEADLINE": "30s", "STICKYCALLS_LOOKUP_TIMEOUT": "10s",
	}
	return config.Load(func(k string) string { return env[k] })
}

// scoringYAML turns "weights.NAME=V,thresholds.NAME=V" into the config
// file's scoring block; the config loader checks the names and values.
func scoringYAML(spec string) (string, error) {
	groups := map[string][]string{}
	for _, kv := range strings.Split(spec, ",") {
		name, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
		group, key, dotted := strings.Cut(name, ".")
		if _, err := strconv.ParseFloat(v, 64); !ok || !dotted || (group != "weights" && group != "thresholds") || err != nil {
			return "", fmt.Errorf("simulate: --scoring %q: want weights.NAME=NUMBER or thresholds.NAME=NUMBER", kv)
		}
		groups[group] = append(groups[group], fmt.Sprintf("%s: %s", key, v))
	}
	var b strings.Builder
	for _, g := range []string{"weights", "thresholds"} {
		if len(groups[g]) > 0 {
			fmt.Fprintf(&b, "      %s: {%s}\n", g, strings.Join(groups[g], ", "))
		}
	}
	return b.String(), nil
}

// handlerTransport sends each request straight to a handler, in process.
type handlerTransport struct{ h http.Handler }

func (t handlerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	rec := httptest.NewRecorder()
	t.h.ServeHTTP(rec, r)
	return rec.Result(), nil
}
