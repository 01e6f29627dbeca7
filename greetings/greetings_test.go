package greetings_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/stickycalls/stickycalls/context/callapi"
	"github.com/stickycalls/stickycalls/context/identity"
	"github.com/stickycalls/stickycalls/greetings"
)

const (
	support    = "+18005550100" // the "support" set
	partial    = "+18005550101" // the "partial" set: only reuse given
	missingSet = "+18005550102" // names a set that does not exist
	emptySet   = "+18005550103" // names ""
	unknown    = "+19995550000" // not configured
)

func newGreeter(t *testing.T) *greetings.Greeter {
	t.Helper()
	sets := map[string]greetings.Set{
		"support": {
			Language: "es-US", Voice: "Polly.Lupe-Neural", DetailsMinConfidence: 0.9,
			Reuse:       "¡Hola de nuevo, {{.Name}}!",
			ReuseIntent: "Llamó {{.Attempts}} vez/veces por {{.Intent}}.",
			Confirm:     "¿Hablo con {{.Name}}?",
			Ignore:      "¡Hola! Gracias por llamar.",
			Fallback:    "Gracias por llamar.",
		},
		"partial": {Reuse: "Good to hear from you again, {{.Name}}."},
	}
	numbers := map[string]string{support: "support", partial: "partial", missingSet: "nope", emptySet: ""}
	g, err := greetings.New(sets, numbers)
	if err != nil {
		t.Fatalf("New() error = %v, want nil", err)
	}
	return g
}

// start builds a start result; intents alternate slug and attempt count.
func start(rec identity.Recommendation, conf float64, name, dnis string, sources []string, intents ...any) *callapi.StartResult {
	res := &callapi.StartResult{DNIS: dnis, Name: name,
		Identity: callapi.IdentityView{Recommendation: rec, Confidence: conf, Sources: sources}}
	for i := 0; i+1 < len(intents); i += 2 {
		res.OpenIntents = append(res.OpenIntents,
			callapi.IntentView{Intent: intents[i].(string), Status: "open", AttemptCount: intents[i+1].(int)})
	}
	return res
}

func TestGreetBuiltin(t *testing.T) {
	g := newGreeter(t)
	const (
		generic = "Hello! Thanks for calling. May I have your name?"
		welcome = "Welcome back, John Doe!"
		refund  = " I see you called about refund request. Has that been resolved?"
	)
	reuse, confirm, ignore := identity.Reuse, identity.Confirm, identity.Ignore
	mobile := []string{"ani:mobile"}
	attested := []string{"ani:mobile", "stir:A"}
	tests := []struct {
		name string
		res  *callapi.StartResult
		want callapi.Greeting
	}{
		{"reuse", start(reuse, 0.95, "John Doe", "", mobile), callapi.Greeting{Tier: reuse, Text: welcome}},
		{"reuse without name", start(reuse, 0.95, "", "", mobile), callapi.Greeting{Tier: reuse, Text: "Welcome back!"}},
		{"reuse name padded", start(reuse, 0.95, "  John Doe ", "", mobile), callapi.Greeting{Tier: reuse, Text: welcome}},
		{"reuse with intent", start(reuse, 0.95, "John Doe", "", mobile, "refund_request", 1),
			callapi.Greeting{Tier: reuse, Text: welcome + refund}},
		{"first intent only", start(reuse, 0.95, "John Doe", "", mobile, "refund_request", 1, "billing", 1),
			callapi.Greeting{Tier: reuse, Text: welcome + refund}},
		{"blank intent skipped", start(reuse, 0.95, "John Doe", "", mobile, "__", 4, "refund_request", 1),
			callapi.Greeting{Tier: reuse, Text: welcome + refund}},
		{"attempts", start(reuse, 0.95, "John Doe", "", mobile, "refund_request", 3),
			callapi.Greeting{Tier: reuse, Text: welcome + " I see you called 3 times about refund request. Has that been resolved?"}},
		{"zero attempts as one", start(reuse, 0.95, "John Doe", "", mobile, "refund_request", 0),
			callapi.Greeting{Tier: reuse, Text: welcome + refund}},
		{"slug words", start(reuse, 0.95, "", "", mobile, "orderStatus.update-ID", 1),
			callapi.Greeting{Tier: reuse, Text: "Welcome back! I see you called about order status update ID. Has that been resolved?"}},
		{"camel initialism", start(reuse, 0.95, "", "", mobile, "lostSIMCard", 1),
			callapi.Greeting{Tier: reuse, Text: "Welcome back! I see you called about lost SIMCard. Has that been resolved?"}},
		{"gate exactly 0.7", start(reuse, 0.7, "John Doe", "", mobile, "refund_request", 1),
			callapi.Greeting{Tier: reuse, Text: welcome + refund}},
		{"gate 0.1*7", start(reuse, 0.1*7, "John Doe", "", mobile, "refund_request", 1),
			callapi.Greeting{Tier: reuse, Text: welcome + refund}},
		{"below gate", start(reuse, 0.69, "John Doe", "", mobile, "refund_request", 1),
			callapi.Greeting{Tier: reuse, Text: welcome}},
		{"below gate, stir:A", start(reuse, 0.55, "John Doe", "", attested, "refund_request", 1),
			callapi.Greeting{Tier: reuse, Text: welcome + refund}},
		{"below gate, stir:failed", start(reuse, 0.55, "John Doe", "", []string{"stir:failed"}, "refund_request", 1),
			callapi.Greeting{Tier: reuse, Text: welcome}},
		{"confirm", start(confirm, 0.4, "John Doe", "", mobile, "refund_request", 2),
			callapi.Greeting{Tier: confirm, Text: "Hello! Am I speaking with John Doe? Press 1 or say yes."}},
		{"confirm without name", start(confirm, 0.4, "", "", mobile), callapi.Greeting{Tier: ignore, Text: generic}},
		{"confirm blank name", start(confirm, 0.4, " \t", "", mobile), callapi.Greeting{Tier: ignore, Text: generic}},
		{"ignore", start(ignore, 0.2, "", "", nil), callapi.Greeting{Tier: ignore, Text: generic}},
		{"ignore never names", start(ignore, 0.95, "John Doe", "", attested, "refund_request", 2),
			callapi.Greeting{Tier: ignore, Text: generic}},
		{"no recommendation", start("", 0, "John Doe", "", nil), callapi.Greeting{Tier: ignore, Text: generic}},
		{"zero result", &callapi.StartResult{}, callapi.Greeting{Tier: ignore, Text: generic}},
		{"nil result", nil, callapi.Greeting{Tier: ignore, Text: generic}},
	}
	for _, tt := range tests {
		if got := g.Greet(tt.res); got != tt.want {
			t.Errorf("%s: Greet() = %+v, want %+v", tt.name, got, tt.want)
		}
	}
}

func TestGreetBySet(t *testing.T) {
	g := newGreeter(t)
	reuse, confirm, ignore := identity.Reuse, identity.Confirm, identity.Ignore
	mobile := []string{"ani:mobile"}
	tests := []struct {
		name string
		res  *callapi.StartResult
		want callapi.Greeting
	}{
		{"support reuse", start(reuse, 0.95, "Ana", support, mobile, "refund_request", 2),
			callapi.Greeting{Tier: reuse, Text: "¡Hola de nuevo, Ana! Llamó 2 vez/veces por refund request."}},
		{"support gate 0.9", start(reuse, 0.85, "Ana", support, mobile, "refund_request", 2),
			callapi.Greeting{Tier: reuse, Text: "¡Hola de nuevo, Ana!"}},
		{"support gate stir:A", start(reuse, 0.85, "Ana", support, []string{"stir:A"}, "refund_request", 1),
			callapi.Greeting{Tier: reuse, Text: "¡Hola de nuevo, Ana! Llamó 1 vez/veces por refund request."}},
		{"support reuse without name", start(reuse, 0.95, "", support, mobile),
			callapi.Greeting{Tier: reuse, Text: "¡Hola de nuevo!"}},
		{"support confirm", start(confirm, 0.4, "Ana", support, mobile),
			callapi.Greeting{Tier: confirm, Text: "¿Hablo con Ana?"}},
		{"support confirm without name", start(confirm, 0.4, "", support, mobile),
			callapi.Greeting{Tier: ignore, Text: "¡Hola! Gracias por llamar."}},
		{"support ignore", start(ignore, 0.1, "", support, nil),
			callapi.Greeting{Tier: ignore, Text: "¡Hola! Gracias por llamar."}},
		{"partial reuse", start(reuse, 0.95, "Ana", partial, mobile, "billing", 1),
			callapi.Greeting{Tier: reuse, Text: "Good to hear from you again, Ana. I see you called about billing. Has that been resolved?"}},
		{"partial ignore is built-in", start(ignore, 0.1, "", partial, nil),
			callapi.Greeting{Tier: ignore, Text: "Hello! Thanks for calling. May I have your name?"}},
		{"unknown number", start(reuse, 0.95, "Ana", unknown, mobile),
			callapi.Greeting{Tier: reuse, Text: "Welcome back, Ana!"}},
		{"unknown set name", start(reuse, 0.95, "Ana", missingSet, mobile),
			callapi.Greeting{Tier: reuse, Text: "Welcome back, Ana!"}},
		{"empty set name", start(reuse, 0.95, "Ana", emptySet, mobile),
			callapi.Greeting{Tier: reuse, Text: "Welcome back, Ana!"}},
	}
	for _, tt := range tests {
		if got := g.Greet(tt.res); got != tt.want {
			t.Errorf("%s: Greet() = %+v, want %+v", tt.name, got, tt.want)
		}
	}
}

func TestSetFor(t *testing.T) {
	g := newGreeter(t)
	builtin := greetings.Set{
		Language: "en-US", DetailsMinConfidence: 0.7,
		Reuse:       "Welcome back{{if .Name}}, {{.Name}}{{end}}!",
		ReuseIntent: "I see you called {{if gt .Attempts 1}}{{.Attempts}} times {{end}}about {{.Intent}}. Has that been resolved?",
		Confirm:     "Hello! Am I speaking with {{.Name}}? Press 1 or say yes.",
		Ignore:      "Hello! Thanks for calling. May I have your name?",
		Fallback:    "Hello! Thanks for calling.",
		Welcome:     "Hello! Thanks for calling.", VoiceReuseIntent: "I see you called {{if gt .Attempts 1}}{{.Attempts}} times {{end}}about {{.Intent}}.",
		Connecting: "Connecting you now.", Declined: "Sorry about that.", MinSpeechConfidence: 0.4,
	}
	withReuse := builtin
	withReuse.Reuse = "Good to hear from you again, {{.Name}}."
	tests := map[string]greetings.Set{
		"":         builtin,
		unknown:    builtin,
		missingSet: builtin,
		emptySet:   builtin,
		partial:    withReuse,
		support: {
			Language: "es-US", Voice: "Polly.Lupe-Neural", DetailsMinConfidence: 0.9,
			Reuse:       "¡Hola de nuevo, {{.Name}}!",
			ReuseIntent: "Llamó {{.Attempts}} vez/veces por {{.Intent}}.",
			Confirm:     "¿Hablo con {{.Name}}?",
			Ignore:      "¡Hola! Gracias por llamar.",
			Fallback:    "Gracias por llamar.",
			Welcome:     "Gracias por llamar.", VoiceReuseIntent: "Llamó {{.Attempts}} vez/veces por {{.Intent}}.",
			Connecting: "Le comunicamos ahora.", Declined: "Disculpe.", MinSpeechConfidence: 0.4,
		},
	}
	for dnis, want := range tests {
		if diff := cmp.Diff(g.SetFor(dnis), want); diff != "" {
			t.Errorf("SetFor(%q) mismatch (-got +want):\n%s", dnis, diff)
		}
	}
}

func TestGenericConfirmFallback(t *testing.T) {
	g := newGreeter(t)
	confirm, ignore := identity.Confirm, identity.Ignore
	tests := []struct {
		call string
		got  callapi.Greeting
		want callapi.Greeting
	}{
		{"Generic(unknown)", g.Generic(unknown), callapi.Greeting{Tier: ignore, Text: "Hello! Thanks for calling. May I have your name?"}},
		{"Generic(support)", g.Generic(support), callapi.Greeting{Tier: ignore, Text: "¡Hola! Gracias por llamar."}},
		{`Confirm(unknown, "John")`, g.Confirm(unknown, "John"), callapi.Greeting{Tier: confirm, Text: "Hello! Am I speaking with John? Press 1 or say yes."}},
		{`Confirm(support, "Ana")`, g.Confirm(support, "Ana"), callapi.Greeting{Tier: confirm, Text: "¿Hablo con Ana?"}},
		{`Confirm(support, "")`, g.Confirm(support, ""), callapi.Greeting{Tier: ignore, Text: "¡Hola! Gracias por llamar."}},
		{"Fallback(unknown)", g.Fallback(unknown), callapi.Greeting{Tier: ignore, Text: "Hello! Thanks for calling."}},
		{"Fallback(support)", g.Fallback(support), callapi.Greeting{Tier: ignore, Text: "Gracias por llamar."}},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s = %+v, want %+v", tt.call, tt.got, tt.want)
		}
	}
}

func TestNewRejectsBrokenTemplates(t *testing.T) {
	sets := map[string]greetings.Set{
		"fine":    {Reuse: "Hi {{.Name}}"},
		"support": {Reuse: "Hi {{.Name", ReuseIntent: "{{if .Intent}}open", Ignore: "ok"},
		"sales":   {Confirm: "{{template \"nope\" .}}{{end}}"},
	}
	g, err := greetings.New(sets, map[string]string{support: "support"})
	if err == nil {
		t.Fatalf("New() = %v, nil; want an error", g)
	}
	msg := err.Error()
	for _, want := range []string{`set "support": reuse: template: reuse:1:`, `set "support": reuse_intent:`, `set "sales": confirm:`} {
		if !strings.Contains(msg, want) {
			t.Errorf("New() error = %q, want it to contain %q", msg, want)
		}
	}
	for _, notWant := range []string{`"fine"`, `"support": ignore`, `"support": confirm`} {
		if strings.Contains(msg, notWant) {
			t.Errorf("New() error = %q, want no %s", msg, notWant)
		}
	}
	if got := strings.Count(msg, "\n") + 1; got != 3 {
		t.Errorf("New() error has %d lines, want 3:\n%s", got, msg)
	}
}

func TestNewNilMaps(t *testing.T) {
	g, err := greetings.New(nil, nil)
	if err != nil {
		t.Fatalf("New(nil, nil) error = %v, want nil", err)
	}
	want := callapi.Greeting{Tier: identity.Reuse, Text: "Welcome back, Jo!"}
	if got := g.Greet(start(identity.Reuse, 0.9, "Jo", support, nil)); got != want {
		t.Errorf("Greet() = %+v, want %+v", got, want)
	}
}

// TestTemplateFailures checks that a template that fails or says nothing is
// replaced by the built-in text of the same kind.
func TestTemplateFailures(t *testing.T) {
	const welcome = "Welcome back, Ana!"
	tests := []struct {
		name  string
		reuse string
		res   *callapi.StartResult
		want  string
	}{
		{"unknown field", "Your balance is {{.Balance}}", start(identity.Reuse, 0.5, "Ana", support, nil), welcome},
		{"nothing but a name", "{{.Name}}!", start(identity.Reuse, 0.5, "", support, nil), "Welcome back!"},
		{"blank output", "{{if .Intent}}x{{end}}  ", start(identity.Reuse, 0.5, "Ana", support, nil), welcome},
		{"bad index", "{{index .Name 99}}", start(identity.Reuse, 0.5, "Ana", support, nil), welcome},
		{"runaway", "{{range 100000}}Hello {{end}}", start(identity.Reuse, 0.5, "Ana", support, nil), welcome},
		{"dot speaks nothing", "Hi {{.}}{{printf \"%v\" .}}, {{.Name}}.", start(identity.Reuse, 0.5, "Ana", support, nil), "Hi, Ana."},
		{"empty name comma", "Welcome back, {{.Name}} !", start(identity.Reuse, 0.5, "", support, nil), "Welcome back!"},
		{"white space", "Welcome\n  back,\t{{.Name}}!", start(identity.Reuse, 0.5, "Ana", support, nil), welcome},
	}
	for _, tt := range tests {
		g, err := greetings.New(map[string]greetings.Set{"s": {Reuse: tt.reuse}}, map[string]string{support: "s"})
		if err != nil {
			t.Fatalf("%s: New() error = %v, want nil", tt.name, err)
		}
		if got := g.Greet(tt.res).Text; got != tt.want {
			t.Errorf("%s: Greet(%q).Text = %q, want %q", tt.name, tt.reuse, got, tt.want)
		}
	}
}

// TestNoConfidenceSpoken checks every tier of every set at several
// confidences: no digit of the confidence is ever spoken.
func TestNoConfidenceSpoken(t *testing.T) {
	g := newGreeter(t)
	recs := []identity.Recommendation{identity.Reuse, identity.Confirm, identity.Ignore}
	for _, conf := range []float64{0.95, 0.73, 0.42, 0.68} {
		digits := strings.NewReplacer("0", "", ".", "").Replace(fmt.Sprint(conf))
		for _, dnis := range []string{"", partial, unknown} {
			for _, rec := range recs {
				for _, sources := range [][]string{nil, {"ani:mobile", "stir:A"}} {
					res := start(rec, conf, "John Doe", dnis, sources, "refund_request", 1)
					got := g.Greet(res).Text
					if strings.ContainsAny(got, digits) || strings.Contains(got, fmt.Sprint(conf)) || strings.Contains(got, "%") {
						t.Errorf("Greet(%s, %v, dnis %q, %v).Text = %q, want no digit of the confidence", rec, conf, dnis, sources, got)
					}
				}
			}
		}
	}
}

func TestGreetConcurrent(t *testing.T) {
	g := newGreeter(t)
	want := "¡Hola de nuevo, Ana! Llamó 2 vez/veces por refund request."
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 200 {
				res := start(identity.Reuse, 0.95, "Ana", support, nil, "refund_request", 2)
				if got := g.Greet(res).Text; got != want {
					t.Errorf("Greet().Text = %q, want %q", got, want)
					return
				}
			}
		})
	}
	wg.Wait()
}

// TestVoice: the voice texts never ask what nothing collects: a new
// caller hears the welcome, not the REST greeting's "May I have your
// name?", and an open intent is told, not asked about.
func TestVoice(t *testing.T) {
	g := newGreeter(t)
	returning := func(dnis, rec string) *callapi.StartResult {
		return &callapi.StartResult{DNIS: dnis, Name: "John",
			Identity:    callapi.IdentityView{Recommendation: identity.Recommendation(rec), Confidence: 0.9},
			OpenIntents: []callapi.IntentView{{Intent: "refund_request", AttemptCount: 2}}}
	}
	tests := []struct {
		name     string
		res      *callapi.StartResult
		wantTier identity.Recommendation
		want     string
	}{
		{"reuse tells the intent", returning(unknown, "reuse"), identity.Reuse, "Welcome back, John! I see you called 2 times about refund request."},
		{"a set's own reuse_intent is kept", returning(support, "reuse"), identity.Reuse, "¡Hola de nuevo, John! Llamó 2 vez/veces por refund request."},
		{"confirm asks", returning(unknown, "confirm"), identity.Confirm, "Hello! Am I speaking with John? Press 1 or say yes."},
		{"confirm without a name welcomes", &callapi.StartResult{Identity: callapi.IdentityView{Recommendation: identity.Confirm}}, identity.Ignore, "Hello! Thanks for calling."},
		{"ignore welcomes", returning(unknown, "ignore"), identity.Ignore, "Hello! Thanks for calling."},
		{"ignore in Spanish", returning(support, "ignore"), identity.Ignore, "Gracias por llamar."},
		{"nil", nil, identity.Ignore, "Hello! Thanks for calling."},
	}
	for _, tt := range tests {
		got := g.Voice(tt.res)
		if got.Tier != tt.wantTier || got.Text != tt.want {
			t.Errorf("%s: Voice = %q %q, want %q %q", tt.name, got.Tier, got.Text, tt.wantTier, tt.want)
		}
	}
	if got := g.Greet(returning(unknown, "ignore")).Text; !strings.Contains(got, "May I have your name?") {
		t.Errorf("Greet(ignore) = %q: the REST greeting keeps the guide's text", got)
	}
	for dnis, want := range map[string][2]string{unknown: {"Connecting you now.", "Sorry about that."}, support: {"Le comunicamos ahora.", "Disculpe."}} {
		if got := [2]string{g.Connecting(dnis), g.Declined(dnis)}; got != want {
			t.Errorf("Connecting, Declined(%s) = %q, want %q", dnis, got, want)
		}
	}
}
