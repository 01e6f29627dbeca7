// Package config reads the service's configuration from the environment and
// from the optional YAML file named by STICKYCALLS_CONFIG, and checks it once.
//
// It is a leaf package: it imports no other package of this project, and the
// packages that need a setting receive the value, never a Config.
package config

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// DefaultTenant is the name of the tenant that always exists.
const DefaultTenant = "default"

// Config is the whole configuration, with defaults applied and every value
// checked. Every map in it is non-nil.
type Config struct {
	Addr                string        // STICKYCALLS_ADDR, default ":8080"
	DataPath            string        // STICKYCALLS_DATA, default "stickycalls.db"
	RedisURL            string        // STICKYCALLS_REDIS_URL, may be a comma-separated list
	RedisSentinelMaster string        // STICKYCALLS_REDIS_SENTINEL_MASTER
	RedisWaitReplicas   int           // STICKYCALLS_REDIS_WAIT_REPLICAS, default 0: replicas every write waits for (WAIT) before it is acknowledged
	PublicURL           string        // file public_url, else STICKYCALLS_PUBLIC_URL; no trailing slash
	AdminToken          string        // STICKYCALLS_ADMIN_TOKEN
	LogLevel            string        // STICKYCALLS_LOG_LEVEL: debug, info (default), warn or error
	WebhookDeadline     time.Duration // STICKYCALLS_WEBHOOK_DEADLINE, default 800ms
	LookupTimeout       time.Duration // STICKYCALLS_LOOKUP_TIMEOUT, default 300ms
	SweepInterval       time.Duration // STICKYCALLS_SWEEP_INTERVAL, default 10m
	IdempotencyLease    time.Duration // STICKYCALLS_IDEMPOTENCY_LEASE, default 30s: how long an unfinished request holds its call_id or key
	RateLimitTimeout    time.Duration // STICKYCALLS_RATE_LIMIT_TIMEOUT, default 50ms: then the limiter falls back to this instance's share
	ShutdownTimeout     time.Duration // STICKYCALLS_SHUTDOWN_TIMEOUT, default 15s
	ReadTimeout         time.Duration // STICKYCALLS_READ_TIMEOUT, default 10s: how long a client may take to send a whole request
	MaxConnections      int           // STICKYCALLS_MAX_CONNECTIONS, default 4096: open HTTP connections, media streams not counted
	TLSCertFile         string        // STICKYCALLS_TLS_CERT_FILE: with TLSKeyFile, the service serves HTTPS itself
	TLSKeyFile          string        // STICKYCALLS_TLS_KEY_FILE
	MinCallDuration     time.Duration // STICKYCALLS_MIN_CALL_DURATION, default 5s: a shorter completed call links nothing
	StoreStartupWait    time.Duration // STICKYCALLS_STORE_STARTUP_WAIT, default 30s: how long serve waits at start for a Redis that does not answer yet
	OutboxPath          string        // STICKYCALLS_OUTBOX, default DataPath without ".db" plus ".outbox.db": where completions wait while the store is away

	Tenants   map[string]Tenant      // always holds DefaultTenant
	Numbers   map[string]Number      // keyed by E.164 number
	Greetings map[string]GreetingSet // named greeting sets from the file
}

// Tenant is one organization's plans, Twilio credentials and scoring overrides.
type Tenant struct {
	Plans   map[string]Plan // keyed by mode, "test" or "prod"; an absent mode is unlimited
	Twilio  Twilio
	Scoring Scoring
	// VapiSecret is the secret Vapi sends with the tenant's server
	// messages, read from the variable vapi.secret_env names; "" refuses
	// every message.
	VapiSecret string
	// RetellAPIKey signs the tenant's Retell webhooks, read from the
	// variable retell.api_key_env names; "" refuses every webhook.
	RetellAPIKey string
}

// Plan limits one mode of a tenant. Zero in a field means unlimited.
type Plan struct {
	RateLimitPerMinute int // file rate_limit_per_minute
	MonthlyQuota       int // file monthly_quota
}

// Twilio holds a tenant's resolved Twilio credentials: the secret values
// themselves, never the names of the variables that held them.
//
// For the default tenant, each field the file does not set comes from the
// environment: TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN, TWILIO_AUTH_TOKEN_PREVIOUS
// (the token being rotated out, still accepted on signatures),
// TWILIO_API_KEY and TWILIO_API_SECRET.
type Twilio struct {
	AccountSID        string // file account_sid; starts with "AC"; empty means any account no other tenant claims
	AuthToken         string // from the variable named by auth_token_env
	PreviousAuthToken string // from the variable named by previous_auth_token_env
	APIKey            string // from the variable named by api_key_env
	APISecret         string // from the variable named by api_secret_env
}

// Scoring holds a tenant's overrides of the default scoring. A name that is
// absent keeps its default.
type Scoring struct {
	// Weights is keyed by ani_mobile, ani_landline, ani_unknown, ani_voip,
	// ani_shared_factor, stir_failed, stir_a, external_id, customer_ref and
	// recency (each in [0,1]), and recency_days (a whole number of days, 1 to 90).
	Weights map[string]float64
	// Thresholds is keyed by reuse, confirm, very_high, high and medium, each in [0,1].
	Thresholds map[string]float64
}

// Number is how the service answers calls to one of the operator's numbers.
type Number struct {
	Tenant    string // a key of Config.Tenants, default DefaultTenant
	Greetings string // a key of Config.Greetings; empty means the built-in set
	Next      Action // what happens after the greeting; never zero
	Fallback  Action // what runs after a stream ends or fails; may be zero
	// AgentHeaders are static headers of the relay's upgrade to the
	// number's AI agent (such as Authorization), their values read from the
	// environment variables the file names.
	AgentHeaders map[string]string
	// TransferTargets are the numbers and SIP URIs the number's agent may
	// transfer a caller to (stickycalls.transfer); empty means any.
	TransferTargets []string
	// DialTimeout is how long a dial rings before it counts as not
	// answered: file dial_timeout in whole seconds, 5 to 600, default 30.
	DialTimeout time.Duration
	// Unanswered runs when a dial is not answered (no-answer, busy,
	// failed); zero: a built-in apology and goodbye.
	Unanswered Unanswered
	// Vapi, when set, answers the number's calls on a Vapi assistant.
	Vapi *VapiNumber
	// Retell, when set, answers the number's calls on a Retell agent.
	Retell *RetellNumber
}

// RetellNumber is how a number a Retell agent answers is served.
type RetellNumber struct {
	AgentID      string            // override_agent_id; "" keeps the number's agent
	Intent       string            // the custom analysis key of the end's intent
	IntentStatus string            // … of its status
	Variables    map[string]string // variable name → custom analysis key
}

// VapiNumber is how a number served by a Vapi assistant is answered.
type VapiNumber struct {
	AssistantID  string            // the assistant Vapi runs for the call
	Intent       string            // the structured output key of the end's intent ("" for none)
	IntentStatus string            // … of its status: open, resolved or abandoned
	Variables    map[string]string // variable name → structured output key
}

// Unanswered is what a caller hears when the number's dial is not
// answered. At most one field is set.
type Unanswered struct {
	Message   string // said, then the call ends
	Voicemail string // the prompt said before the beep of a <Record>
	Dial      string // another E.164 number or sip: URI, tried once
}

// Action is one next step of a call. Exactly one field is set, except in a
// zero Number.Fallback.
type Action struct {
	Dial   string // an E.164 number or a "sip:" URI
	Stream string // a ws:// or wss:// URL of an AI voice agent, reached over a media stream
	// ConversationRelay is an AI voice agent that Twilio's
	// ConversationRelay speaks for.
	ConversationRelay *ConversationRelay
	Redirect          string // an http(s) URL of the operator's TwiML app
	// Whisper says whether the dialled agent hears the caller's context
	// before the bridge; nil: yes for a number, no for a SIP URI (which
	// gets the call_id and customer_ref as x- headers instead).
	Whisper *bool
}

// ConversationRelay is an AI agent reached over Twilio's ConversationRelay:
// its URL, and the attributes of the <ConversationRelay> noun (empty ones
// are left to Twilio's defaults, but Language defaults to the greeting
// set's).
type ConversationRelay struct {
	URL                          string // a ws:// or wss:// URL
	Language                     string
	Voice                        string
	TTSProvider                  string
	TranscriptionProvider        string
	SpeechModel                  string
	Interruptible                string // none, dtmf, speech or any
	WelcomeGreetingInterruptible string // none, dtmf, speech or any
	DTMFDetection                *bool
}

// GreetingSet is one named set of greeting texts. Each text is a text/template
// source that may use only .Name, .Intent and .Attempts; an empty text means
// the built-in one.
type GreetingSet struct {
	Language             string
	Voice                string
	DetailsMinConfidence float64 // file details_min_confidence, in [0,1], default 0.7
	Reuse                string
	ReuseIntent          string // file reuse_intent
	Confirm              string
	Ignore               string
	Fallback             string
	// The voice webhooks' own texts (see greetings.Set).
	Welcome          string // file welcome
	VoiceReuseIntent string // file voice_reuse_intent
	Connecting       string // file connecting
	Declined         string // file declined
	// Yes and No replace the built-in words of the language that answer
	// the confirm question; empty keeps them.
	Yes, No             []string
	MinSpeechConfidence float64 // file min_speech_confidence, in [0,1], default 0.4
}

// Load reads the environment through getenv and, when STICKYCALLS_CONFIG
// names a file, that YAML file, then checks everything once. On any problem
// it returns a zero Config and one error whose text starts with "config:" and
// lists every problem, one per line, sorted, each prefixed by where it is.
// Load does no I/O besides reading that file.
func Load(getenv func(string) string) (Config, error) {
	l := &loader{getenv: getenv}
	cfg := l.env()
	f := l.file(getenv("STICKYCALLS_CONFIG"))
	cfg.PublicURL = l.publicURL(f.PublicURL)
	cfg.Tenants = l.tenants(f.Tenants)
	cfg.Greetings = l.greetingSets(f.Greetings)
	cfg.Numbers = l.numbers(f.Numbers, cfg)
	if err := l.err(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// loader carries what Load reads from and the problems it has found.
type loader struct {
	getenv   func(string) string
	problems []string
}

// add records a problem found at where.
func (l *loader) add(where, format string, args ...any) {
	l.problems = append(l.problems, where+": "+fmt.Sprintf(format, args...))
}

// err returns nil when no problem was found, else one error listing them all.
func (l *loader) err() error {
	switch len(l.problems) {
	case 0:
		return nil
	case 1:
		return fmt.Errorf("config: %s", l.problems[0])
	}
	p := slices.Clone(l.problems)
	slices.Sort(p)
	return fmt.Errorf("config: %d problems:\n%s", len(p), strings.Join(p, "\n"))
}
