// Package service is the Sticky Calls service as `stickycalls serve` runs
// it: the store the configuration chooses (store.go), the domain service
// and the one handler over it wired in one place (App), the listener with
// its connection limit and TLS, and the redacting JSON log. Serve runs it
// until its context is done; the bench and the simulator build the same
// App in process, so what they measure is what Serve runs.
package service

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"runtime"
	"runtime/debug"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/rs/zerolog"

	"github.com/stickycalls/stickycalls/config"
	"github.com/stickycalls/stickycalls/context/callapi"
	"github.com/stickycalls/stickycalls/context/callcontext"
	"github.com/stickycalls/stickycalls/context/identity"
	"github.com/stickycalls/stickycalls/context/keys"
	"github.com/stickycalls/stickycalls/context/outbox"
	"github.com/stickycalls/stickycalls/context/storemetrics"
	"github.com/stickycalls/stickycalls/greetings"
	"github.com/stickycalls/stickycalls/httpapi"
	"github.com/stickycalls/stickycalls/lookup"
	"github.com/stickycalls/stickycalls/voice"
	"github.com/stickycalls/stickycalls/voice/agentctx"
	"github.com/stickycalls/stickycalls/voice/retell"
	"github.com/stickycalls/stickycalls/voice/vapi"
)

// Serve runs the service until ctx is done, then drains it.
func Serve(ctx context.Context, getenv func(string) string, stdout io.Writer) error {
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
	if cfg.PublicURL == "" && len(cfg.Numbers) > 0 {
		logger.Warn().Msg("STICKYCALLS_PUBLIC_URL is not set: Twilio signatures are checked against the URL rebuilt from " +
			"the Forwarded or X-Forwarded-Proto and X-Forwarded-Host headers of a proxy in front, else from the request's own " +
			"scheme and Host; set it to the URL configured in Twilio's console")
	}
	be, err := waitForStore(ctx, logger, cfg)
	if err != nil {
		return err
	}
	defer be.Close()
	bgCtx, stopBackground := context.WithCancel(ctx)
	background := make(chan struct{})
	go func() { defer close(background); be.Run(bgCtx, logger) }()
	defer func() { stopBackground(); <-background }()

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	reg.MustRegister(be.Collectors...)
	// The outbox is a safety net: without its file (a read-only disk) the
	// service still runs, and a completion the store refuses is a 503.
	w := Outside{Now: time.Now}
	ob, err := outbox.Open(cfg.OutboxPath, outbox.Options{Logger: logger, Registerer: reg})
	if err != nil {
		logger.Error().Err(err).Msg("no outbox (STICKYCALLS_OUTBOX): completions the store refuses are answered 503")
	} else {
		defer ob.Close()
		w.Outbox = ob
	}
	a, err := New(cfg, be, logger, reg, w)
	if err != nil {
		return err
	}
	if ob != nil {
		applied := make(chan struct{})
		go func() { defer close(applied); ob.Run(bgCtx, a.applyCompletion) }()
		defer func() { stopBackground(); <-applied }()
	}
	if err := firstKey(ctx, a.Keys, stdout); err != nil {
		return err
	}
	err = listenAndServe(ctx, cfg, a.Handler, logger, a.shutdown)
	// Streams outlive Shutdown (their connections are hijacked); they may
	// still be saving a call, so the store closes only after them.
	waitFor(a.streams, cfg.ShutdownTimeout)
	return err
}

// Outside is what the service takes from outside the process: the clock,
// the network Lookup goes through and the source of fresh customer refs.
// Serve takes the real ones; the simulator injects its own.
type Outside struct {
	Now    func() time.Time
	Lookup http.RoundTripper // nil: http.DefaultTransport
	Refs   func() string     // nil: crypto/rand
	// Outbox keeps voice completions while the store is away, in a local
	// file (nil: a completion the store refuses is answered 503).
	Outbox voice.Outbox
}

// App is the service as Serve runs it: the domain service, the API keys
// and the one handler over them, with what shutting it down needs.
type App struct {
	Calls   *callcontext.Service
	Keys    *keys.Keyring
	Handler http.Handler

	logger   zerolog.Logger
	shutdown chan struct{}   // close it to end open media streams
	streams  *sync.WaitGroup // open media streams
}

// New wires the service and its handler from the configuration over an
// open store: greetings, Lookup, scoring policies, the voice webhooks and
// the REST API. Serve, the simulator and the bench all build the service
// here. The metrics of every part are registered with reg, which must be
// fresh for each App.
func New(cfg config.Config, be Backend, logger zerolog.Logger, reg *prometheus.Registry, w Outside) (*App, error) {
	greeter, err := newGreeter(cfg)
	if err != nil {
		return nil, err
	}
	reg.MustRegister(buildInfo())
	store := storemetrics.Wrap(be.Store, reg)
	lines := lineTyper(cfg, store, logger, w, lookup.NewMetrics(reg))
	opts := []callcontext.Option{callcontext.WithObserver(newCallMetrics(reg))}
	if w.Refs != nil {
		opts = append(opts, callcontext.WithRefs(w.Refs))
	}
	calls, err := newService(cfg, store, greeter, lines, w.Now, opts...)
	if err != nil {
		return nil, err
	}
	now := w.Now
	if now == nil {
		now = time.Now
	}
	a := &App{logger: logger, Calls: calls, Keys: keys.New(store, now), shutdown: make(chan struct{}), streams: &sync.WaitGroup{}}
	tw := voiceConfig(cfg, greeter, voice.NewMetrics(reg))
	tw.Now, tw.Shutdown, tw.Streams, tw.Outbox = w.Now, a.shutdown, a.streams, w.Outbox
	hopts := []httpapi.Option{httpapi.WithAdminToken(cfg.AdminToken)}
	if vc := vapiConfig(cfg, greeter, w.Outbox); len(vc.Numbers) > 0 {
		hopts = append(hopts, httpapi.WithVapi(vapi.Handle(logger, calls, vc)))
	}
	if rc := retellConfig(cfg, greeter, w); len(rc.Numbers) > 0 {
		hopts = append(hopts, httpapi.WithRetell(retell.HandleInbound(logger, calls, rc), retell.HandleEvents(logger, calls, rc)))
	}
	if b := NewBackup(be, w.Now); b != nil {
		hopts = append(hopts, httpapi.WithBackup(b))
	}
	a.Handler = httpapi.NewHandler(logger, calls, a.Keys, reg, &tw, be.Limiter, hopts...)
	return a, nil
}

// applyCompletion applies what the outbox kept: a completion, as of the
// time its callback arrived, or an end. An end the service refuses (bad
// data, a conflicting end of the call) is logged and let go: retrying it
// cannot help.
func (a *App) applyCompletion(ctx context.Context, e outbox.Entry) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	sc := callcontext.Scope{Tenant: e.Tenant, Mode: callcontext.Prod}
	if e.End == nil {
		return a.Calls.Complete(ctx, sc, e.Completion)
	}
	_, err := a.Calls.End(ctx, sc, *e.End, "")
	var invalid *callapi.ValidationError
	if errors.As(err, &invalid) || errors.Is(err, callcontext.ErrConflict) {
		a.logger.Error().Err(err).Str("call_sid", e.End.CallID).Msg("outbox: end refused; dropped")
		return nil
	}
	return err
}

// buildInfo is stickycalls_build_info{version,go_version} 1: which build
// an instance runs, from the binary's module information.
func buildInfo() prometheus.Collector {
	version, goVersion := "(devel)", runtime.Version()
	if bi, ok := debug.ReadBuildInfo(); ok {
		version = cmp.Or(bi.Main.Version, version)
	}
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "stickycalls_build_info", Help: "The build an instance runs: always 1, labelled.",
		ConstLabels: prometheus.Labels{"version": version, "go_version": goVersion}})
	g.Set(1)
	return g
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
func newService(cfg config.Config, store callcontext.Store, greeter callcontext.Greeter, lines callcontext.LineTyper, now func() time.Time, opts ...callcontext.Option) (*callcontext.Service, error) {
	policies, err := policiesOf(cfg)
	if err != nil {
		return nil, err
	}
	return callcontext.NewService(store, lines, greeter, now, policies, callcontext.Durations{Lease: cfg.IdempotencyLease, MinCall: cfg.MinCallDuration}, opts...), nil
}

// lineTyper is Twilio Lookup for the tenants with Lookup credentials (an
// account SID with its auth token or an API key and secret), answers cached
// in the store; without any, line types come from requests and memory.
func lineTyper(cfg config.Config, store lookup.Cache, logger zerolog.Logger, w Outside, m *lookup.Metrics) callcontext.LineTyper {
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
	return lookup.NewClient(creds, store, lookup.Options{Timeout: cfg.LookupTimeout, Now: w.Now, Logger: logger, Transport: w.Lookup, Metrics: m})
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
			Welcome: g.Welcome, VoiceReuseIntent: g.VoiceReuseIntent, Connecting: g.Connecting, Declined: g.Declined,
			Yes: g.Yes, No: g.No, MinSpeechConfidence: g.MinSpeechConfidence,
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
		tw.Numbers[number] = voice.Number{Tenant: n.Tenant, Next: voiceAction(n.Next), Fallback: voiceAction(n.Fallback), AgentHeaders: n.AgentHeaders,
			TransferTargets: n.TransferTargets, DialTimeout: n.DialTimeout, Unanswered: voice.Unanswered(n.Unanswered)}
	}
	return tw
}

// voiceAction is a configured next action as the webhooks render it.
func voiceAction(a config.Action) voice.Action {
	va := voice.Action{Dial: a.Dial, Stream: a.Stream, Redirect: a.Redirect, Whisper: a.Whisper}
	if cr := a.ConversationRelay; cr != nil {
		c := voice.ConversationRelay(*cr)
		va.Relay = &c
	}
	return va
}

// vapiConfig is what the Vapi server URL needs from the configuration:
// the numbers Vapi assistants answer, and the tenants' secrets.
func vapiConfig(cfg config.Config, greeter *greetings.Greeter, ob voice.Outbox) vapi.Config {
	vc := vapi.Config{Numbers: map[string]vapi.Number{}, Secrets: map[string]string{}, Deadline: cfg.WebhookDeadline, Greeter: greeter}
	if o, ok := ob.(vapi.Outbox); ok {
		vc.Outbox = o
	}
	for number, n := range cfg.Numbers {
		if v := n.Vapi; v != nil {
			vc.Numbers[number] = vapi.Number{Tenant: n.Tenant, AssistantID: v.AssistantID,
				Mapping: agentctx.Mapping{Intent: v.Intent, IntentStatus: v.IntentStatus, Variables: v.Variables}}
		}
	}
	for name, t := range cfg.Tenants {
		if t.VapiSecret != "" {
			vc.Secrets[name] = t.VapiSecret
		}
	}
	return vc
}

// retellConfig is what the Retell webhooks need from the configuration.
func retellConfig(cfg config.Config, greeter *greetings.Greeter, w Outside) retell.Config {
	rc := retell.Config{Numbers: map[string]retell.Number{}, Keys: map[string]string{}, Deadline: cfg.WebhookDeadline, Greeter: greeter, Now: w.Now}
	if o, ok := w.Outbox.(retell.Outbox); ok {
		rc.Outbox = o
	}
	for number, n := range cfg.Numbers {
		if rt := n.Retell; rt != nil {
			rc.Numbers[number] = retell.Number{Tenant: n.Tenant, AgentID: rt.AgentID,
				Mapping: agentctx.Mapping{Intent: rt.Intent, IntentStatus: rt.IntentStatus, Variables: rt.Variables}}
		}
	}
	for name, t := range cfg.Tenants {
		if t.RetellAPIKey != "" {
			rc.Keys[name] = t.RetellAPIKey
		}
	}
	return rc
}

// firstKey gives a newcomer a key: on an empty store it creates tenant
// default's first test key and prints it once.
func firstKey(ctx context.Context, ring *keys.Keyring, stdout io.Writer) error {
	all, err := ring.List(ctx)
	if err != nil || len(all) > 0 {
		return err
	}
	secret, k, err := ring.Create(ctx, config.DefaultTenant, callcontext.Test)
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
	var cert *certificate
	if cfg.TLSCertFile != "" {
		var err error
		if cert, err = loadCertificate(cfg.TLSCertFile, cfg.TLSKeyFile); err != nil {
			return err
		}
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	limited := newLimitListener(ln, cfg.MaxConnections, logger)
	// ReadTimeout bounds the whole request, body included, so a client
	// that stalls its body gives its connection back; media streams set
	// their own deadlines once upgraded.
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: min(10*time.Second, cfg.ReadTimeout), ReadTimeout: cfg.ReadTimeout,
		IdleTimeout: 2 * time.Minute, ConnState: limited.connState,
		// The server's own complaints (TLS handshakes that failed, and
		// the like) go to the JSON log, a few a second at most.
		ErrorLog: log.New(logger.With().Str("component", "http").Logger().Sample(&zerolog.BurstSampler{Burst: 5, Period: time.Second}), "", 0)}
	srv.RegisterOnShutdown(func() { close(shutdown) })
	errc := make(chan error, 1)
	if cert != nil {
		srv.TLSConfig = cert.config()
		go cert.reloadOnHangup(ctx, logger)
		logger.Info().Str("addr", ln.Addr().String()).Bool("tls", true).Msg("listening")
		go func() { errc <- srv.ServeTLS(limited, "", "") }()
	} else {
		logger.Info().Str("addr", ln.Addr().String()).Msg("listening")
		go func() { errc <- srv.Serve(limited) }()
	}
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
