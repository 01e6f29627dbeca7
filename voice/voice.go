// Package voice answers Twilio's voice webhooks: it recognizes the caller,
// speaks a greeting chosen by tier and runs the number's next action. It
// degrades to the generic greeting within a deadline whatever fails, so a
// caller is never dropped or delayed because of this service.
package voice

import (
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/stickycalls/stickycalls/context/callcontext"
	"github.com/stickycalls/stickycalls/greetings"
)

// Account is one tenant's Twilio account as the webhooks need it.
type Account struct {
	Tenant            string
	AccountSID        string // empty: every account no other tenant claims
	AuthToken         string
	PreviousAuthToken string // still accepted during a rotation
}

// Action is what happens after the greeting: exactly one of Dial, Stream,
// Relay and Redirect is set.
type Action struct {
	Dial     string             // E.164 number or sip: URI
	Stream   string             // wss:// URL of the AI agent, reached over a media stream
	Relay    *ConversationRelay // the AI agent, reached over ConversationRelay
	Redirect string             // the operator's TwiML app
	Whisper  *bool              // the dialled agent hears the context first; nil: yes for a number, no for SIP
}

// ConversationRelay is an AI agent that Twilio's ConversationRelay speaks
// for: Twilio turns the caller's speech into text and the agent's text
// into speech. The fields other than URL are attributes of the
// <ConversationRelay> noun; empty ones are left out (Twilio's defaults),
// but Language defaults to the greeting set's.
type ConversationRelay struct {
	URL                          string // wss:// URL of the agent; Twilio reaches /voice/relay, which relays to it
	Language                     string
	Voice                        string
	TTSProvider                  string
	TranscriptionProvider        string
	SpeechModel                  string
	Interruptible                string
	WelcomeGreetingInterruptible string
	DTMFDetection                *bool
}

// agentURL is the URL of the AI agent a reaches over protocol p, or "".
func (a Action) agentURL(p *protocol) string {
	if p == conversationRelay {
		if a.Relay != nil {
			return a.Relay.URL
		}
		return ""
	}
	return a.Stream
}

// connects reports whether a connects the call to an AI agent.
func (a Action) connects() bool { return a.Stream != "" || a.Relay != nil }

// whisper reports whether a dial speaks the caller's context to the agent.
func (a Action) whisper() bool {
	if a.Whisper != nil {
		return *a.Whisper
	}
	return !strings.HasPrefix(a.Dial, "sip:")
}

// Number is how calls to one of the operator's numbers are answered.
type Number struct {
	Tenant   string
	Next     Action
	Fallback Action // after a stream ends or fails
	// AgentHeaders are added to the relay's upgrade request to the agent
	// (beside the X-Twilio-Signature it always carries).
	AgentHeaders map[string]string
	// TransferTargets are the numbers and SIP URIs the number's agent may
	// transfer a caller to; none means any.
	TransferTargets []string
	// DialTimeout is how long a dial rings (0: 30 s).
	DialTimeout time.Duration
	// Unanswered runs when a dial is not answered.
	Unanswered Unanswered
}

// Unanswered is what a caller hears when a dial is not answered: at most
// one field is set; none is an apology and goodbye.
type Unanswered struct {
	Message   string // said, then the call ends
	Voicemail string // the prompt before a <Record>
	Dial      string // another number or SIP URI, tried once
}

// allows reports whether the number's agent may transfer a caller to.
func (n Number) allows(to string) bool {
	return len(n.TransferTargets) == 0 || slices.Contains(n.TransferTargets, to)
}

// Config is everything the webhooks need.
type Config struct {
	PublicURL string // scheme and host Twilio calls; empty: taken from the request
	Accounts  []Account
	Numbers   map[string]Number // by E.164
	Deadline  time.Duration     // whole-webhook deadline, default 800ms
	Greeter   *greetings.Greeter
	Metrics   *Metrics
	Now       func() time.Time // the clock of stream tokens; nil: time.Now
	Relay     RelayLimits      // bounds of /voice/stream and /voice/relay; zero fields take defaults
	Shutdown  <-chan struct{}  // closed when the server shuts down; the router hands it to HandleStream and HandleRelay
	Streams   *sync.WaitGroup  // counts open media streams and relay sessions, so shutdown can wait for them (nil: not counted)
	// Outbox keeps the completions the store could not take (nil: they
	// are answered 503 instead).
	Outbox Outbox
}

// Outbox is a local durable queue of completions, applied when the store
// is back (see context/outbox).
type Outbox interface {
	Put(tenant string, c callcontext.Completion) error
}

func (c Config) deadline() time.Duration {
	if c.Deadline <= 0 {
		return 800 * time.Millisecond
	}
	return c.Deadline
}

// baseURL is the public scheme and host of the service for r: the
// configured public URL, else what a proxy in front says (Forwarded, then
// X-Forwarded-Proto and X-Forwarded-Host), else the request's own. A forged
// header gains nothing: the signature must still match the URL Twilio was
// given.
func (c Config) baseURL(r *http.Request) string {
	if c.PublicURL != "" {
		return c.PublicURL
	}
	scheme, host := "http", r.Host
	if r.TLS != nil {
		scheme = "https"
	}
	if p := firstValue(r.Header.Get("X-Forwarded-Proto")); p != "" {
		scheme = p
	}
	if h := firstValue(r.Header.Get("X-Forwarded-Host")); h != "" {
		host = h
	}
	if p, h := forwarded(r.Header.Get("Forwarded")); p != "" || h != "" {
		scheme, host = cmpOr(p, scheme), cmpOr(h, host)
	}
	return strings.ToLower(scheme) + "://" + host
}

// forwarded reads proto and host from the first element of a Forwarded
// header (RFC 7239), the one the proxy nearest the client wrote.
func forwarded(h string) (proto, host string) {
	first, _, _ := strings.Cut(h, ",")
	for _, pair := range strings.Split(first, ";") {
		k, v, ok := strings.Cut(strings.TrimSpace(pair), "=")
		v = strings.Trim(v, `"`)
		switch {
		case !ok:
		case strings.EqualFold(k, "proto"):
			proto = v
		case strings.EqualFold(k, "host"):
			host = v
		}
	}
	return proto, host
}

// firstValue is the first of a comma-separated header's values.
func firstValue(h string) string {
	v, _, _ := strings.Cut(h, ",")
	return strings.TrimSpace(v)
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// Metrics count what the webhooks did.
type Metrics struct {
	fallbacks *prometheus.CounterVec
	tiers     *prometheus.CounterVec
	dropped   *prometheus.CounterVec
	streams   *prometheus.CounterVec
	open      prometheus.Gauge
}

// NewMetrics registers the voice metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		fallbacks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stickycalls_voice_fallbacks_total", Help: "Calls answered with the generic greeting because something failed, by reason.",
		}, []string{"reason"}),
		tiers: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stickycalls_voice_greetings_total", Help: "Incoming calls answered, by greeting tier.",
		}, []string{"tier"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stickycalls_voice_stream_dropped_frames_total", Help: "Frames from AI agents not relayed to Twilio, by reason (event, malformed, closed).",
		}, []string{"reason"}),
		streams: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stickycalls_voice_streams_total", Help: "Media streams and ConversationRelay sessions that ended, by how they ended.",
		}, []string{"outcome"}),
	}
	m.open = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "stickycalls_voice_streams_open", Help: "Media streams and ConversationRelay sessions this instance relays now.",
	})
	reg.MustRegister(m.fallbacks, m.tiers, m.dropped, m.streams, m.open)
	return m
}

func (m *Metrics) fallback(reason string) {
	if m != nil {
		m.fallbacks.WithLabelValues(reason).Inc()
	}
}

// streamOpened counts a stream from its upgrade; call the returned func
// when it ends.
func (m *Metrics) streamOpened() func() {
	if m == nil {
		return func() {}
	}
	m.open.Inc()
	return m.open.Dec
}

func (m *Metrics) tier(t string) {
	if m != nil {
		m.tiers.WithLabelValues(t).Inc()
	}
}
