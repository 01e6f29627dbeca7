package voice

import (
	"cmp"
	"encoding/json"
)

// protocol is what differs between the two ways Twilio connects a call to
// an AI agent over a WebSocket, which the relay serves alike: Media Streams
// (/voice/stream, audio frames named by "event") and ConversationRelay
// (/voice/relay, text messages named by "type").
type protocol struct {
	name   string // in logs: "stream" or "conversation_relay"
	idName string // the log field of the session's id
	// opening reads one of Twilio's first frames, and returns the session
	// it opens, if it does.
	opening func(frame []byte) (session, bool)
	// inject adds the caller's context to the opening frame and removes
	// the relay's token from it.
	inject func(frame []byte, params map[string]string) ([]byte, error)
	// stop is the kind of Twilio's frame that ends the session while the
	// socket stays open ("" when none does).
	stop string
	// closeEnds says that Twilio closing its socket is how a session ends
	// (ConversationRelay has no stop frame): the agent is then told, and
	// may still save the call, as after a stop.
	closeEnds bool
	// toTwilio reports whether an agent's frame of a kind goes to Twilio.
	toTwilio func(kind string) bool
	// hangup is the kind of the agent's own frame that ends the session and
	// asks for the call to end ("" when none does).
	hangup string
	// key names the kind in the frames the relay writes to the agent.
	key string
}

// session is what Twilio's opening frame says about the call.
type session struct {
	ID         string            // streamSid or sessionId, for the logs
	AccountSID string            // the account of the call
	CallSID    string            // the call
	Params     map[string]string // the <Parameter>s of the TwiML
}

// kindOf is a frame's kind, named by "event" (Media Streams, and this
// service's own frames) or "type" (ConversationRelay); "" if the frame is
// not a JSON object.
func kindOf(frame []byte) string {
	var f struct {
		Event string `json:"event"`
		Type  string `json:"type"`
	}
	json.Unmarshal(frame, &f)
	return cmp.Or(f.Event, f.Type)
}

// mediaStreams is Twilio's Media Streams: connected, then start (with the
// parameters in start.customParameters), media, dtmf, mark, and stop;
// the agent may send back media, mark and clear.
var mediaStreams = &protocol{
	name:   "stream",
	idName: "stream_sid",
	opening: func(frame []byte) (session, bool) {
		var f twilioStart
		if json.Unmarshal(frame, &f) != nil || f.Event != "start" || f.Start == nil {
			return session{}, false
		}
		return session{ID: f.StreamSID, AccountSID: f.Start.AccountSID, CallSID: f.Start.CallSID, Params: f.Start.CustomParameters}, true
	},
	inject: withContext,
	stop:   "stop",
	toTwilio: func(kind string) bool {
		return kind == "media" || kind == "mark" || kind == "clear"
	},
	key: "event",
}

// conversationRelay is Twilio's ConversationRelay: setup (with the
// parameters in customParameters), then prompt, dtmf, interrupt and error;
// the agent may send back text, play, sendDigits, language and end. The
// session ends when either side closes it, or with the agent's end.
var conversationRelay = &protocol{
	name:   "conversation_relay",
	idName: "session_id",
	opening: func(frame []byte) (session, bool) {
		var f struct {
			Type             string            `json:"type"`
			SessionID        string            `json:"sessionId"`
			AccountSID       string            `json:"accountSid"`
			CallSID          string            `json:"callSid"`
			CustomParameters map[string]string `json:"customParameters"`
		}
		if json.Unmarshal(frame, &f) != nil || f.Type != "setup" {
			return session{}, false
		}
		return session{ID: f.SessionID, AccountSID: f.AccountSID, CallSID: f.CallSID, Params: f.CustomParameters}, true
	},
	inject:    withParams,
	closeEnds: true,
	toTwilio: func(kind string) bool {
		switch kind {
		case "text", "play", "sendDigits", "language", "end":
			return true
		}
		return false
	},
	hangup: "end",
	key:    "type",
}
