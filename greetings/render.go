package greetings

import (
	"errors"
	"strings"
	"text/template"
	"unicode"
)

// text is one kind of text in a set.
type text int

// The texts of a set, in the order the configuration file lists them.
const (
	textReuse text = iota
	textReuseIntent
	textConfirm
	textIgnore
	textFallback
	// Voice's own texts: nothing collects an answer after them.
	textWelcome
	textVoiceIntent
	textConnecting
	textDeclined
	numTexts
)

// String returns the text's name in the configuration file.
func (t text) String() string {
	switch t {
	case textReuse:
		return "reuse"
	case textReuseIntent:
		return "reuse_intent"
	case textConfirm:
		return "confirm"
	case textIgnore:
		return "ignore"
	case textWelcome:
		return "welcome"
	case textVoiceIntent:
		return "voice_reuse_intent"
	case textConnecting:
		return "connecting"
	case textDeclined:
		return "declined"
	}
	return "fallback"
}

// source returns the template source of t in c.
func (t text) source(c Set) string {
	switch t {
	case textReuse:
		return c.Reuse
	case textReuseIntent:
		return c.ReuseIntent
	case textConfirm:
		return c.Confirm
	case textIgnore:
		return c.Ignore
	case textWelcome:
		return c.Welcome
	case textVoiceIntent:
		return c.VoiceReuseIntent
	case textConnecting:
		return c.Connecting
	case textDeclined:
		return c.Declined
	}
	return c.Fallback
}

// data is everything a template can see. It holds no confidence, level or
// source, so no template can speak them.
type data struct {
	Name     string
	Intent   string // the intent as words: "refund request"
	Attempts int
}

// String makes {{.}} speak nothing: a template speaks only the variables it
// names.
func (data) String() string { return "" }

// render executes t of s, or else the built-in t, with d.
func (g *Greeter) render(s *set, t text, d data) string {
	if out, ok := execute(s.tmpl[t], d); ok {
		return out
	}
	if out, ok := execute(g.builtin.tmpl[t], d); ok {
		return out
	}
	return builtinFallback // unreachable: built-in templates always execute
}

// maxText bounds a rendered text; Twilio's <Say> takes at most 4,096 characters.
const maxText = 2000

// execute runs tm and tidies its output. ok is false if tm is nil, fails,
// panics or says nothing speakable.
func execute(tm *template.Template, d data) (out string, ok bool) {
	if tm == nil {
		return "", false
	}
	// Templates are operator-written code run on the call path; the caller
	// must hear something whatever they do.
	defer func() {
		if recover() != nil {
			out, ok = "", false
		}
	}()
	var w cappedWriter
	if err := tm.Execute(&w, d); err != nil {
		return "", false
	}
	out = tidy(w.b.String())
	return out, strings.IndexFunc(out, isWordRune) >= 0
}

var errTooLong = errors.New("greeting too long")

// cappedWriter fails once more than maxText bytes are written, so a runaway
// template cannot build an unbounded string.
type cappedWriter struct{ b strings.Builder }

func (w *cappedWriter) Write(p []byte) (int, error) {
	if w.b.Len()+len(p) > maxText {
		return 0, errTooLong
	}
	return w.b.Write(p)
}

// tidy collapses white space and joins punctuation that an empty variable
// left standing alone to the word before it: "Welcome back, !" becomes
// "Welcome back!".
func tidy(s string) string {
	var out []string
	for _, w := range strings.Fields(s) {
		if n := len(out); n > 0 && strings.Trim(w, ",.!?;:") == "" {
			out[n-1] = strings.TrimRight(out[n-1], ",") + w
			continue
		}
		out = append(out, w)
	}
	return strings.Join(out, " ")
}

// spoken turns an intent slug into words a voice can say: separators become
// spaces and camelCase is split, so "refund_request" and "refundRequest"
// both read "refund request". It adds no article, which slugs give no way
// to choose.
func spoken(slug string) string {
	rs := []rune(slug)
	var b strings.Builder
	for i, r := range rs {
		switch {
		case r == '_' || r == '-' || r == '.' || r == '/' || unicode.IsSpace(r) || unicode.IsControl(r):
			r = ' '
		case i > 0 && unicode.IsUpper(r) && unicode.IsLower(rs[i-1]):
			b.WriteByte(' ')
			if i+1 < len(rs) && unicode.IsLower(rs[i+1]) {
				r = unicode.ToLower(r) // a capitalized word, not an initialism like ID
			}
		}
		b.WriteRune(r)
	}
	return strings.Join(strings.Fields(b.String()), " ")
}

func isWordRune(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) }
