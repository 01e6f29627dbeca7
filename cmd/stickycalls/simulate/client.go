package simulate

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/stickycalls/stickycalls/voice"
)

// Target is the service the simulation plays against, and how to reach it.
type Target struct {
	Client     *http.Client // in process: a Transport that calls the handler
	BaseURL    string       // where requests go
	PublicURL  string       // what webhooks are signed against; default BaseURL
	APIKey     string       // a prod-mode key: voice calls are prod calls
	AuthToken  string       // the Twilio auth token; "" plays no voice calls
	AccountSID string
	Number     string          // the configured Twilio number that callers dial
	SetClock   func(time.Time) // nil: the server keeps its own time
	CallPrefix string          // prefix of REST call ids, default "call_sim_"
	SIDSeed    uint64          // seeds the voice CallSids with Params.Seed
}

// client sends the simulation's requests.
type client struct {
	t Target
}

// api sends a /v1 request with the key and decodes a 2xx answer into out.
// It reports the status, so callers can tell a 404 from a failure.
func (c client) api(ctx context.Context, method, path string, in, out any) (int, error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return 0, fmt.Errorf("%s %s: %w", method, path, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.t.BaseURL+path, body)
	if err != nil {
		return 0, fmt.Errorf("%s %s: %w", method, path, err)
	}
	req.Header.Set("Authorization", "Bearer "+c.t.APIKey)
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	status, b, err := c.do(req)
	if err != nil || status/100 != 2 || out == nil {
		return status, err
	}
	if err := json.Unmarshal(b, out); err != nil {
		return status, fmt.Errorf("%s %s: decode: %w", method, path, err)
	}
	return status, nil
}

// webhook posts a form signed as Twilio signs it and returns the answer.
func (c client) webhook(ctx context.Context, path string, form url.Values) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, "POST", c.t.BaseURL+path, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, fmt.Errorf("POST %s: %w", path, err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Twilio-Signature", voice.Sign(c.t.AuthToken, c.t.PublicURL+path, form))
	status, b, err := c.do(req)
	if err == nil && status/100 != 2 {
		err = fmt.Errorf("POST %s: status %d", path, status)
	}
	return b, err
}

// do sends req and reads the whole answer.
func (c client) do(req *http.Request) (int, []byte, error) {
	resp, err := c.t.Client.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("%s %s: %w", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, nil, fmt.Errorf("%s %s: %w", req.Method, req.URL.Path, err)
	}
	if resp.StatusCode/100 != 2 && resp.StatusCode != http.StatusNotFound {
		return resp.StatusCode, b, fmt.Errorf("%s %s: status %d: %s", req.Method, req.URL.Path, resp.StatusCode, messageOf(b))
	}
	return resp.StatusCode, b, nil
}

// messageOf is the message of an error body.
func messageOf(b []byte) string {
	var e struct {
		Message string `json:"message"`
	}
	if json.Unmarshal(b, &e) != nil || e.Message == "" {
		return "no message"
	}
	return e.Message
}

// asksConfirm reports whether TwiML holds a <Gather>: the confirm question.
func asksConfirm(twiml []byte) (bool, error) {
	d := xml.NewDecoder(bytes.NewReader(twiml))
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			return false, nil
		}
		if err != nil {
			return false, fmt.Errorf("TwiML does not parse: %w", err)
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "Gather" {
			return true, nil
		}
	}
}
