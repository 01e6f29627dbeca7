package voice_test

import (
	"context"
	"encoding/xml"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stickycalls/stickycalls/voice"
)

// Any Twilio form, signed, to /voice/incoming, /voice/confirm and
// /voice/status: valid TwiML (or 204 for the status callback), never a
// 5xx or a panic.
func FuzzTwilioForm(f *testing.F) {
	e := newEnv(f, voice.Action{Dial: agent})
	f.Add("CA0001", "+14155551234", number, "TN-Validation-Passed-A", "Uh, yes.", "", "0.9", "completed", "42")
	f.Add("CA0002", "client:alice", number, "", "No, this is his wife.", "2", "abc", "no-answer", "-1")
	f.Add("", "+1 (415) 555-0000", "+19995550000", "TN-Validation-Failed", "", "1", "", "busy", "")
	f.Add("CA\x00", "\xff", number, "TN-Validation-Passed-", "sí, soy yo", "99", "NaN", "weird", "1e9")
	f.Fuzz(func(t *testing.T, sid, from, to, verstat, speech, digits, conf, status, duration string) {
		form := url.Values{"CallSid": {sid}, "AccountSid": {"AC" + strings.Repeat("1", 32)}, "From": {from}, "To": {to},
			"StirVerstat": {verstat}, "CallStatus": {"ringing"}}
		post := func(path string) (int, string) {
			// Not e.post: the fuzzer cancels its inputs' contexts when its time is up.
			req, _ := http.NewRequestWithContext(context.Background(), "POST", e.srv.URL+path, strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("X-Twilio-Signature", voice.Sign(token, e.srv.URL+path, form))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatalf("POST %s: %v", path, err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			return resp.StatusCode, string(body)
		}
		for _, path := range []string{"/voice/incoming", "/voice/confirm"} {
			code, body := post(path)
			var doc struct{ XMLName xml.Name }
			if code != 200 || xml.Unmarshal([]byte(body), &doc) != nil || doc.XMLName.Local != "Response" {
				t.Errorf("POST %s %v = %d %s, want 200 and TwiML", path, form, code, body)
			}
			form.Set("Digits", digits)
			form.Set("SpeechResult", speech)
			form.Set("Confidence", conf)
		}
		form.Set("CallStatus", status)
		form.Set("CallDuration", duration)
		if code, body := post("/voice/status"); code != http.StatusNoContent {
			t.Errorf("POST /voice/status %v = %d %s, want 204", form, code, body)
		}
	})
}
