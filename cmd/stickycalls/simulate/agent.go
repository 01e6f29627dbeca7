package simulate

import (
	"context"
	"encoding/hex"
	"fmt"
	"net/url"
	"time"
)

// Request bodies of the REST API (API.md §2 and §4).
type (
	hints struct {
		ANI         string            `json:"ani"`
		DNIS        string            `json:"dnis,omitempty"`
		ExternalIDs map[string]string `json:"external_ids,omitempty"`
	}
	telco struct {
		LineType    string `json:"line_type,omitempty"`
		Attestation string `json:"attestation"`
	}
	startBody struct {
		CallID string `json:"call_id"`
		Hints  hints  `json:"identity_hints"`
		Telco  telco  `json:"telco"`
	}
	endBody struct {
		CallID       string            `json:"call_id"`
		CustomerRef  string            `json:"customer_ref,omitempty"`
		ExternalIDs  map[string]string `json:"external_ids,omitempty"`
		Intent       string            `json:"intent"`
		IntentStatus string            `json:"intent_status"`
		Variables    map[string]string `json:"variables"`
	}
)

// end is the honest agent's wrap-up. After talking, the agent knows who
// the caller is: it keeps the call's customer when that is the caller's;
// else it finds the caller's own customer (70 % of the time, always when a
// CRM id came with the call); else it keeps the fresh ref of a call nobody
// was recognized on, or makes up a ref of its own when the service named
// someone else. 10 % of agents send no customer_ref at all, whatever they
// know: the service then saves to the call's ref.
func (p *player) end(ctx context.Context, callID string, c *call, cur answer, o *observation) error {
	per := c.person
	ref, known := cur.CustomerRef, p.owns(per, cur.CustomerRef)
	mine := p.refs[per.ID]
	switch {
	case known:
	case len(mine) > 0 && (c.sendCRM || p.r.Float64() < 0.7):
		ref, known = mine[len(mine)-1], true
	case cur.Identity.Recommendation == "ignore":
	default:
		p.made++
		ref = fmt.Sprintf("crm_%d", p.made)
	}
	body := endBody{CallID: callID, CustomerRef: ref, Intent: c.intent, IntentStatus: "resolved", Variables: map[string]string{"name": per.Name}}
	if c.open {
		body.IntentStatus = "open"
	}
	crm := per.CRM != "" && (known || c.sendCRM)
	if crm {
		body.ExternalIDs = map[string]string{"crm_id": per.CRM}
	}
	if p.r.Float64() < 0.1 {
		body.CustomerRef, o.omitted = "", true
	}
	var res struct {
		CustomerRef string `json:"customer_ref"`
	}
	if _, err := p.c.api(ctx, "POST", "/v1/calls/end", body, &res); err != nil {
		return err
	}
	p.saved(c, res.CustomerRef, crm || c.sendCRM, o)
	return nil
}

// completed notes what a completion without an agent's end saved: the
// call's customer on reuse (or a "yes"), a new customer when the number had
// no link at all (seen by asking for it), else nothing.
func (p *player) completed(ctx context.Context, c *call, cur answer, o *observation) error {
	if cur.Identity.Recommendation == "reuse" {
		p.saved(c, cur.CustomerRef, false, o)
		return nil
	}
	if _, owned := p.owner[cur.CustomerRef]; owned {
		return nil
	}
	status, err := p.c.api(ctx, "GET", "/v1/customers/"+url.PathEscape(cur.CustomerRef), nil, nil)
	if err != nil {
		return err
	}
	if status == 200 {
		p.saved(c, cur.CustomerRef, false, o)
	}
	return nil
}

// saved records that the call was saved to ref: a ref nobody owns becomes
// the caller's; the caller's number and CRM id (when the call carried it)
// are now linked to them, or, if ref is someone else's, the CRM id moved.
func (p *player) saved(c *call, ref string, crm bool, o *observation) {
	id := c.person.ID
	if _, ok := p.owner[ref]; !ok {
		p.owner[ref] = id
		p.refs[id] = append(p.refs[id], ref)
	}
	if p.owner[ref] != id {
		o.savedWrong = true
		if crm {
			delete(p.crmAt, id)
		}
		return
	}
	if !c.withheld {
		if p.anis[id] == nil {
			p.anis[id] = map[string]time.Time{}
		}
		p.anis[id][c.ani] = p.clock
	}
	if crm {
		p.crmAt[id] = p.clock
	}
}

// callView reads a call as it now stands.
func (p *player) callView(ctx context.Context, callID string) (answer, error) {
	var a answer
	status, err := p.c.api(ctx, "GET", "/v1/calls/"+callID, nil, &a)
	if err == nil && status != 200 {
		err = fmt.Errorf("GET /v1/calls: status %d", status)
	}
	return a, err
}

// verstat is Twilio's StirVerstat for an attestation; none sends nothing.
func verstat(attest string) string {
	switch attest {
	case "A", "B", "C":
		return "TN-Validation-Passed-" + attest
	case "failed":
		return "TN-Validation-Failed-B"
	}
	return ""
}

// with copies v with key set to value.
func with(v url.Values, key, value string) url.Values {
	out := url.Values{}
	for k, vs := range v {
		out[k] = append([]string(nil), vs...)
	}
	out.Set(key, value)
	return out
}

func (p *player) hex(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(p.ids.Uint32())
	}
	return hex.EncodeToString(b)
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
