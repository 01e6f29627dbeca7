package voice

import (
	"slices"
	"strings"
	"unicode"

	"golang.org/x/text/runes"
	"golang.org/x/text/transform"
	"golang.org/x/text/unicode/norm"

	"github.com/stickycalls/stickycalls/context/callcontext"
	"github.com/stickycalls/stickycalls/greetings"
)

// phrases are one language's ways of saying yes and no to "Am I speaking
// with …?", of introducing oneself ("this is …"), and the fillers a caller
// starts with; all lower case with accents folded.
type phrases struct {
	yes, no, intro, fillers []string
}

// phrasesOf returns the phrases of a greeting set's language: the set's
// own yes and no words when it gives them, else the built-in ones.
func phrasesOf(set greetings.Set) phrases {
	p := phrasesFor(set.Language)
	if len(set.Yes) > 0 {
		p.yes = folded(set.Yes)
	}
	if len(set.No) > 0 {
		p.no = folded(set.No)
	}
	return p
}

// folded is each phrase as words() reads speech: "That's it" → "that s it".
func folded(list []string) []string {
	out := make([]string, 0, len(list))
	for _, ph := range list {
		if w := words(ph); len(w) > 0 {
			out = append(out, strings.Join(w, " "))
		}
	}
	return out
}

// phrasesFor returns the built-in phrases of a BCP 47 language's base
// language (en, es, fr, de, pt); English for any other.
func phrasesFor(language string) phrases {
	base, _, _ := strings.Cut(strings.ToLower(language), "-")
	switch base {
	case "es":
		return phrases{
			yes: []string{"si", "claro", "correcto", "exacto", "asi es", "soy yo", "el habla", "ella habla", "con el", "con ella",
				"efectivamente", "por supuesto", "desde luego", "eso es", "afirmativo", "si soy yo", "si senor", "si senora"},
			no:      []string{"no", "para nada", "equivocado", "numero equivocado", "incorrecto", "no soy", "no es"},
			intro:   []string{"soy", "habla", "me llamo", "mi nombre es", "aqui"},
			fillers: []string{"eh", "em", "este", "bueno", "pues", "mmm", "ah", "a ver", "hola"},
		}
	case "fr":
		return phrases{
			yes: []string{"oui", "ouais", "c est moi", "exact", "exactement", "tout a fait", "bien sur", "d accord", "c est ca",
				"lui meme", "elle meme", "affirmatif", "absolument", "oui c est moi"},
			no:      []string{"non", "pas du tout", "ce n est pas", "c est pas", "erreur", "mauvais numero", "faux"},
			intro:   []string{"c est", "je suis", "ici", "je m appelle", "moi c est"},
			fillers: []string{"euh", "heu", "ben", "bah", "alors", "ah", "eh", "bonjour", "allo"},
		}
	case "de":
		return phrases{
			yes: []string{"ja", "jawohl", "genau", "richtig", "stimmt", "am apparat", "das bin ich", "ja klar", "natuerlich",
				"naturlich", "korrekt", "jep", "jo", "sicher"},
			no:      []string{"nein", "falsch", "nicht", "bin ich nicht", "falsche nummer", "ne", "nee", "noe"},
			intro:   []string{"hier ist", "ich bin", "hier spricht", "mein name ist", "ich heisse"},
			fillers: []string{"ahm", "aehm", "ah", "also", "na", "hallo", "hm"},
		}
	case "pt":
		return phrases{
			yes: []string{"sim", "claro", "certo", "isso", "isso mesmo", "sou eu", "correto", "exato", "com certeza", "e ele",
				"e ela", "ele mesmo", "ela mesma", "positivo"},
			no:      []string{"nao", "nao sou", "errado", "engano", "numero errado", "negativo", "de jeito nenhum"},
			intro:   []string{"sou", "aqui e", "aqui fala", "meu nome e", "fala"},
			fillers: []string{"ah", "eh", "hum", "bem", "entao", "olha", "alo", "oi"},
		}
	}
	return phrases{
		yes: []string{"yes", "yeah", "yep", "yup", "ya", "yah", "sure", "correct", "right", "that s right", "that is right",
			"that s me", "that is me", "it s me", "it is me", "speaking", "this is she", "this is he", "it is", "indeed",
			"affirmative", "absolutely", "of course", "mm hmm", "mhm", "mmhmm", "uh huh", "you are", "you got it", "certainly", "i am"},
		no: []string{"no", "nope", "nah", "wrong", "wrong number", "incorrect", "negative", "uh uh", "not me", "that s not me",
			"that is not me", "it s not", "i m not", "i am not", "not really", "he s not", "she s not"},
		intro:   []string{"this is", "it s", "i m", "my name is", "i am", "you re speaking with", "you are speaking with"},
		fillers: []string{"uh", "um", "uhm", "er", "erm", "well", "oh", "ah", "hmm", "hm", "hello", "hi", "so", "okay", "ok"},
	}
}

// classify reads a caller's answer to "Am I speaking with name?": digits
// (1 yes, 2 no, any other unclear) win over speech; speech is read in the
// greeting set's language (its own words when it gives them), then the
// other built-in ones, accents folded, fillers skipped: a yes phrase, the
// stored name alone or "this is" and the stored name are yes ("yes, this
// is his wife" is not: a name said must be the stored one); a no phrase
// or another name is no. A transcription below the set's confidence floor,
// and anything else heard, is unclear (AnswerNone).
func classify(digits, speech string, confidence float64, hasConfidence bool, set greetings.Set, name string) callcontext.Answer {
	language := set.Language
	switch {
	case digits == "1":
		return callcontext.AnswerYes
	case digits == "2":
		return callcontext.AnswerNo
	case digits != "":
		return callcontext.AnswerNone
	}
	said := words(speech)
	if len(said) == 0 || (hasConfidence && confidence < set.MinSpeechConfidence) {
		return callcontext.AnswerNone
	}
	// The set's language first, then the others built in: a caller may
	// answer "sí" on an English line.
	langs := []phrases{phrasesOf(set)}
	for _, l := range []string{"en", "es", "fr", "de", "pt"} {
		if base, _, _ := strings.Cut(strings.ToLower(language), "-"); base != l {
			langs = append(langs, phrasesFor(l))
		}
	}
	stored := words(name)
	for _, p := range langs {
		if a, ok := p.read(said, stored); ok {
			return a
		}
	}
	return callcontext.AnswerNone
}

// read classifies said with p's phrases, and reports whether it could.
func (p phrases) read(said, stored []string) (callcontext.Answer, bool) {
	said = p.skipFillers(said)
	if len(said) == 0 {
		return callcontext.AnswerNone, false
	}
	if longestPrefix(said, p.no) > 0 {
		return callcontext.AnswerNo, true
	}
	if names(said, stored) {
		return callcontext.AnswerYes, true // the name alone, first or full
	}
	if a, ok := p.introduces(said, stored); ok {
		return a, true
	}
	if yes := longestPrefix(said, p.yes); yes > 0 {
		if a, ok := p.introduces(p.skipFillers(said[yes:]), stored); ok {
			return a, true // "yes, this is …": the name said decides
		}
		return callcontext.AnswerYes, true
	}
	return callcontext.AnswerNone, false
}

// introduces reads "this is <name>": yes when the name is the stored one,
// no for another; not decided when said is no introduction or names a
// pronoun ("it's me", "this is she", which the yes phrases read).
func (p phrases) introduces(said, stored []string) (callcontext.Answer, bool) {
	n := longestPrefix(said, p.intro)
	if n == 0 || len(said) == n || slices.Contains(pronouns(), said[n]) {
		return callcontext.AnswerNone, false
	}
	if names(said[n:], stored) {
		return callcontext.AnswerYes, true
	}
	return callcontext.AnswerNo, true
}

// skipFillers drops the fillers said starts with ("uh", "well"), but not
// one that starts a phrase ("uh-huh", "uh-uh").
func (p phrases) skipFillers(said []string) []string {
	for len(said) > 0 && slices.Contains(p.fillers, said[0]) && longestPrefix(said, p.yes) == 0 && longestPrefix(said, p.no) == 0 {
		said = said[1:]
	}
	return said
}

// pronouns a caller may say of themselves after "this is".
func pronouns() []string {
	return []string{"me", "he", "she", "him", "her", "moi", "lui", "elle", "yo", "el", "ella", "ich", "eu", "ele", "ela"}
}

// names reports whether said is the stored name: its first name, or the
// whole name, and nothing else.
func names(said, stored []string) bool {
	if len(stored) == 0 || len(said) == 0 {
		return false
	}
	return slices.Equal(said, stored) || (len(said) == 1 && said[0] == stored[0])
}

// longestPrefix returns the length in words of the longest phrase that
// said starts with, or 0.
func longestPrefix(said []string, phrases []string) int {
	best := 0
	for _, ph := range phrases {
		w := strings.Fields(ph)
		if len(w) > best && len(w) <= len(said) && slices.Equal(said[:len(w)], w) {
			best = len(w)
		}
	}
	return best
}

// words lower-cases s, folds accents (sí → si, não → nao, natürlich →
// naturlich) and splits it on anything that is not a letter or a digit
// ("that's" → that s, "mm-hmm" → mm hmm).
func words(s string) []string {
	fold := transform.Chain(norm.NFD, runes.Remove(runes.In(unicode.Mn)), norm.NFC)
	folded, _, err := transform.String(fold, strings.ToLower(s))
	if err != nil {
		folded = strings.ToLower(s)
	}
	folded = strings.ReplaceAll(folded, "ß", "ss")
	return strings.FieldsFunc(folded, func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) })
}

// hints are the phrases the speech recognizer should expect: the yes and
// no phrases of the set and the stored name.
func hints(set greetings.Set, name string) string {
	p := phrasesOf(set)
	var h []string
	for _, ph := range append(append([]string{}, p.yes...), p.no...) {
		if !slices.ContainsFunc(strings.Fields(ph), func(w string) bool { return len(w) == 1 }) {
			h = append(h, ph) // not "that s right": folded apostrophes make poor hints
		}
	}
	if name != "" {
		h = append(h, name)
	}
	return strings.Join(h, ", ")
}
