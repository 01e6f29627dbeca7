package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/rs/zerolog"

	"github.com/stickycalls/stickycalls/config"
	"github.com/stickycalls/stickycalls/context/callcontext"
	"github.com/stickycalls/stickycalls/context/identity"
	"github.com/stickycalls/stickycalls/greetings"
	"github.com/stickycalls/stickycalls/httpapi"
	"github.com/stickycalls/stickycalls/lookup"
	"github.com/stickycalls/stickycalls/voice"
)

// serve runs the service until ctx is done, then drains it.
func serve(ctx context.Context, getenv func(string) string, stdout io.Writer) error {
	cfg, err := config.Load(getenv)
	if err != nil {
		return err
	}
	logger, err := newLogger(stdout, cfg.LogLevel)
	if err != nil {
		return err
	}
	if cfg.RedisURL != "" {
		logRedis(logger)
	}
	be, err := openStore(ctx, cfg, time.Second)
	if err != nil {
		return err
	}
	defer be.close()
	store := be.store
	bgCtx, stopBackground := context.WithCancel(ctx)
	background := make(chan struct{})
	go func() { defer close(background); be.run(bgCtx) }()
	defer func() { stopBackground(); <-background }()

	greeter, err := newGreeter(cfg)
	if err != nil {
		return err
	}
	lines := lineTyper(cfg, store, logger)
	calls, err := newService(cfg, store, greeter, lines)
	if err != nil {
		return err
	}
	if err := firstKey(ctx, calls, stdout); err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	reg.MustRegister(be.collectors...)
	shutdown := make(chan struct{}) // closed by srv.Shutdown: open media streams get a close frame
	tw := voiceConfig(cfg, greeter, voice.NewMetrics(reg))
	tw.Shutdown, tw.Streams = shutdown, &sync.WaitGroup{}
	handler := httpapi.NewHandler(logger, calls, reg, &tw, be.limiter)
	err = listenAndServe(ctx, cfg, handler, logger, shutdown)
	// Streams outlive Shutdown (their connections are hijacked); they may
	// still be saving a call, so the store closes only after them.
	waitFor(tw.Streams, cfg.ShutdownTimeout)
	return err
}

// waitFor waits for wg, at most d. After d its waiter goroutine is left to
// end with the last stream; the process is exiting by then.
func waitFor(wg *sync.WaitGroup, d time.Duration) {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(d):
	}
}

// newService wires the domain service from the configuration.
func newService(cfg config.Config, store callcontext.Store, greeter callcontext.Greeter, lines callcontext.LineTyper) (*callcontext.Service, error) {
	policies, err := policiesOf(cfg)
	if err != nil {
		return nil, err
	}
	return callcontext.NewService(store, lines, greeter, time.Now, policies, callcontext.Durations{Lease: cfg.IdempotencyLease}), nil
}

// lineTyper is Twilio Lookup for the tenants with Lookup credentials (an
// account SID with its auth token or an API key and secret), answers cached
// in the store; without any, line types come from requests and memory.
func lineTyper(cfg config.Config, store callcontext.Store, logger zerolog.Logger) callcontext.LineTyper {
	creds := map[string]lookup.Credentials{}
	for name, t := range cfg.Tenants {
		tw := t.Twilio
		if tw.AccountSID != "" && (tw.AuthToken != "" || tw.APIKey != "") {
			creds[name] = lookup.Credentials{AccountSID: tw.AccountSID, AuthToken: tw.AuthToken, APIKey: tw.APIKey, APISecret: tw.APISecret}
		}
	}
	if len(creds) == 0 {
		return callcontext.NoLookup{}
	}
	return lookup.NewClient(creds, store, lookup.Options{Timeout: cfg.LookupTimeout, Now: time.Now, Logger: logger})
}

// policiesOf turns each configured tenant into the service's policy.
func policiesOf(cfg config.Config) (map[string]callcontext.Policy, error) {
	out := map[string]callcontext.Policy{}
	for name, t := range cfg.Tenants {
		p := callcontext.DefaultPolicy()
		if err := identity.Apply(&p.Weights, &p.Thresholds, t.Scoring.Weights, t.Scoring.Thresholds); err != nil {
			return nil, fmt.Errorf("tenant %s: %w", name, err)
		}
		p.Plans = map[callcontext.Mode]callcontext.Plan{}
		for mode, plan := range t.Plans {
			p.Plans[callcontext.Mode(mode)] = callcontext.Plan{RateLimitPerMinute: plan.RateLimitPerMinute, MonthlyQuota: int64(plan.MonthlyQuota)}
		}
		p.OwnNumbers = map[string]bool{}
		for number, n := range cfg.Numbers {
			if n.Tenant == name {
				p.OwnNumbers[number] = true
			}
		}
		out[name] = p
	}
	return out, nil
}

func newGreeter(cfg config.Config) (*greetings.Greeter, error) {
	sets := map[string]greetings.Set{}
	for name, g := range cfg.Greetings {
		sets[name] = greetings.Set{
			Language: g.Language, Voice: g.Voice, DetailsMinConfidence: g.DetailsMinConfidence,
			Reuse: g.Reuse, ReuseIntent: g.ReuseIntent, Confirm: g.Confirm, Ignore: g.Ignore, Fallback: g.Fallback,
		}
	}
	numbers := map[string]string{}
	for number, n := range cfg.Numbers {
		numbers[number] = n.Greetings
	}
	return greetings.New(sets, numbers)
}

// voiceConfig is what the Twilio webhooks need from the configuration.
func voiceConfig(cfg config.Config, greeter *greetings.Greeter, m *voice.Metrics) voice.Config {
	tw := voice.Config{PublicURL: cfg.PublicURL, Numbers: map[string]voice.Number{}, Deadline: cfg.WebhookDeadline, Greeter: greeter, Metrics: m}
	for name, t := range cfg.Tenants {
		tw.Accounts = append(tw.Accounts, voice.Account{Tenant: name, AccountSID: t.Twilio.AccountSID,
			AuthToken: t.Twilio.AuthToken, PreviousAuthToken: t.Twilio.PreviousAuthToken})
	}
	for number, n := range cfg.Numbers {
		tw.Numbers[number] = voice.Number{Tenant: n.Tenant, Next: voice.Action(n.Next), Fallback: voice.Action(n.Fallback)}
	}
	return tw
}

// firstKey gives a newcomer a key: on an empty store it creates tenant
// default's first test key and prints it once.
func firstKey(ctx context.Context, calls *callcontext.Service, stdout io.Writer) error {
	keys, err := calls.Keys(ctx)
	if err != nil || len(keys) > 0 {
		return err
	}
	secret, k, err := calls.CreateKey(ctx, config.DefaultTenant, callcontext.Test)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "Created tenant %q and its first test key (id %s). It is shown only once:\n\n    %s\n\n", k.Tenant, k.ID, secret)
	return nil
}

// listenAndServe serves until ctx is done, then finishes in-flight requests.
// Shutdown does not wait for hijacked connections, so it closes shutdown,
// on which open media streams send their close frames.
func listenAndServe(ctx context.Context, cfg config.Config, handler http.Handler, logger zerolog.Logger, shutdown chan<- struct{}) error {
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	srv.RegisterOnShutdown(func() { close(shutdown) })
	logger.Info().Str("addr", ln.Addr().String()).Msg("listening")
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.ShutdownTimeout)
	defer cancel()
	err = srv.Shutdown(shutdownCtx)
	if serveErr := <-errc; !errors.Is(serveErr, http.ErrServerClosed) {
		return serveErr
	}
	logger.Info().Msg("stopped")
	return err
}
