package voice

import (
	"testing"

	"github.com/stickycalls/stickycalls/context/callcontext"
	"github.com/stickycalls/stickycalls/greetings"
)

// setIn is a greeting set in language with the built-in words and floor.
func setIn(language string) greetings.Set {
	return greetings.Set{Language: language, MinSpeechConfidence: 0.4}
}

// TestClassify reads real-world answers to "Am I speaking with John Doe?"
// (or its translation) in the five built-in languages.
func TestClassify(t *testing.T) {
	const yes, no, unclear = callcontext.AnswerYes, callcontext.AnswerNo, callcontext.AnswerNone
	tests := []struct {
		lang, speech string
		want         callcontext.Answer
	}{
		// English
		{"en-US", "Yes.", yes}, {"en-US", "Uh, yes.", yes}, {"en-US", "Yeah", yes}, {"en-US", "Yep, that's me.", yes},
		{"en-US", "That's right.", yes}, {"en-US", "Mm-hmm.", yes}, {"en-US", "Uh-huh", yes}, {"en-US", "Speaking.", yes},
		{"en-US", "This is John.", yes}, {"en-US", "Yes, this is John Doe.", yes}, {"en-US", "John", yes},
		{"en-US", "john doe", yes}, {"en-US", "It's me", yes}, {"en-US", "Well, yes it is.", yes}, {"en-US", "Correct", yes},
		{"en-US", "Sure.", yes}, {"en-US", "This is she.", yes}, {"en-US", "Of course", yes}, {"en-US", "I am.", yes},
		{"en-US", "No.", no}, {"en-US", "Nope", no}, {"en-US", "No, this is his wife.", no}, {"en-US", "Yes, this is his wife.", no},
		{"en-US", "This is Mary.", no}, {"en-US", "Wrong number", no}, {"en-US", "Uh-uh.", no}, {"en-US", "Nah", no},
		{"en-US", "I'm not", no}, {"en-US", "That's not me", no}, {"en-US", "I am Mary", no},
		{"en-US", "", unclear}, {"en-US", "Uh", unclear}, {"en-US", "What?", unclear}, {"en-US", "Can you repeat that?", unclear},
		{"en-US", "I want to pay my bill", unclear},
		// Spanish
		{"es-ES", "Sí.", yes}, {"es-MX", "Sí, soy yo.", yes}, {"es-ES", "Claro", yes}, {"es-ES", "Así es.", yes},
		{"es-ES", "Bueno, sí.", yes}, {"es-ES", "Soy John.", yes}, {"es-ES", "No.", no}, {"es-ES", "No, soy su esposa.", no},
		{"es-ES", "Número equivocado", no}, {"es-ES", "¿Cómo?", unclear},
		// French
		{"fr-FR", "Oui.", yes}, {"fr-FR", "Euh, oui.", yes}, {"fr-FR", "Oui, c'est moi.", yes}, {"fr-FR", "Tout à fait.", yes},
		{"fr-FR", "C'est John.", yes}, {"fr-FR", "Non.", no}, {"fr-FR", "Non, c'est sa femme.", no}, {"fr-FR", "Pardon ?", unclear},
		// German
		{"de-DE", "Ja.", yes}, {"de-DE", "Ähm, ja.", yes}, {"de-DE", "Genau.", yes}, {"de-DE", "Am Apparat.", yes},
		{"de-DE", "Hier ist John.", yes}, {"de-DE", "Nein.", no}, {"de-DE", "Nein, hier ist seine Frau.", no},
		{"de-DE", "Falsche Nummer", no}, {"de-DE", "Wie bitte?", unclear},
		// Portuguese
		{"pt-BR", "Sim.", yes}, {"pt-BR", "Sou eu.", yes}, {"pt-BR", "Isso mesmo.", yes}, {"pt-BR", "Não.", no},
		{"pt-BR", "Não, aqui é a esposa dele.", no}, {"pt-BR", "Número errado", no}, {"pt-BR", "Oi?", unclear},
		// Another language's answer on an English line
		{"en-US", "Sí", yes}, {"en-US", "Oui", yes}, {"en-US", "Nein", no},
	}
	for _, tt := range tests {
		if got := classify("", tt.speech, 0.9, true, setIn(tt.lang), "John Doe"); got != tt.want {
			t.Errorf("%s %q = %s, want %s", tt.lang, tt.speech, got, tt.want)
		}
	}
	if len(tests) < 60 {
		t.Errorf("%d answers, want at least 60", len(tests))
	}
}

func TestClassifyDigitsAndConfidence(t *testing.T) {
	for _, tt := range []struct {
		digits, speech string
		conf           float64
		has            bool
		want           callcontext.Answer
	}{
		{"1", "", 0, false, callcontext.AnswerYes},
		{"2", "", 0, false, callcontext.AnswerNo},
		{"9", "", 0, false, callcontext.AnswerNone},
		{"2", "yes", 0.9, true, callcontext.AnswerNo},  // the key wins
		{"", "yes", 0.3, true, callcontext.AnswerNone}, // too unsure: asked again
		{"", "yes", 0.4, true, callcontext.AnswerYes},
		{"", "yes", 0, false, callcontext.AnswerYes}, // no Confidence sent
	} {
		if got := classify(tt.digits, tt.speech, tt.conf, tt.has, setIn("en-US"), "John Doe"); got != tt.want {
			t.Errorf("classify(%q, %q, %v) = %s, want %s", tt.digits, tt.speech, tt.conf, got, tt.want)
		}
	}
}

// TestClassifySetWords: a greeting set's own words replace the built-in
// ones of its language, and its confidence floor applies.
func TestClassifySetWords(t *testing.T) {
	set := greetings.Set{Language: "en-GB", Yes: []string{"Aye", "You bet!"}, No: []string{"Wrong person"}, MinSpeechConfidence: 0.7}
	for _, tt := range []struct {
		speech string
		conf   float64
		want   callcontext.Answer
	}{
		{"Aye.", 0.9, callcontext.AnswerYes},
		{"Uh, you bet", 0.9, callcontext.AnswerYes},
		{"Wrong person, sorry", 0.9, callcontext.AnswerNo},
		{"Aye", 0.6, callcontext.AnswerNone}, // below the set's floor
		{"John", 0.9, callcontext.AnswerYes}, // the stored name still answers
		{"Yes", 0.9, callcontext.AnswerNone}, // the set's list replaced the built-in English words
		{"Sí", 0.9, callcontext.AnswerYes},   // the other languages' still read
	} {
		if got := classify("", tt.speech, tt.conf, true, set, "John Doe"); got != tt.want {
			t.Errorf("classify(%q, %v) = %s, want %s", tt.speech, tt.conf, got, tt.want)
		}
	}
	if h := hints(set, "John Doe"); h != "aye, you bet, wrong person, John Doe" {
		t.Errorf("hints = %q, want the set's words and the name", h)
	}
}
