package greetings_test

import (
	"strings"
	"testing"

	"github.com/stickycalls/stickycalls/context/callapi"
	"github.com/stickycalls/stickycalls/context/identity"
	"github.com/stickycalls/stickycalls/greetings"
)

// Any operator-written template: New refuses it or every greeting renders
// something speakable and bounded, never a panic, never empty.
func FuzzGreetingTemplate(f *testing.F) {
	for _, s := range []string{
		"Welcome back, {{.Name}}!", "{{if gt .Attempts 1}}{{.Attempts}} times{{end}} about {{.Intent}}",
		"{{range .Name}}{{.}}{{end}}", "{{.Name | printf \"%q\"}}", "{{template \"x\"}}{{define \"x\"}}{{template \"x\"}}{{end}}",
		"{{index .Name 99}}", "{{len .Intent}}", "{{/* nothing */}}", "{{", "{{.Balance}}", strings.Repeat("{{.Name}}", 500),
	} {
		f.Add(s, "John Doe", "refund_request", 3)
	}
	f.Fuzz(func(t *testing.T, src, name, intent string, attempts int) {
		g, err := greetings.New(map[string]greetings.Set{"s": {Reuse: src, ReuseIntent: src, Confirm: src, Ignore: src, Fallback: src,
			Welcome: src, VoiceReuseIntent: src, Connecting: src, Declined: src}}, map[string]string{"+18005550100": "s"})
		if err != nil {
			return // refused at start, with the reason
		}
		for _, rec := range []identity.Recommendation{identity.Reuse, identity.Confirm, identity.Ignore} {
			res := &callapi.StartResult{DNIS: "+18005550100", Name: name,
				Identity:    callapi.IdentityView{Recommendation: rec, Confidence: 0.9},
				OpenIntents: []callapi.IntentView{{Intent: intent, AttemptCount: attempts}}}
			for _, got := range []callapi.Greeting{g.Greet(res), g.Voice(res), g.Fallback(res.DNIS),
				{Text: g.Connecting(res.DNIS)}, {Text: g.Declined(res.DNIS)}} {
				if strings.TrimSpace(got.Text) == "" || len(got.Text) > 4096 {
					t.Errorf("template %q (name %q, intent %q) rendered %q: want speakable text under Twilio's 4,096", src, name, intent, got.Text)
				}
			}
		}
	})
}
