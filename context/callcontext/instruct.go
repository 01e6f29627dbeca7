package callcontext

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/stickycalls/stickycalls/context/callapi"
	"github.com/stickycalls/stickycalls/context/storage"
)

// What an AI agent may ask to happen when its media stream ends.
const (
	agentHangup   = "hangup"
	agentTransfer = "transfer:"
)

// AgentAction is an AI agent's instruction for the end of its stream:
// hang up, or transfer the caller to a number or SIP URI.
type AgentAction struct {
	Hangup     bool
	TransferTo string // E.164 or "sip:..."
}

// ParseAgentAction reads an instruction stored by Instruct; the zero
// AgentAction means the agent asked for nothing.
func ParseAgentAction(s string) AgentAction {
	if s == agentHangup {
		return AgentAction{Hangup: true}
	}
	to, _ := strings.CutPrefix(s, agentTransfer)
	if to == s {
		return AgentAction{}
	}
	return AgentAction{TransferTo: to}
}

// Transfer checks a transfer target as an agent sent it: an E.164 number
// (spaces, dashes, dots and parentheses stripped) or a sip: URI without
// white space. It returns the target normalized, or a ValidationError.
func Transfer(to string) (string, error) {
	if rest, ok := strings.CutPrefix(to, "sip:"); ok && rest != "" && !strings.ContainsAny(rest, " \t\r\n") && len(to) <= 256 {
		return to, nil
	}
	if n, withheld, ok := callapi.NormalizeANI(to); ok && !withheld {
		return n, nil
	}
	v := &callapi.ValidationError{}
	v.Add("must be an E.164 number (+ then 8 to 15 digits) or a sip: URI", "to")
	return "", v
}

// Instruct records, on the call's record, what its AI agent asked to
// happen when its stream ends, so that whichever instance answers
// Twilio's after-stream webhook follows it. ErrNotFound if the call has no
// record.
func (s *Service) Instruct(ctx context.Context, sc Scope, callID string, a AgentAction) error {
	instruction := agentHangup
	if !a.Hangup {
		instruction = agentTransfer + a.TransferTo
	}
	if err := s.store.NoteCall(ctx, sc, callID, storage.CallNote{AgentAction: instruction}); err != nil {
		return fmt.Errorf("instruct call: %w", err)
	}
	return nil
}

// dialStatuses are the outcomes Twilio reports for a <Dial>.
var dialStatuses = []string{"completed", "answered", "busy", "no-answer", "failed", "canceled"}

// Dialled records how the call's <Dial> ended (one of dialStatuses), for
// GET /v1/calls. ErrNotFound if the call has no record.
func (s *Service) Dialled(ctx context.Context, sc Scope, callID, status string) error {
	if !slices.Contains(dialStatuses, status) {
		v := &callapi.ValidationError{}
		v.Add("must be one of "+strings.Join(dialStatuses, ", "), "DialCallStatus")
		return v
	}
	if err := s.store.NoteCall(ctx, sc, callID, storage.CallNote{DialStatus: status}); err != nil {
		return fmt.Errorf("note dial status: %w", err)
	}
	return nil
}
