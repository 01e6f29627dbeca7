package config

import (
	"cmp"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"golang.org/x/text/language"
)

// numbers checks the file's numbers against the tenants and greeting sets
// already in cfg.
func (l *loader) numbers(in map[string]numberFile, cfg Config) map[string]Number {
	out := make(map[string]Number, len(in))
	for key, nf := range in {
		where := fmt.Sprintf("numbers[%q]", key)
		if !isE164(key) {
			l.add(where, "a number is + then 8 to 15 digits, the first not 0")
		}
		n := Number{
			Tenant:    cmp.Or(nf.Tenant, DefaultTenant),
			Greetings: nf.Greetings,
			Next:      nf.Next.action(),
			Fallback:  nf.Fallback.action(),
		}
		if _, ok := cfg.Tenants[n.Tenant]; !ok {
			l.add(where+".tenant", "no tenant %q", n.Tenant)
		}
		if _, ok := cfg.Greetings[n.Greetings]; n.Greetings != "" && !ok {
			l.add(where+".greetings", "no greeting set %q", n.Greetings)
		}
		if (nf.Vapi == nil && nf.Retell == nil) || n.Next != (Action{}) { // a number a hosted agent answers may have no next action
			l.action(where+".next", n.Next)
		}
		if n.Fallback != (Action{}) {
			l.action(where+".fallback", n.Fallback)
		}
		n.AgentHeaders = l.agentHeaders(where+".agent_headers", nf.AgentHeaders)
		if len(n.AgentHeaders) > 0 && n.Next.Stream == "" && n.Next.ConversationRelay == nil {
			l.add(where+".agent_headers", "only a number whose next action is a stream or a conversation_relay has an agent to send them to")
		}
		for i, to := range nf.TransferTargets {
			if !isE164(to) && !isSIP(to) {
				l.add(fmt.Sprintf("%s.transfer_targets[%d]", where, i), "must be an E.164 number (+ then 8 to 15 digits) or a sip: URI")
			}
		}
		n.TransferTargets = nf.TransferTargets
		n.DialTimeout = 30 * time.Second
		if t := nf.DialTimeout; t != nil {
			n.DialTimeout = time.Duration(*t) * time.Second
			if *t < 5 || *t > 600 {
				l.add(where+".dial_timeout", "must be whole seconds from 5 to 600, got %d", *t)
			}
		}
		n.Unanswered = l.unanswered(where+".unanswered", Unanswered(nf.Unanswered))
		if rt := nf.Retell; rt != nil {
			n.Retell = &RetellNumber{AgentID: rt.AgentID, Intent: rt.Intent, IntentStatus: rt.IntentStatus, Variables: rt.Variables}
		}
		if v := nf.Vapi; v != nil {
			n.Vapi = &VapiNumber{AssistantID: v.AssistantID, Intent: v.Intent, IntentStatus: v.IntentStatus, Variables: v.Variables}
			if v.AssistantID == "" {
				l.add(where+".vapi.assistant_id", "required: the Vapi assistant that answers the number's calls")
			}
		}
		out[key] = n
	}
	return out
}

// unanswered checks that at most one field of u is set, and that it is
// valid.
func (l *loader) unanswered(where string, u Unanswered) Unanswered {
	set := 0
	for _, s := range []string{u.Message, u.Voicemail, u.Dial} {
		if s != "" {
			set++
		}
	}
	switch {
	case set > 1:
		l.add(where, "at most one of message, voicemail, dial")
	case u.Dial != "" && !isE164(u.Dial) && !isSIP(u.Dial):
		l.add(where+".dial", "must be an E.164 number (+ then 8 to 15 digits) or a sip: URI")
	case len(u.Message) > 1000 || len(u.Voicemail) > 1000:
		l.add(where, "a text of at most 1000 bytes")
	}
	return u
}

// agentHeaders reads each header's value from the environment variable
// the file names for it.
func (l *loader) agentHeaders(where string, in map[string]string) map[string]string {
	if len(in) == 0 {
		return nil
	}
	out := make(map[string]string, len(in))
	for name, env := range in {
		at := fmt.Sprintf("%s[%q]", where, name)
		if !isHeaderName(name) {
			l.add(at, "not an HTTP header name")
			continue
		}
		out[http.CanonicalHeaderKey(name)] = l.secret(at, env, func(string) string { return "" }, "")
		if env == "" {
			l.add(at, "must name the environment variable that holds the header's value")
		}
	}
	return out
}

// isHeaderName reports whether s is an HTTP header name (an RFC 9110 token).
func isHeaderName(s string) bool {
	for _, r := range s {
		if !('A' <= r && r <= 'Z' || 'a' <= r && r <= 'z' || '0' <= r && r <= '9' || strings.ContainsRune("!#$%&'*+-.^_`|~", r)) {
			return false
		}
	}
	return s != ""
}

// action is the Action the file describes.
func (af actionFile) action() Action {
	a := Action{Dial: af.Dial, Stream: af.Stream, Redirect: af.Redirect, Whisper: af.Whisper}
	if cr := af.ConversationRelay; cr != nil {
		c := ConversationRelay(*cr)
		a.ConversationRelay = &c
	}
	return a
}

// action checks that exactly one field of a is set, and that it is valid.
// Dial targets are not echoed: they are phone numbers.
func (l *loader) action(where string, a Action) {
	set := 0
	for _, s := range []string{a.Dial, a.Stream, a.Redirect} { // Whisper goes with Dial
		if s != "" {
			set++
		}
	}
	if a.ConversationRelay != nil {
		set++
	}
	switch {
	case set != 1:
		l.add(where, "exactly one of dial, stream, conversation_relay, redirect")
	case a.Dial != "" && !isE164(a.Dial) && !isSIP(a.Dial):
		l.add(where+".dial", "must be an E.164 number (+ then 8 to 15 digits) or a sip: URI")
	case a.Stream != "" && !isURL(a.Stream, "ws", "wss"):
		l.add(where+".stream", "must be a ws:// or wss:// URL, got %q", a.Stream)
	case a.ConversationRelay != nil:
		l.conversationRelay(where+".conversation_relay", *a.ConversationRelay)
	case a.Redirect != "" && !isURL(a.Redirect, "http", "https"):
		l.add(where+".redirect", "must be an http:// or https:// URL, got %q", a.Redirect)
	}
	if a.Whisper != nil && a.Dial == "" {
		l.add(where+".whisper", "only a dial has an agent to whisper to")
	}
}

// conversationRelay checks a conversation_relay action's settings.
func (l *loader) conversationRelay(where string, cr ConversationRelay) {
	if !isURL(cr.URL, "ws", "wss") {
		l.add(where+".url", "required: the ws:// or wss:// URL of the agent, got %q", cr.URL)
	}
	for _, f := range []struct{ name, value string }{
		{"interruptible", cr.Interruptible}, {"welcome_greeting_interruptible", cr.WelcomeGreetingInterruptible},
	} {
		switch f.value {
		case "", "none", "dtmf", "speech", "any":
		default:
			l.add(where+"."+f.name, "one of none, dtmf, speech, any; got %q", f.value)
		}
	}
	if cr.Language != "" && !isLanguageTag(cr.Language) {
		l.add(where+".language", "a BCP 47 language tag such as en-US, got %q", cr.Language)
	}
}

// isE164 reports whether s is "+" then 8 to 15 digits, the first not 0.
func isE164(s string) bool {
	digits, ok := strings.CutPrefix(s, "+")
	if !ok || len(digits) < 8 || len(digits) > 15 || digits[0] == '0' {
		return false
	}
	for _, r := range digits {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// isSIP reports whether s is a "sip:" URI with something after the scheme
// and no white space.
func isSIP(s string) bool {
	rest, ok := strings.CutPrefix(s, "sip:")
	return ok && rest != "" && !strings.ContainsAny(rest, " \t\r\n")
}

// isURL reports whether s is an absolute URL with a host and one of schemes.
func isURL(s string, schemes ...string) bool {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" {
		return false
	}
	for _, scheme := range schemes {
		if u.Scheme == scheme {
			return true
		}
	}
	return false
}

// isLanguageTag reports whether s is a well-formed BCP 47 language tag.
func isLanguageTag(s string) bool {
	_, err := language.Parse(s)
	return err == nil
}
