package voice

import (
	"strconv"

	"github.com/twilio/twilio-go/twiml"

	"github.com/stickycalls/stickycalls/greetings"
)

// relayNoun is the <ConversationRelay> that reaches this service's relay
// at url for an agent cr: Twilio's own text-to-speech speaks welcome (the
// tier's greeting) as the session opens, in cr's language or else the
// greeting set's.
func relayNoun(url string, cr ConversationRelay, set greetings.Set, welcome string, params []twiml.Element) twiml.Element {
	n := &twiml.VoiceConversationRelay{
		Url: url, WelcomeGreeting: welcome, Language: cr.Language, Voice: cr.Voice,
		TtsProvider: cr.TTSProvider, TranscriptionProvider: cr.TranscriptionProvider, SpeechModel: cr.SpeechModel,
		Interruptible: cr.Interruptible, WelcomeGreetingInterruptible: cr.WelcomeGreetingInterruptible,
		InnerElements: params,
	}
	if n.Language == "" {
		n.Language = set.Language
	}
	if cr.DTMFDetection != nil {
		n.DtmfDetection = strconv.FormatBool(*cr.DTMFDetection)
	}
	return n
}
