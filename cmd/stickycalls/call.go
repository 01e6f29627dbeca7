package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/stickycalls/stickycalls/voice"
)

// call plays one Twilio call against a running server: it signs and sends
// the webhooks Twilio would send and prints the TwiML that comes back, so
// the voice path can be seen without a Twilio account.
func call(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	fs := flag.NewFlagSet("call", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	from := fs.String("from", "+14155551234", "caller number")
	to := fs.String("to", "+18005550100", "number called (one of the configured numbers)")
	digits := fs.String("digits", "", "what the caller presses when asked to confirm (1 = yes, 2 = no)")
	speech := fs.String("speech", "", `what the caller says when asked to confirm, such as "Uh, yes." or "No, this is his wife."`)
	dialStatus := fs.String("dial-status", "", "how the dial to the agent ends (completed, no-answer, busy, failed), sent to /voice/dial-status")
	duration := fs.Int("duration", 42, "CallDuration in seconds sent with the final status (a call under 5 s links nothing)")
	verstat := fs.String("verstat", "", "StirVerstat, such as TN-Validation-Passed-A")
	status := fs.String("status", "completed", "final CallStatus sent to /voice/status; empty sends none")
	base := fs.String("url", "http://localhost:8080", "where the server listens")
	public := fs.String("public-url", getenv("STICKYCALLS_PUBLIC_URL"), "the public URL the server validates signatures against (default: -url)")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("call: %w", err)
	}
	token := getenv("TWILIO_AUTH_TOKEN")
	if token == "" {
		return errors.New("call: set TWILIO_AUTH_TOKEN to the auth token the server checks signatures with")
	}
	c := &caller{http: &http.Client{Timeout: 5 * time.Second}, base: strings.TrimRight(*base, "/"),
		public: strings.TrimRight(cmpOr(*public, *base), "/"), token: token, out: stdout}
	form := url.Values{
		"CallSid": {"CA" + randomHex(16)}, "AccountSid": {cmpOr(getenv("TWILIO_ACCOUNT_SID"), "AC"+strings.Repeat("0", 32))},
		"From": {*from}, "To": {*to}, "CallStatus": {"ringing"}, "Direction": {"inbound"}, "ApiVersion": {"2010-04-01"},
	}
	fmt.Fprintf(stdout, "call_id %s\n\n", form.Get("CallSid"))
	if *verstat != "" {
		form.Set("StirVerstat", *verstat)
	}
	twiml, err := c.post(ctx, "/voice/incoming", form)
	if err != nil {
		return err
	}
	if strings.Contains(twiml, "<Gather") && (*digits != "" || *speech != "") {
		confirm := cloneWith(form, "CallStatus", "in-progress")
		if *digits != "" {
			confirm.Set("Digits", *digits)
		} else {
			confirm.Set("SpeechResult", *speech)
			confirm.Set("Confidence", "0.9")
		}
		// An unclear answer is asked once more; the caller says it again.
		for _, path := range []string{"/voice/confirm", "/voice/confirm?attempt=2"} {
			if twiml, err = c.post(ctx, path, confirm); err != nil {
				return err
			}
			if !strings.Contains(twiml, "<Gather") {
				break
			}
		}
	}
	if err := c.agentSide(ctx, twiml, cloneWith(form, "CallStatus", "in-progress"), *dialStatus); err != nil {
		return err
	}
	if *status == "" {
		return nil
	}
	done := cloneWith(form, "CallStatus", *status)
	done.Set("CallDuration", strconv.Itoa(*duration))
	_, err = c.post(ctx, "/voice/status", done)
	return err
}

// whisperPath finds the whisper a <Dial> plays to the agent.
var whisperPath = regexp.MustCompile(`url="[^"]*(/voice/whisper\?[^"]*)"`)

// agentSide plays what happens at the agent's end of a dial: the whisper
// the agent hears, then, with dialStatus, Twilio's <Dial action> webhook
// (and the second one when the unanswered action dials another number).
func (c *caller) agentSide(ctx context.Context, twiml string, form url.Values, dialStatus string) error {
	if m := whisperPath.FindStringSubmatch(twiml); m != nil {
		if _, err := c.post(ctx, html.UnescapeString(m[1]), url.Values{"CallSid": form["CallSid"], "AccountSid": form["AccountSid"], "To": form["To"]}); err != nil {
			return err
		}
	}
	if dialStatus == "" || !strings.Contains(twiml, "<Dial") {
		return nil
	}
	dialled := cloneWith(form, "DialCallStatus", dialStatus)
	for _, path := range []string{"/voice/dial-status", "/voice/dial-status?attempt=2"} {
		answer, err := c.post(ctx, path, dialled)
		if err != nil || !strings.Contains(answer, "<Dial") {
			return err
		}
	}
	return nil
}

type caller struct {
	http         *http.Client
	base, public string
	token        string
	out          io.Writer
}

// post sends a signed form and prints what came back.
func (c *caller) post(ctx context.Context, path string, form url.Values) (string, error) {
	req, err := http.NewRequestWithContext(ctx, "POST", c.base+path, strings.NewReader(form.Encode()))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Twilio-Signature", voice.Sign(c.token, c.public+path, form))
	resp, err := c.http.Do(req)
	if err != nil {
		return "", fmt.Errorf("call %s: %w", path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Fprintf(c.out, "POST %s -> %d\n%s\n\n", path, resp.StatusCode, body)
	if resp.StatusCode/100 != 2 {
		return "", fmt.Errorf("call %s: status %d", path, resp.StatusCode)
	}
	return string(body), nil
}

func cloneWith(v url.Values, key, value string) url.Values {
	out := url.Values{}
	for k, vs := range v {
		out[k] = append([]string(nil), vs...)
	}
	out.Set(key, value)
	return out
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
