package config

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// envOf returns a getenv that reads env.
func envOf(env map[string]string) func(string) string {
	return func(k string) string { return env[k] }
}

// writeConfig writes a YAML file into a fresh temporary directory and
// returns its path.
func writeConfig(t *testing.T, yaml string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "stickycalls.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// emptyTenant is a tenant with nothing configured.
func emptyTenant() Tenant {
	return Tenant{Plans: map[string]Plan{}, Scoring: Scoring{Weights: map[string]float64{}, Thresholds: map[string]float64{}}}
}

// defaults is what Load returns for an empty environment.
func defaults() Config {
	return Config{
		Addr:             ":8080",
		DataPath:         "stickycalls.db",
		LogLevel:         "info",
		WebhookDeadline:  800 * time.Millisecond,
		LookupTimeout:    300 * time.Millisecond,
		SweepInterval:    10 * time.Minute,
		RateLimitTimeout: 50 * time.Millisecond,
		IdempotencyLease: 30 * time.Second,
		ShutdownTimeout:  15 * time.Second,
		MinCallDuration:  5 * time.Second,
		OutboxPath:       "stickycalls.outbox.db",
		ReadTimeout:      10 * time.Second,
		StoreStartupWait: 30 * time.Second,
		MaxConnections:   4096,
		Tenants:          map[string]Tenant{"default": emptyTenant()},
		Numbers:          map[string]Number{},
		Greetings:        map[string]GreetingSet{},
	}
}

func TestLoadEnv(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want func(*Config)
	}{
		{"defaults", nil, func(*Config) {}},
		{"addr", map[string]string{"STICKYCALLS_ADDR": "127.0.0.1:9000"}, func(c *Config) { c.Addr = "127.0.0.1:9000" }},
		{"data", map[string]string{"STICKYCALLS_DATA": "/var/lib/sc.db"}, func(c *Config) { c.DataPath, c.OutboxPath = "/var/lib/sc.db", "/var/lib/sc.outbox.db" }},
		{"outbox", map[string]string{"STICKYCALLS_OUTBOX": "/var/spool/sc.db"}, func(c *Config) { c.OutboxPath = "/var/spool/sc.db" }},
		{"redis", map[string]string{
			"STICKYCALLS_REDIS_URL":             "redis://a:26379,redis://b:26379",
			"STICKYCALLS_REDIS_SENTINEL_MASTER": "mymaster",
		}, func(c *Config) { c.RedisURL, c.RedisSentinelMaster = "redis://a:26379,redis://b:26379", "mymaster" }},
		{"public url loses one trailing slash", map[string]string{"STICKYCALLS_PUBLIC_URL": "https://calls.example.com/"},
			func(c *Config) { c.PublicURL = "https://calls.example.com" }},
		{"admin token", map[string]string{"STICKYCALLS_ADMIN_TOKEN": "s3cret"}, func(c *Config) { c.AdminToken = "s3cret" }},
		{"log level", map[string]string{"STICKYCALLS_LOG_LEVEL": "debug"}, func(c *Config) { c.LogLevel = "debug" }},
		{"durations", map[string]string{
			"STICKYCALLS_WEBHOOK_DEADLINE": "1.5s",
			"STICKYCALLS_LOOKUP_TIMEOUT":   "250ms",
			"STICKYCALLS_SWEEP_INTERVAL":   "1h",
			"STICKYCALLS_SHUTDOWN_TIMEOUT": "30s",
			"STICKYCALLS_READ_TIMEOUT":     "5s",
		}, func(c *Config) {
			c.WebhookDeadline, c.LookupTimeout = 1500*time.Millisecond, 250*time.Millisecond
			c.SweepInterval, c.ShutdownTimeout, c.ReadTimeout = time.Hour, 30*time.Second, 5*time.Second
		}},
		{"max connections", map[string]string{"STICKYCALLS_MAX_CONNECTIONS": "100"}, func(c *Config) { c.MaxConnections = 100 }},
		{"wait replicas", map[string]string{"STICKYCALLS_REDIS_WAIT_REPLICAS": "1"}, func(c *Config) { c.RedisWaitReplicas = 1 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := defaults()
			tt.want(&want)
			got, err := Load(envOf(tt.env))
			if err != nil {
				t.Fatalf("Load(%v) error: %v", tt.env, err)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("Load(%v) mismatch (-want +got):\n%s", tt.env, diff)
			}
		})
	}
}

func TestLoadTwilioEnv(t *testing.T) {
	tests := []struct {
		name string
		yaml string // "" means no file
		env  map[string]string
		want Twilio
	}{
		{"default tenant from TWILIO_*", "", map[string]string{
			"TWILIO_ACCOUNT_SID":         "AC0001",
			"TWILIO_AUTH_TOKEN":          "tok",
			"TWILIO_AUTH_TOKEN_PREVIOUS": "old",
			"TWILIO_API_KEY":             "SK01",
			"TWILIO_API_SECRET":          "sec",
		}, Twilio{AccountSID: "AC0001", AuthToken: "tok", PreviousAuthToken: "old", APIKey: "SK01", APISecret: "sec"}},
		{"file names the variables", `
tenants:
  default:
    twilio:
      account_sid: AC0002
      auth_token_env: ACME_TOKEN
      previous_auth_token_env: ACME_TOKEN_OLD
      api_key_env: ACME_KEY
      api_secret_env: ACME_SECRET
`, map[string]string{
			"ACME_TOKEN": "t2", "ACME_TOKEN_OLD": "o2", "ACME_KEY": "SK02", "ACME_SECRET": "s2",
			"TWILIO_ACCOUNT_SID": "AC0001", "TWILIO_AUTH_TOKEN": "tok",
		}, Twilio{AccountSID: "AC0002", AuthToken: "t2", PreviousAuthToken: "o2", APIKey: "SK02", APISecret: "s2"}},
		{"file fields win one by one", `
tenants:
  default:
    twilio: {auth_token_env: ACME_TOKEN}
`, map[string]string{"ACME_TOKEN": "t2", "TWILIO_ACCOUNT_SID": "AC0001", "TWILIO_AUTH_TOKEN": "tok"},
			Twilio{AccountSID: "AC0001", AuthToken: "t2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.yaml != "" {
				tt.env["STICKYCALLS_CONFIG"] = writeConfig(t, tt.yaml)
			}
			cfg, err := Load(envOf(tt.env))
			if err != nil {
				t.Fatalf("Load() error: %v", err)
			}
			if diff := cmp.Diff(tt.want, cfg.Tenants["default"].Twilio); diff != "" {
				t.Errorf("Load().Tenants[default].Twilio mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestLoadOtherTenantIgnoresTwilioEnv(t *testing.T) {
	path := writeConfig(t, "tenants:\n  acme:\n    twilio: {account_sid: AC0003, auth_token_env: ACME_TOKEN}\n")
	env := map[string]string{"STICKYCALLS_CONFIG": path, "ACME_TOKEN": "a", "TWILIO_API_KEY": "SK01", "TWILIO_API_SECRET": "s"}
	cfg, err := Load(envOf(env))
	if err != nil {
		t.Fatalf("Load() error: %v", err)
	}
	want := Twilio{AccountSID: "AC0003", AuthToken: "a"}
	if got := cfg.Tenants["acme"].Twilio; got != want {
		t.Errorf("Load().Tenants[acme].Twilio = %+v, want %+v", got, want)
	}
}

const fullExample = `
public_url: https://calls.example.com/
tenants:
  default:
    plans:
      prod: {rate_limit_per_minute: 600, monthly_quota: 100000}
      test: {rate_limit_per_minute: 60, monthly_quota: 1000}
    twilio:
      account_sid: AC0123456789abcdef0123456789abcdef
      auth_token_env: ACME_TWILIO_AUTH_TOKEN
      previous_auth_token_env: ACME_TWILIO_AUTH_TOKEN_OLD
    scoring: {weights: {ani_voip: 0.2, recency_days: 14, dormant_days: 0, ani_confirmed: 0.1}, thresholds: {reuse: 0.5, confirm: 0.3, household_reuse: 0.5, usual_attestation: 0.8}}
  acme-2:
    plans:
      test: {monthly_quota: 50}
numbers:
  "+18005550100":
    tenant: default
    greetings: support
    next: {dial: "+14155550000"}
    fallback: {dial: "+14155550000"}
    dial_timeout: 20
    unanswered: {voicemail: "Please leave a message after the tone."}
  "+18005550101":
    tenant: acme-2
    next: {stream: "wss://agent.example.com/media"}
  "+442071838750":
    next: {redirect: "https://app.example.com/twiml"}
  "+18005550102":
    next:
      conversation_relay:
        url: wss://agent.example.com/relay
        language: en-GB
        voice: en-GB-Journey-D
        tts_provider: Google
        transcription_provider: Deepgram
        speech_model: nova-3-general
        interruptible: any
        welcome_greeting_interruptible: none
        dtmf_detection: true
    fallback: {dial: "+14155550000"}
greetings:
  support:
    language: en-US
    voice: Polly.Joanna-Neural
    details_min_confidence: 0.8
    reuse: "Welcome back, {{.Name}}!"
    reuse_intent: "I see you called {{.Attempts}} time(s) about {{.Intent}}. Has that been resolved?"
    confirm: "Hello! Am I speaking with {{.Name}}? Press 1 or say yes."
    ignore: "Hello! Thanks for calling."
    fallback: "Hello! Thanks for calling."
    welcome: "Hi! Thanks for calling Acme."
    voice_reuse_intent: "You called about {{.Intent}}."
    connecting: "One moment."
    declined: "My mistake."
    yes: ["yes", "you bet"]
    no: ["no", "wrong person"]
    min_speech_confidence: 0.5
  short:
    reuse: "{{if .Name}}Hi {{.Name}}{{else}}Hi{{end}}"
`

func TestLoadFullFile(t *testing.T) {
	yes := true
	env := map[string]string{
		"STICKYCALLS_CONFIG":         writeConfig(t, fullExample),
		"STICKYCALLS_PUBLIC_URL":     "https://ignored.example.com",
		"ACME_TWILIO_AUTH_TOKEN":     "current",
		"ACME_TWILIO_AUTH_TOKEN_OLD": "previous",
	}
	want := defaults()
	want.PublicURL = "https://calls.example.com"
	want.Tenants = map[string]Tenant{
		"default": {
			Plans: map[string]Plan{
				"prod": {RateLimitPerMinute: 600, MonthlyQuota: 100000},
				"test": {RateLimitPerMinute: 60, MonthlyQuota: 1000},
			},
			Twilio: Twilio{AccountSID: "AC0123456789abcdef0123456789abcdef", AuthToken: "current", PreviousAuthToken: "previous"},
			Scoring: Scoring{Weights: map[string]float64{"ani_voip": 0.2, "recency_days": 14, "dormant_days": 0, "ani_confirmed": 0.1},
				Thresholds: map[string]float64{"reuse": 0.5, "confirm": 0.3, "household_reuse": 0.5, "usual_attestation": 0.8}},
		},
		"acme-2": {Plans: map[string]Plan{"test": {MonthlyQuota: 50}}, Scoring: emptyTenant().Scoring},
	}
	want.Numbers = map[string]Number{
		"+18005550100": {Tenant: "default", Greetings: "support", Next: Action{Dial: "+14155550000"}, Fallback: Action{Dial: "+14155550000"},
			DialTimeout: 20 * time.Second, Unanswered: Unanswered{Voicemail: "Please leave a message after the tone."}},
		"+18005550101":  {Tenant: "acme-2", Next: Action{Stream: "wss://agent.example.com/media"}, DialTimeout: 30 * time.Second},
		"+442071838750": {Tenant: "default", Next: Action{Redirect: "https://app.example.com/twiml"}, DialTimeout: 30 * time.Second},
		"+18005550102": {Tenant: "default", Next: Action{ConversationRelay: &ConversationRelay{
			URL: "wss://agent.example.com/relay", Language: "en-GB", Voice: "en-GB-Journey-D", TTSProvider: "Google",
			TranscriptionProvider: "Deepgram", SpeechModel: "nova-3-general", Interruptible: "any", WelcomeGreetingInterruptible: "none",
			DTMFDetection: &yes,
		}}, Fallback: Action{Dial: "+14155550000"}, DialTimeout: 30 * time.Second},
	}
	want.Greetings = map[string]GreetingSet{
		"support": {
			Language:             "en-US",
			Voice:                "Polly.Joanna-Neural",
			DetailsMinConfidence: 0.8,
			Reuse:                "Welcome back, {{.Name}}!",
			ReuseIntent:          "I see you called {{.Attempts}} time(s) about {{.Intent}}. Has that been resolved?",
			Confirm:              "Hello! Am I speaking with {{.Name}}? Press 1 or say yes.",
			Ignore:               "Hello! Thanks for calling.",
			Fallback:             "Hello! Thanks for calling.",
			Welcome:              "Hi! Thanks for calling Acme.",
			VoiceReuseIntent:     "You called about {{.Intent}}.",
			Connecting:           "One moment.",
			Declined:             "My mistake.",
			Yes:                  []string{"yes", "you bet"},
			No:                   []string{"no", "wrong person"},
			MinSpeechConfidence:  0.5,
		},
		"short": {DetailsMinConfidence: 0.7, MinSpeechConfidence: 0.4, Reuse: "{{if .Name}}Hi {{.Name}}{{else}}Hi{{end}}"},
	}
	got, err := Load(envOf(env))
	if err != nil {
		t.Fatalf("Load(full example) error: %v", err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Load(full example) mismatch (-want +got):\n%s", diff)
	}
}

func TestLoadValidFiles(t *testing.T) {
	tests := map[string]string{
		"empty":         "",
		"only comments": "# nothing yet\n",
		"only numbers":  "numbers:\n  \"+18005550100\":\n    next: {dial: \"sip:agent@pbx.example.com\"}\n",
		"null sections": "tenants:\nnumbers:\ngreetings:\n",
	}
	for name, yaml := range tests {
		t.Run(name, func(t *testing.T) {
			cfg, err := Load(envOf(map[string]string{"STICKYCALLS_CONFIG": writeConfig(t, yaml)}))
			if err != nil {
				t.Fatalf("Load(%q) error: %v", yaml, err)
			}
			if _, ok := cfg.Tenants["default"]; !ok {
				t.Errorf("Load(%q).Tenants = %v, want a default tenant", yaml, cfg.Tenants)
			}
		})
	}
}

// A number's agent headers take their values from the environment.
func TestLoadAgentHeaders(t *testing.T) {
	yaml := "numbers:\n  \"+18005550100\":\n    next: {stream: \"wss://agent.example.com/media\"}\n    agent_headers: {authorization: AGENT_AUTH}\n"
	cfg, err := Load(envOf(map[string]string{"STICKYCALLS_CONFIG": writeConfig(t, yaml), "AGENT_AUTH": "Bearer s3cret"}))
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Numbers["+18005550100"].AgentHeaders; len(got) != 1 || got["Authorization"] != "Bearer s3cret" {
		t.Errorf("AgentHeaders = %v, want Authorization from AGENT_AUTH", got)
	}
}

func TestLoadProblems(t *testing.T) {
	tests := []struct {
		name string
		yaml string // "" means no file
		env  map[string]string
		want []string // each must appear in the error
	}{
		{"env values", "", map[string]string{
			"STICKYCALLS_ADDR":                  "8080",
			"STICKYCALLS_LOG_LEVEL":             "verbose",
			"STICKYCALLS_WEBHOOK_DEADLINE":      "soon",
			"STICKYCALLS_LOOKUP_TIMEOUT":        "0s",
			"STICKYCALLS_SWEEP_INTERVAL":        "-1m",
			"STICKYCALLS_SHUTDOWN_TIMEOUT":      "15",
			"STICKYCALLS_MAX_CONNECTIONS":       "lots",
			"STICKYCALLS_TLS_CERT_FILE":         "cert.pem",
			"STICKYCALLS_OUTBOX":                "stickycalls.db",
			"STICKYCALLS_PUBLIC_URL":            "calls.example.com",
			"STICKYCALLS_REDIS_SENTINEL_MASTER": "mymaster",
			"TWILIO_ACCOUNT_SID":                "XY01",
			"TWILIO_API_KEY":                    "SK01",
		}, []string{
			"STICKYCALLS_ADDR: must be host:port",
			"STICKYCALLS_LOG_LEVEL: must be debug, info, warn or error",
			"STICKYCALLS_WEBHOOK_DEADLINE: not a duration",
			"STICKYCALLS_LOOKUP_TIMEOUT: must be more than zero",
			"STICKYCALLS_SWEEP_INTERVAL: must be more than zero",
			"STICKYCALLS_SHUTDOWN_TIMEOUT: not a duration",
			"STICKYCALLS_MAX_CONNECTIONS: must be a whole number",
			"STICKYCALLS_TLS_CERT_FILE: needs STICKYCALLS_TLS_KEY_FILE too",
			"STICKYCALLS_OUTBOX: must be another file than STICKYCALLS_DATA",
			"STICKYCALLS_PUBLIC_URL: must be an absolute http or https URL",
			"STICKYCALLS_REDIS_SENTINEL_MASTER: needs STICKYCALLS_REDIS_URL",
			"TWILIO_ACCOUNT_SID: an account SID starts with AC",
			`tenants["default"].twilio: an API key and an API secret go together`,
		}},
		{"missing file", "", map[string]string{"STICKYCALLS_CONFIG": "/nonexistent/sc.yaml"}, []string{
			"STICKYCALLS_CONFIG: cannot read config file", "/nonexistent/sc.yaml",
		}},
		{"unknown fields", `
public_url: https://calls.example.com
tenants:
  default:
    twilio:
      auth_token: abc
numbers:
  "+18005550100":
    next: {dial: "+14155550000"}
    whisper: yes
colour: blue
`, nil, []string{
			`:6: unknown field "auth_token" in twilio`,
			`:10: unknown field "whisper" in a number`,
			`:11: unknown field "colour" in the top level`,
		}},
		{"agent headers", `
numbers:
  "+18005550100":
    next: {stream: "wss://agent.example.com/media"}
    agent_headers: {Authorization: AGENT_AUTH, "X Bad": AGENT_AUTH, X-Empty: UNSET_VAR, X-Key: "Bearer pasted-secret"}
    transfer_targets: ["+14155550100", "sip:desk@pbx.example.com", "555-0100"]
  "+18005550101":
    next: {dial: "+14155550000"}
    agent_headers: {Authorization: AGENT_AUTH}
    dial_timeout: 2
    unanswered: {message: "Sorry.", dial: "+1555"}
  "+18005550103":
    next: {stream: "wss://agent.example.com/media", whisper: false}
    fallback: {dial: "sip:desk@pbx.example.com", whisper: true}
  "+18005550104":
    next: {conversation_relay: {url: "https://agent.example.com", interruptible: "sometimes", language: "english please"}}
    agent_headers: {Authorization: AGENT_AUTH}
  "+18005550105":
    next: {conversation_relay: {language: en-US}, dial: "+14155550000"}
`, map[string]string{"AGENT_AUTH": "Bearer s3cret"}, []string{
			`numbers["+18005550104"].next.conversation_relay.url: required: the ws:// or wss:// URL of the agent, got "https://agent.example.com"`,
			`numbers["+18005550104"].next.conversation_relay.interruptible: one of none, dtmf, speech, any; got "sometimes"`,
			`numbers["+18005550104"].next.conversation_relay.language: a BCP 47 language tag such as en-US, got "english please"`,
			`numbers["+18005550105"].next: exactly one of dial, stream, conversation_relay, redirect`,
			`numbers["+18005550103"].next.whisper: only a dial has an agent to whisper to`,
			`numbers["+18005550100"].transfer_targets[2]: must be an E.164 number`,
			`numbers["+18005550100"].agent_headers["X Bad"]: not an HTTP header name`,
			`numbers["+18005550100"].agent_headers["X-Empty"]: the environment variable it names is empty or unset`,
			`numbers["+18005550100"].agent_headers["X-Key"]: must name an environment variable`,
			`numbers["+18005550101"].agent_headers: only a number whose next action is a stream or a conversation_relay has an agent to send them to`,
			`numbers["+18005550101"].dial_timeout: must be whole seconds from 5 to 600, got 2`,
			`numbers["+18005550101"].unanswered: at most one of message, voicemail, dial`,
		}},
		{"bad template fields", `
greetings:
  support:
    reuse: "Hi {{.Name}}, your balance is {{.Balance}}"
    confirm: "{{if .Name}}{{.Customer.Email}}{{end}}"
    ignore: "{{$.Phone}}"
    fallback: "{{template \"nope\"}}"
    reuse_intent: "{{.Intent"
    connecting: "{{.Name}} {{.Phone}}"
    yes: ["yes", "", "!!"]
    min_speech_confidence: 1.5
`, nil, []string{
			`greetings["support"].connecting: uses .Phone`,
			`greetings["support"].yes[1]: must be a word or phrase`,
			`greetings["support"].yes[2]: must be a word or phrase`,
			`greetings["support"].min_speech_confidence: must be from 0 to 1, got 1.5`,
			`greetings["support"].reuse: uses .Balance`,
			`greetings["support"].confirm: uses .Customer.Email`,
			`greetings["support"].ignore: uses $.Phone`,
			`greetings["support"].fallback: uses undefined template "nope"`,
			`greetings["support"].reuse_intent: template: reuse_intent:1:`,
		}},
		{"many problems", `
public_url: ftp://calls.example.com
tenants:
  Acme!:
    plans:
      staging: {rate_limit_per_minute: 10}
      prod: {rate_limit_per_minute: -1, monthly_quota: -5}
  beta:
    twilio:
      account_sid: AC0001
      auth_token_env: BETA_TOKEN
      previous_auth_token_env: "1abc"
      api_key_env: BETA_KEY
    scoring:
      weights: {ani_mobile: 1.5, recency_days: 2.5, loudness: 0.1, dormant_days: 120, ani_disputed: 0.3}
      thresholds: {reuse: 0.4, confirm: 0.6, high: 0.95, very_high: 0.9, low: 0.1}
  gamma:
    twilio: {account_sid: AC0001}
numbers:
  "+1800":
    next: {}
  "+18005550100":
    tenant: nobody
    greetings: missing
    next: {dial: "+14155550000", stream: "wss://agent.example.com"}
  "+18005550101":
    next: {stream: "https://agent.example.com"}
    fallback: {dial: "555-0000"}
  "+18005550102":
    next: {redirect: "/twiml"}
greetings:
  support:
    details_min_confidence: 1.5
`, map[string]string{"BETA_KEY": "SK01"}, []string{
			"public_url: must be an absolute http or https URL",
			`tenants["Acme!"]: a tenant name is 1 to 64 characters`,
			`tenants["Acme!"].plans["staging"]: a mode is test or prod`,
			`tenants["Acme!"].plans["prod"].rate_limit_per_minute: must be 0 (unlimited) or more`,
			`tenants["Acme!"].plans["prod"].monthly_quota: must be 0 (unlimited) or more`,
			`tenants["beta"].twilio.auth_token_env: the environment variable it names is empty or unset`,
			`tenants["beta"].twilio.previous_auth_token_env: must name an environment variable`,
			`tenants["beta"].twilio: an API key and an API secret go together`,
			`tenants["beta"].scoring.weights["ani_mobile"]: must be from 0 to 1`,
			`tenants["beta"].scoring.weights["recency_days"]: must be a whole number of days from 1 to 90`,
			`tenants["beta"].scoring.weights["loudness"]: unknown weight`,
			`tenants["beta"].scoring.weights["dormant_days"]: must be a whole number of days from 0 (no limit) to 90`,
			`tenants["beta"].scoring.thresholds["low"]: unknown threshold`,
			`tenants["beta"].scoring.thresholds: confirm (0.6) must not be above reuse (0.4)`,
			`tenants["beta"].scoring.thresholds: high (0.95) must not be above very_high (0.9)`,
			`tenants["gamma"].twilio.account_sid: tenant "beta" has the same account`,
			`numbers["+1800"]: a number is + then 8 to 15 digits`,
			`numbers["+1800"].next: exactly one of dial, stream, conversation_relay, redirect`,
			`numbers["+18005550100"].tenant: no tenant "nobody"`,
			`numbers["+18005550100"].greetings: no greeting set "missing"`,
			`numbers["+18005550100"].next: exactly one of dial, stream, conversation_relay, redirect`,
			`numbers["+18005550101"].next.stream: must be a ws:// or wss:// URL`,
			`numbers["+18005550101"].fallback.dial: must be an E.164 number`,
			`numbers["+18005550102"].next.redirect: must be an http:// or https:// URL`,
			`greetings["support"].details_min_confidence: must be from 0 to 1`,
		}},
		{"two catch-all tenants", `
tenants:
  acme:
    twilio: {auth_token_env: ACME_TOKEN}
`, map[string]string{"ACME_TOKEN": "a", "TWILIO_AUTH_TOKEN": "d"}, []string{
			`tenants["default"].twilio: tenant "acme" also has an auth token and no account_sid`,
		}},
		{"yaml syntax", "tenants: [\n", nil, []string{"stickycalls.yaml:"}},
		{"two documents", "public_url: https://a.example.com\n---\npublic_url: https://b.example.com\n", nil,
			[]string{"must hold exactly one YAML document"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := map[string]string{}
			for k, v := range tt.env {
				env[k] = v
			}
			if tt.yaml != "" {
				env["STICKYCALLS_CONFIG"] = writeConfig(t, tt.yaml)
			}
			cfg, err := Load(envOf(env))
			if err == nil {
				t.Fatalf("Load() error = nil, want problems %q", tt.want)
			}
			if diff := cmp.Diff(Config{}, cfg); diff != "" {
				t.Errorf("Load() returned a non-zero Config with an error (-want +got):\n%s", diff)
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, "config:") {
				t.Errorf("Load() error = %q, want it to start with %q", msg, "config:")
			}
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("Load() error =\n%s\nwant it to contain %q", msg, w)
				}
			}
		})
	}
}

func TestLoadProblemsSortedOnePerLine(t *testing.T) {
	env := map[string]string{"STICKYCALLS_LOG_LEVEL": "loud", "STICKYCALLS_ADDR": "x", "STICKYCALLS_LOOKUP_TIMEOUT": "-1s"}
	_, err := Load(envOf(env))
	if err == nil {
		t.Fatal("Load() error = nil, want three problems")
	}
	lines := strings.Split(err.Error(), "\n")
	if got, want := lines[0], "config: 3 problems:"; got != want {
		t.Errorf("Load() error's first line = %q, want %q", got, want)
	}
	if got := lines[1:]; len(got) != 3 || !slices.IsSorted(got) {
		t.Errorf("Load() error's problems = %q, want 3 sorted lines", got)
	}
}

func TestLoadSecretsNotEchoed(t *testing.T) {
	path := writeConfig(t, "tenants:\n  default:\n    twilio: {auth_token_env: 0123abcdef0123abcdef}\n")
	_, err := Load(envOf(map[string]string{"STICKYCALLS_CONFIG": path}))
	if err == nil || strings.Contains(err.Error(), "0123abcdef") {
		t.Errorf("Load() error = %v, want a problem that does not echo the value", err)
	}
}
