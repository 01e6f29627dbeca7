// Package greetings picks and renders the first sentence spoken to a caller
// from a start result and the greeting set of the number dialled. It is pure:
// no I/O, no clock, no logging. A Greeter is safe for concurrent use.
//
// Tiers follow API.md §7:
//
//   - reuse: the reuse text ("Welcome back, John!"; "Welcome back!" with no
//     stored name), followed by the reuse_intent text for the first open
//     intent only when the confidence reaches the set's details_min_confidence
//     (default 0.7) or STIR/SHAKEN attestation A contributed ("stir:A").
//   - confirm: the confirm question for the stored name. With no stored name
//     there is nothing to confirm, so the generic greeting is spoken and the
//     returned Greeting's Tier is "ignore": Tier is always the tier whose text
//     was actually spoken.
//   - ignore (and any unknown recommendation, or a nil result): the generic
//     greeting, the ignore text. No name is ever given to it.
//
// Templates are executed with data holding exactly Name, Intent and Attempts;
// no confidence number can reach them. A template that fails to execute, or
// renders nothing speakable, is replaced by the built-in text of the same
// kind, so a greeting is never empty and rendering never panics.
package greetings

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"text/template"

	"github.com/stickycalls/stickycalls/context/callapi"
	"github.com/stickycalls/stickycalls/context/callcontext"
	"github.com/stickycalls/stickycalls/context/identity"
)

var _ callcontext.Greeter = (*Greeter)(nil)

// Built-in texts and settings, used by numbers without a greeting set and
// for every zero field of a named set: the guide's greetings, in English.
const (
	builtinLanguage             = "en-US"
	builtinDetailsMinConfidence = 0.7
	builtinReuse                = "Welcome back{{if .Name}}, {{.Name}}{{end}}!"
	builtinReuseIntent          = "I see you called {{if gt .Attempts 1}}{{.Attempts}} times {{end}}about {{.Intent}}. Has that been resolved?"
	builtinConfirm              = "Hello! Am I speaking with {{.Name}}? Press 1 or say yes."
	builtinIgnore               = "Hello! Thanks for calling. May I have your name?"
	builtinFallback             = "Hello! Thanks for calling."
	// Voice speaks an open intent before the next action, so it tells it
	// rather than asking: nothing would collect the answer.
	builtinVoiceIntent = "I see you called {{if gt .Attempts 1}}{{.Attempts}} times {{end}}about {{.Intent}}."
)

// voiceLines are the built-in short lines voice adds, by base language:
// before a dial, and after a caller said no to the confirm question.
var voiceLines = map[string]struct{ connecting, declined string }{
	"en": {"Connecting you now.", "Sorry about that."},
	"es": {"Le comunicamos ahora.", "Disculpe."},
	"fr": {"Je vous mets en relation.", "Excusez-moi."},
	"de": {"Ich verbinde Sie jetzt.", "Entschuldigung."},
	"pt": {"Vou transferir a sua chamada agora.", "Desculpe."},
}

// Set is one greeting set, as the configuration file names it. Zero fields
// take the built-in values; Voice "" means the voice's own default.
type Set struct {
	Language, Voice      string
	DetailsMinConfidence float64 // 0 (or less) means the default 0.7
	// Text/template sources that may use .Name, .Intent and .Attempts.
	// Reuse, ReuseIntent, Confirm and Ignore are the REST start's
	// greeting.text (the guide's texts); Fallback is spoken when
	// something failed or the confirm question went unanswered.
	Reuse, ReuseIntent, Confirm, Ignore, Fallback string
	// Voice's texts, which never ask what nothing collects: Welcome greets
	// a new or unrecognized caller (default: Fallback), VoiceReuseIntent
	// tells an open intent (default: ReuseIntent when the set gives one,
	// else a statement), Connecting comes before a dial and Declined after
	// a "no" (defaults in the set's language for en, es, fr, de and pt,
	// else English).
	Welcome, VoiceReuseIntent, Connecting, Declined string
	// Yes and No replace the built-in words of the set's language that
	// answer the confirm question; MinSpeechConfidence is the speech
	// recognizer's confidence below which an answer is asked again (0:
	// 0.4). The voice package reads them.
	Yes, No             []string
	MinSpeechConfidence float64
}

// Greeter renders greetings. Build it with New; it is immutable afterwards.
type Greeter struct {
	builtin *set
	sets    map[string]*set   // by set name
	numbers map[string]string // dialled E.164 number → set name
}

// New returns a Greeter for the named sets. numbers maps a dialled E.164
// number to a set name; a number that is absent, or maps to "" or to a name
// not in sets, uses the built-in set. New copies both maps. It returns one
// error listing every template that does not parse, by set and field.
func New(sets map[string]Set, numbers map[string]string) (*Greeter, error) {
	builtin, bad := compile(Set{})
	if len(bad) > 0 {
		return nil, fmt.Errorf("greetings: built-in set: %w", errors.Join(bad...)) // a bug in this package
	}
	g := &Greeter{builtin: builtin, sets: make(map[string]*set, len(sets)), numbers: maps.Clone(numbers)}
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(sets)) {
		s, bad := compile(sets[name])
		for _, err := range bad {
			errs = append(errs, fmt.Errorf("greetings: set %q: %w", name, err))
		}
		g.sets[name] = s
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return g, nil
}

// SetFor returns the set used for calls to dnis, with every zero field
// filled in from the built-in set.
func (g *Greeter) SetFor(dnis string) Set { return g.setFor(dnis).conf }

// Greet returns the greeting for a start result: its Tier is the tier
// actually spoken, which is "ignore" when a confirm has no name to ask about.
func (g *Greeter) Greet(res *callapi.StartResult) callapi.Greeting {
	if res == nil {
		return g.Generic("")
	}
	s := g.setFor(res.DNIS)
	switch res.Identity.Recommendation {
	case identity.Reuse:
		return callapi.Greeting{Tier: identity.Reuse, Text: g.reuse(s, res, textReuseIntent)}
	case identity.Confirm:
		return g.confirm(s, res.Name)
	}
	return g.generic(s)
}

// Generic returns the generic greeting of dnis's set (its ignore text), which
// names nobody. The voice package speaks it when everything else fails.
func (g *Greeter) Generic(dnis string) callapi.Greeting {
	return g.generic(g.setFor(dnis))
}

// Confirm returns the confirm question for name in dnis's set ("Am I
// speaking with John?"), or the generic greeting, with Tier "ignore", when
// name is blank.
func (g *Greeter) Confirm(dnis, name string) callapi.Greeting {
	return g.confirm(g.setFor(dnis), name)
}

// Fallback returns the fallback text of dnis's set, which names nobody, with
// Tier "ignore", for the voice package's own fallbacks (such as a confirm
// question that went unanswered).
func (g *Greeter) Fallback(dnis string) callapi.Greeting {
	return callapi.Greeting{Tier: identity.Ignore, Text: g.render(g.setFor(dnis), textFallback, data{})}
}

// Voice returns what the voice webhooks say to res's caller before the
// next action: Greet's greeting, except that a new or unrecognized caller
// hears the welcome, which asks nothing, and an open intent is told, not
// asked about. Tier is as Greet's.
func (g *Greeter) Voice(res *callapi.StartResult) callapi.Greeting {
	if res == nil {
		return g.welcome(g.builtin)
	}
	s := g.setFor(res.DNIS)
	switch res.Identity.Recommendation {
	case identity.Reuse:
		return callapi.Greeting{Tier: identity.Reuse, Text: g.reuse(s, res, textVoiceIntent)}
	case identity.Confirm:
		if c := g.confirm(s, res.Name); c.Tier == identity.Confirm {
			return c
		}
	}
	return g.welcome(s)
}

// Connecting is the line dnis's set says before a dial ("Connecting you
// now.").
func (g *Greeter) Connecting(dnis string) string {
	return g.render(g.setFor(dnis), textConnecting, data{})
}

// Declined is the line dnis's set says after a caller said no to the
// confirm question ("Sorry about that."), instead of a second hello.
func (g *Greeter) Declined(dnis string) string {
	return g.render(g.setFor(dnis), textDeclined, data{})
}

func (g *Greeter) welcome(s *set) callapi.Greeting {
	return callapi.Greeting{Tier: identity.Ignore, Text: g.render(s, textWelcome, data{})}
}

func (g *Greeter) setFor(dnis string) *set {
	if s, ok := g.sets[g.numbers[dnis]]; ok && g.numbers[dnis] != "" {
		return s
	}
	return g.builtin
}

func (g *Greeter) generic(s *set) callapi.Greeting {
	return callapi.Greeting{Tier: identity.Ignore, Text: g.render(s, textIgnore, data{})}
}

func (g *Greeter) confirm(s *set, name string) callapi.Greeting {
	name = strings.TrimSpace(name)
	if name == "" {
		return g.generic(s)
	}
	return callapi.Greeting{Tier: identity.Confirm, Text: g.render(s, textConfirm, data{Name: name})}
}

// reuse is the reuse text, then the first open intent's text (intent)
// when details may be spoken.
func (g *Greeter) reuse(s *set, res *callapi.StartResult, intent text) string {
	d := data{Name: strings.TrimSpace(res.Name)}
	text := g.render(s, textReuse, d)
	if !detailsAllowed(s.conf.DetailsMinConfidence, res.Identity) {
		return text
	}
	for _, in := range res.OpenIntents {
		if d.Intent = spoken(in.Intent); d.Intent != "" {
			d.Attempts = max(in.AttemptCount, 1)
			return text + " " + g.render(s, intent, d)
		}
	}
	return text
}

// detailsAllowed reports whether open intents may be spoken. Caller ID can
// be spoofed, so they need a high confidence or a fully attested number.
// Both sides are compared in whole hundredths, the precision of a
// confidence, so 0.7 computed as 0.1*7 still passes a 0.7 gate.
func detailsAllowed(min float64, id callapi.IdentityView) bool {
	if slices.Contains(id.Sources, "stir:A") {
		return true
	}
	return math.Round(id.Confidence*100) >= math.Round(min*100)
}

// resolve fills a set's zero fields from the built-in set.
func resolve(c Set) Set {
	c.Language = cmp.Or(c.Language, builtinLanguage)
	if c.DetailsMinConfidence <= 0 {
		c.DetailsMinConfidence = builtinDetailsMinConfidence
	}
	c.Reuse = cmp.Or(c.Reuse, builtinReuse)
	c.Confirm = cmp.Or(c.Confirm, builtinConfirm)
	c.Ignore = cmp.Or(c.Ignore, builtinIgnore)
	c.VoiceReuseIntent = cmp.Or(c.VoiceReuseIntent, c.ReuseIntent, builtinVoiceIntent)
	c.ReuseIntent = cmp.Or(c.ReuseIntent, builtinReuseIntent)
	c.Fallback = cmp.Or(c.Fallback, builtinFallback)
	c.Welcome = cmp.Or(c.Welcome, c.Fallback)
	lines, ok := voiceLines[baseLanguage(c.Language)]
	if !ok {
		lines = voiceLines["en"]
	}
	c.Connecting = cmp.Or(c.Connecting, lines.connecting)
	c.Declined = cmp.Or(c.Declined, lines.declined)
	if c.MinSpeechConfidence <= 0 {
		c.MinSpeechConfidence = builtinMinSpeechConfidence
	}
	return c
}

// builtinMinSpeechConfidence is the default floor of a spoken answer's
// recognition confidence.
const builtinMinSpeechConfidence = 0.4

// baseLanguage is a BCP 47 tag's language, lower case: "es-MX" → "es".
func baseLanguage(tag string) string {
	base, _, _ := strings.Cut(strings.ToLower(tag), "-")
	return base
}

// set is a resolved Set with its templates parsed.
type set struct {
	conf Set
	tmpl [numTexts]*template.Template
}

// compile resolves c and parses its templates, returning one error for
// every template that does not parse.
func compile(c Set) (*set, []error) {
	s := &set{conf: resolve(c)}
	var errs []error
	for k := range numTexts {
		t, err := template.New(k.String()).Parse(k.source(s.conf))
		if err != nil {
			if k.source(c) != "" { // not an inherited text: its own field is reported
				errs = append(errs, fmt.Errorf("%s: %w", k, err))
			}
			continue
		}
		s.tmpl[k] = t
	}
	return s, errs
}
