// Package callapi is the shapes of the call API (API.md §2–§4): requests
// as parsed and validated, with every problem listed, and answers as every
// channel sends them. It knows no store and no HTTP.
package callapi

import (
	"time"

	"github.com/stickycalls/stickycalls/context/identity"
)

// StartResult is the answer to a start, as every channel sees it. Its JSON
// is the API's response body and is what replays return.
type StartResult struct {
	CallID      string                  `json:"call_id"`
	CustomerRef string                  `json:"customer_ref"`
	CallStart   string                  `json:"call_start"`
	Identity    IdentityView            `json:"identity"`
	OpenIntents []IntentView            `json:"open_intents"`
	Variables   map[string]VariableView `json:"variables"`
	Greeting    Greeting                `json:"greeting"`
	Billable    bool                    `json:"billable"`
	Match       *MatchView              `json:"match"`
	Confidence  *float64                `json:"confidence"`
	// How the call ended, on GET /v1/calls/{call_id} once it has (absent
	// from a start's answer).
	Status          string  `json:"status,omitempty"`
	CallEnd         *string `json:"call_end,omitempty"`
	DurationSeconds *int64  `json:"duration_seconds,omitempty"`
	// DialStatus is how the voice webhook's <Dial> to the number's agent
	// ended (completed, answered, busy, no-answer, failed, canceled).
	DialStatus string `json:"dial_status,omitempty"`

	// DNIS is the number dialled, which picks a greeting set; Name is the
	// stored name, when the tier may reveal it.
	DNIS string `json:"-"`
	Name string `json:"-"`
}

// IdentityView is how sure the service is about the caller.
type IdentityView struct {
	Confidence     float64                 `json:"confidence"`
	Level          identity.Level          `json:"level"`
	Recommendation identity.Recommendation `json:"recommendation"`
	Sources        []string                `json:"sources"`
	Candidates     []Candidate             `json:"candidates"`
	LineType       identity.LineType       `json:"line_type"`
	LineTypeSource string                  `json:"line_type_source"`
}

// Candidate is one of the customers sharing a line.
type Candidate struct {
	CustomerRef string `json:"customer_ref"`
	Name        string `json:"name,omitempty"`
}

// IntentView is an open intent as clients see it.
type IntentView struct {
	Intent       string `json:"intent"`
	Status       string `json:"status"`
	AttemptCount int    `json:"attempt_count"`
	OpenedAt     string `json:"opened_at"`
	LastCallAt   string `json:"last_call_at"`
}

// VariableView is a variable in the docs' shape.
type VariableView struct {
	Value      string `json:"value"`
	Source     string `json:"source"`
	TTLSeconds int64  `json:"ttl_seconds"`
}

// MatchView is the guide's shape of a recognized caller.
type MatchView struct {
	CustomerRef string            `json:"customer_ref"`
	OpenIntents []IntentView      `json:"open_intents"`
	Variables   map[string]string `json:"variables"`
}

// EndResult is the answer to an end.
type EndResult struct {
	CallID           string  `json:"call_id"`
	CustomerRef      string  `json:"customer_ref"`
	CallStart        *string `json:"call_start"`
	CallEnd          string  `json:"call_end"`
	DurationSeconds  int64   `json:"duration_seconds"`
	IntentsUpdated   int     `json:"intents_updated"`
	VariablesUpdated int     `json:"variables_updated"`
	Billable         bool    `json:"billable"`
}

// CustomerView is everything stored about a customer.
type CustomerView struct {
	CustomerRef   string                        `json:"customer_ref"`
	FirstCallAt   *string                       `json:"first_call_at"`
	LastCallAt    *string                       `json:"last_call_at"`
	Links         LinksView                     `json:"links"`
	OpenIntents   []IntentView                  `json:"open_intents"`
	ClosedIntents []ClosedIntentView            `json:"closed_intents"`
	Variables     map[string]StoredVariableView `json:"variables"`
	// Over all of the customer's numbers, the calls that confirmed or
	// denied that the caller was this customer.
	Confirmations int `json:"confirmations"`
	Disputes      int `json:"disputes"`
}

// LinksView lists a customer's live links.
type LinksView struct {
	ANIs        []ANILinkView `json:"anis"`
	ExternalIDs []ExtLinkView `json:"external_ids"`
}

// ANILinkView is one linked ANI, shown in full.
type ANILinkView struct {
	ANI        string `json:"ani"`
	LastCallAt string `json:"last_call_at"`
	ExpiresAt  string `json:"expires_at"`
	// What the link's calls showed, as the scoring weighs it.
	Calls         int `json:"calls"`
	AttestedCalls int `json:"attested_calls"`
	Confirmations int `json:"confirmations"`
	Disputes      int `json:"disputes"`
}

// ExtLinkView is one linked external id.
type ExtLinkView struct {
	Key        string `json:"key"`
	Value      string `json:"value"`
	LastCallAt string `json:"last_call_at"`
	ExpiresAt  string `json:"expires_at"`
}

// ClosedIntentView is an intent in history.
type ClosedIntentView struct {
	Intent       string `json:"intent"`
	Status       string `json:"status"`
	AttemptCount int    `json:"attempt_count"`
	ClosedAt     string `json:"closed_at"`
}

// StoredVariableView is a variable with its expiry.
type StoredVariableView struct {
	VariableView
	ExpiresAt string `json:"expires_at"`
}

// Timestamp formats t as the API does: UTC with milliseconds.
func Timestamp(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

// Greeting is the suggested first sentence of a call.
type Greeting struct {
	Tier identity.Recommendation `json:"tier"`
	Text string                  `json:"text"`
}

// UsageView is a scope's usage in the current period.
type UsageView struct {
	Tenant             string     `json:"tenant"`
	Mode               string     `json:"mode"`
	Period             PeriodView `json:"period"`
	Requests           int64      `json:"requests"`
	Quota              *int64     `json:"quota"`
	Remaining          *int64     `json:"remaining"`
	Calls              CallsView  `json:"calls"`
	RateLimitPerMinute *int       `json:"rate_limit_per_minute"`
}

// PeriodView bounds a usage period.
type PeriodView struct {
	Start string `json:"start"`
	End   string `json:"end"`
}

// CallsView counts calls by whether they were billable.
type CallsView struct {
	Billable    int64 `json:"billable"`
	NonBillable int64 `json:"non_billable"`
}
