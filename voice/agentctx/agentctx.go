// Package agentctx is what hosted AI agent platforms (Vapi, Retell) get
// from and give to this service: the caller's context as flat string
// variables a prompt can use, a start bounded by a deadline, and the end
// built from the platform's structured call analysis. It discloses no more
// than the voice path at the same tier (API.md §7).
package agentctx

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/stickycalls/stickycalls/context/callapi"
	"github.com/stickycalls/stickycalls/context/callcontext"
	"github.com/stickycalls/stickycalls/context/identity"
	"github.com/stickycalls/stickycalls/greetings"
)

// Start starts a call but gives up when ctx is done, even if the store does
// not honour ctx: the start then finishes on its own, bounded by the
// store's own timeouts, and a retry of the webhook replays it. The voice
// webhooks use it too.
func Start(ctx context.Context, calls *callcontext.Service, sc callcontext.Scope, req callapi.StartRequest) (callapi.StartResult, error) {
	type outcome struct {
		rep callcontext.Reply[callapi.StartResult]
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		rep, err := calls.Start(ctx, sc, req, "")
		done <- outcome{rep, err}
	}()
	var o outcome
	select {
	case <-ctx.Done():
		return callapi.StartResult{}, ctx.Err()
	case o = <-done:
	}
	if o.err != nil {
		return callapi.StartResult{}, o.err
	}
	res := o.rep.Result
	res.DNIS = req.Hints.DNIS
	return res, nil
}

// Values are the call's context as flat strings: the name at reuse and
// confirm (to ask about it), open intents and variables only at reuse with
// a confidence of 0.7 or attestation A.
func Values(g *greetings.Greeter, res callapi.StartResult) map[string]string {
	rec := res.Identity.Recommendation
	v := Generic(g, res.DNIS)
	v["stickycalls_call_id"], v["stickycalls_customer_ref"] = res.CallID, res.CustomerRef
	v["stickycalls_recommendation"], v["stickycalls_greeting"] = string(rec), g.Voice(&res).Text
	if res.Match == nil || rec == identity.Ignore {
		return v
	}
	v["stickycalls_name"] = res.Match.Variables["name"]
	details := math.Round(res.Identity.Confidence*100) >= 70 || slices.Contains(res.Identity.Sources, "stir:A")
	if rec != identity.Reuse || !details {
		return v
	}
	var intents []string
	for _, in := range res.OpenIntents {
		intents = append(intents, fmt.Sprintf("%s (%d calls)", strings.ReplaceAll(in.Intent, "_", " "), in.AttemptCount))
	}
	v["stickycalls_open_intents"] = strings.Join(intents, "; ")
	keys := make([]string, 0, len(res.Match.Variables))
	for k := range res.Match.Variables {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var vars []string
	for _, k := range keys {
		vars = append(vars, k+"="+res.Match.Variables[k])
	}
	v["stickycalls_variables"] = strings.Join(vars, "; ")
	return v
}

// Generic are the values when nothing is known: the generic greeting of
// the number dialled.
func Generic(g *greetings.Greeter, dnis string) map[string]string {
	return map[string]string{"stickycalls_call_id": "", "stickycalls_customer_ref": "", "stickycalls_recommendation": string(identity.Ignore),
		"stickycalls_name": "", "stickycalls_open_intents": "", "stickycalls_variables": "",
		"stickycalls_greeting": g.Fallback(dnis).Text}
}

// Mapping names the keys of a platform's structured call analysis that are
// the end's intent, its status and its variables.
type Mapping struct {
	Intent       string
	IntentStatus string
	Variables    map[string]string // variable name → analysis key
}

// End is the end of call callID from the analysis data, the caller's
// number as a hint (so a call whose start was lost still finds its
// customer), checked by the §4 rules.
func (m Mapping) End(callID, from string, data map[string]any) (callapi.EndRequest, error) {
	end := callapi.EndRequest{CallID: callID}
	if ani, withheld, ok := callapi.NormalizeANI(from); ok && !withheld {
		end.Hints = &callapi.Hints{ANI: ani}
	}
	if s := text(data[m.Intent]); m.Intent != "" && s != "" {
		end.Intent, end.Status = s, "open"
		if st := text(data[m.IntentStatus]); m.IntentStatus != "" && st != "" {
			end.Status = st
		}
	}
	for name, key := range m.Variables {
		if s := text(data[key]); s != "" {
			if end.Variables == nil {
				end.Variables = map[string]*string{}
			}
			end.Variables[name] = &s
		}
	}
	body, err := json.Marshal(end)
	if err != nil {
		return callapi.EndRequest{}, err
	}
	return callapi.ParseEnd(body)
}

// text is an analysis value as text: a string, a number or a boolean; ""
// for anything else.
func text(v any) string {
	switch v := v.(type) {
	case string:
		return strings.TrimSpace(v)
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	case bool:
		return strconv.FormatBool(v)
	}
	return ""
}
