package voice

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"strconv"
	"strings"
	"time"
)

// streamTokenTTL is how long a stickycalls_token stays valid. A call may
// stay in the greeting and confirm steps for a while before it streams,
// and Twilio reconnects within the call, so it spans a long call.
const streamTokenTTL = 4 * time.Hour

// streamCall is what a stream's <Parameter>s tell the relay about its call,
// all of it covered by the stickycalls_token (the upgrade's signature
// covers none of it): enough to reach the agent without the store.
type streamCall struct {
	CallSID string
	From    string // the caller's E.164 number, "" when withheld
	To      string // the number called: its configuration names the agent
}

func (c streamCall) signed(exp string) string {
	return c.CallSID + "|" + c.From + "|" + c.To + "|" + exp
}

// streamToken returns the stickycalls_token of a call: the base64url
// HMAC-SHA256 of "callSid|from|to|expiry" (Unix seconds) under the
// tenant's auth token, then "." and the expiry. It binds a stream to one
// call and its numbers, which the upgrade's X-Twilio-Signature alone cannot
// do: that signature is the same for every stream.
func streamToken(authToken string, c streamCall, expires time.Time) string {
	exp := strconv.FormatInt(expires.Unix(), 10)
	return base64.RawURLEncoding.EncodeToString(streamMAC(authToken, c.signed(exp))) + "." + exp
}

func streamMAC(authToken, msg string) []byte {
	mac := hmac.New(sha256.New, []byte(authToken))
	mac.Write([]byte(msg))
	return mac.Sum(nil)
}

// validStreamToken reports whether tok was made by streamToken for c under
// the account's current or previous auth token and is unexpired at now.
// The comparison is constant-time.
func validStreamToken(tok string, c streamCall, acct Account, now time.Time) bool {
	sum, exp, ok := strings.Cut(tok, ".")
	if !ok || c.CallSID == "" {
		return false
	}
	unix, err := strconv.ParseInt(exp, 10, 64)
	got, derr := base64.RawURLEncoding.DecodeString(sum)
	if err != nil || derr != nil || now.Unix() >= unix {
		return false
	}
	for _, key := range []string{acct.AuthToken, acct.PreviousAuthToken} {
		if key != "" && hmac.Equal(got, streamMAC(key, c.signed(exp))) {
			return true
		}
	}
	return false
}

// now reads the configured clock.
func (c Config) now() time.Time {
	if c.Now == nil {
		return time.Now()
	}
	return c.Now()
}
