package main

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"
)

// The README's voice walk-through: the call command against a running
// server with the example configuration.
func TestCallCommand(t *testing.T) {
	env := map[string]string{"TWILIO_AUTH_TOKEN": "localtesttoken", "STICKYCALLS_CONFIG": "../../examples/config.yaml"}
	s := startServer(t, env)
	var out bytes.Buffer
	args := []string{"call", "--url", s.base, "--from", "+14155551234", "--to", "+18005550100"}
	if err := run(context.Background(), args, func(k string) string { return env[k] }, &out, io.Discard); err != nil {
		t.Fatalf("call = %v\n%s", err, out.String())
	}
	got := out.String()
	for _, want := range []string{"POST /voice/incoming -> 200", "<Say", `answerOnBridge="true"`, "+14155550000</Number>",
		"POST /voice/whisper?call_id=", "New caller.", "POST /voice/status -> 204"} {
		if !strings.Contains(got, want) {
			t.Errorf("call output lacks %q:\n%s", want, got)
		}
	}
	// The same caller again, answering the confirm question out loud.
	out.Reset()
	ans := []string{"call", "--url", s.base, "--from", "+14155551234", "--to", "+18005550100", "--speech", "Uh, yes.", "--duration", "3"}
	if err := run(context.Background(), ans, func(k string) string { return env[k] }, &out, io.Discard); err != nil {
		t.Fatalf("call --speech = %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "POST /voice/status -> 204") {
		t.Errorf("call --speech --duration output:\n%s\nwant the status callback", out.String())
	}
	// Nobody answers: the number's unanswered action runs.
	out.Reset()
	if err := run(context.Background(), append(args, "--dial-status", "no-answer"), func(k string) string { return env[k] }, &out, io.Discard); err != nil {
		t.Fatalf("call --dial-status = %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "POST /voice/dial-status -> 200") || !strings.Contains(out.String(), "<Hangup") {
		t.Errorf("call --dial-status no-answer output:\n%s\nwant the dial-status webhook and its unanswered action", out.String())
	}
	wrong := map[string]string{"TWILIO_AUTH_TOKEN": "anothertoken"}
	if err := run(context.Background(), args, func(k string) string { return wrong[k] }, io.Discard, io.Discard); err == nil || !strings.Contains(err.Error(), "403") {
		t.Errorf("call signed with the wrong token = %v, want a 403", err)
	}
}
