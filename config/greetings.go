package config

import (
	"fmt"
	"slices"
	"strings"
	"text/template"
	"text/template/parse"
	"unicode"
)

// greetingSets checks the file's greeting sets and applies their defaults.
func (l *loader) greetingSets(in map[string]greetingFile) map[string]GreetingSet {
	out := make(map[string]GreetingSet, len(in))
	for name, gf := range in {
		where := fmt.Sprintf("greetings[%q]", name)
		if name == "" {
			l.add(where, "a greeting set needs a name: numbers without one use the built-in set")
		}
		out[name] = l.greetingSet(where, gf)
	}
	return out
}

// greetingSet checks one greeting set and applies its defaults.
func (l *loader) greetingSet(where string, gf greetingFile) GreetingSet {
	g := GreetingSet{
		Language:             gf.Language,
		Voice:                gf.Voice,
		DetailsMinConfidence: 0.7,
		Reuse:                gf.Reuse,
		ReuseIntent:          gf.ReuseIntent,
		Confirm:              gf.Confirm,
		Ignore:               gf.Ignore,
		Fallback:             gf.Fallback,
		Welcome:              gf.Welcome,
		VoiceReuseIntent:     gf.VoiceReuseIntent,
		Connecting:           gf.Connecting,
		Declined:             gf.Declined,
		Yes:                  l.answerWords(where+".yes", gf.Yes),
		No:                   l.answerWords(where+".no", gf.No),
		MinSpeechConfidence:  0.4,
	}
	if c := gf.MinSpeechConfidence; c != nil {
		g.MinSpeechConfidence = *c
		if !(*c >= 0 && *c <= 1) {
			l.add(where+".min_speech_confidence", "must be from 0 to 1, got %v", *c)
		}
	}
	if c := gf.DetailsMinConfidence; c != nil {
		g.DetailsMinConfidence = *c
		if !(*c >= 0 && *c <= 1) {
			l.add(where+".details_min_confidence", "must be from 0 to 1, got %v", *c)
		}
	}
	for _, t := range [][2]string{{"reuse", g.Reuse}, {"reuse_intent", g.ReuseIntent},
		{"confirm", g.Confirm}, {"ignore", g.Ignore}, {"fallback", g.Fallback}, {"welcome", g.Welcome},
		{"voice_reuse_intent", g.VoiceReuseIntent}, {"connecting", g.Connecting}, {"declined", g.Declined}} {
		l.template(where+"."+t[0], t[0], t[1])
	}
	return g
}

// answerWords checks a list of words or phrases that answer the confirm
// question: each has a letter or digit and at most 64 bytes, and the list
// at most 200 of them.
func (l *loader) answerWords(where string, words []string) []string {
	if len(words) > 200 {
		l.add(where, "at most 200 phrases, got %d", len(words))
	}
	for i, w := range words {
		if len(w) > 64 || !strings.ContainsFunc(w, func(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) }) {
			l.add(fmt.Sprintf("%s[%d]", where, i), "must be a word or phrase of at most 64 bytes")
		}
	}
	return words
}

// template checks that src parses as a text/template and refers to no data
// but .Name, .Intent and .Attempts, on every branch, taken or not.
func (l *loader) template(where, name, src string) {
	t, err := template.New(name).Parse(src)
	if err != nil {
		l.add(where, "%v", err)
		return
	}
	var bad []string
	for _, tt := range t.Templates() {
		if tt.Tree == nil {
			continue
		}
		walk(tt.Tree.Root, func(n parse.Node) {
			if ref := badRef(n, t); ref != "" && !slices.Contains(bad, ref) {
				bad = append(bad, ref)
			}
		})
	}
	for _, ref := range bad {
		l.add(where, "uses %s; a greeting may use only .Name, .Intent and .Attempts", ref)
	}
}

// badRef returns the text of n if n refers to data a greeting does not have,
// or to a template that is not defined, else "".
func badRef(n parse.Node, t *template.Template) string {
	switch n := n.(type) {
	case *parse.FieldNode:
		if !isGreetingField(n.Ident) {
			return n.String()
		}
	case *parse.VariableNode:
		if len(n.Ident) > 1 && !isGreetingField(n.Ident[1:]) {
			return n.String()
		}
	case *parse.ChainNode:
		return n.String() // none of the three fields has fields of its own
	case *parse.TemplateNode:
		if t.Lookup(n.Name) == nil {
			return fmt.Sprintf("undefined template %q", n.Name)
		}
	}
	return ""
}

// isGreetingField reports whether a field chain is .Name, .Intent or .Attempts.
func isGreetingField(ident []string) bool {
	return len(ident) == 1 && slices.Contains([]string{"Name", "Intent", "Attempts"}, ident[0])
}

// walk calls visit for n and every node below it.
func walk(n parse.Node, visit func(parse.Node)) {
	visit(n)
	for _, c := range children(n) {
		walk(c, visit)
	}
}

// children returns the nodes directly below n. Nil pointers have none.
func children(n parse.Node) []parse.Node {
	switch n := n.(type) {
	case *parse.ListNode:
		if n != nil {
			return n.Nodes
		}
	case *parse.ActionNode:
		return []parse.Node{n.Pipe}
	case *parse.IfNode:
		return branch(&n.BranchNode)
	case *parse.RangeNode:
		return branch(&n.BranchNode)
	case *parse.WithNode:
		return branch(&n.BranchNode)
	case *parse.TemplateNode:
		return []parse.Node{n.Pipe}
	case *parse.PipeNode:
		if n != nil {
			return commands(n.Cmds)
		}
	case *parse.CommandNode:
		return n.Args
	case *parse.ChainNode:
		return []parse.Node{n.Node}
	}
	return nil
}

// branch returns the parts of an if, range or with.
func branch(b *parse.BranchNode) []parse.Node {
	return []parse.Node{b.Pipe, b.List, b.ElseList}
}

// commands converts a pipeline's commands to nodes.
func commands(cmds []*parse.CommandNode) []parse.Node {
	out := make([]parse.Node, len(cmds))
	for i, c := range cmds {
		out[i] = c
	}
	return out
}
