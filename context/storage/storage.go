// Package storage holds what the stores keep and exchange with the domain:
// customer and call records, the claims and commits of starts and ends,
// index entries and hourly tallies. It has no behaviour beyond naming
// things; the rules that change these records live in context/callcontext,
// and the stores (context/boltstore, context/redisstore) keep them.
package storage

import (
	"errors"
	"time"

	"github.com/stickycalls/stickycalls/context/identity"
)

// ErrVersion is returned by a store when a record changed since it was
// read; the service reads again and retries.
var ErrVersion = errors.New("record changed concurrently")

// RememberedLineType is a number's line type as a scope remembers it from
// its calls (not Lookup's cache, which is every tenant's).
type RememberedLineType struct {
	ANI      string            `json:"ani"`
	LineType identity.LineType `json:"line_type"`
	Expires  time.Time         `json:"expires"`
}

// Query is what a start's hints ask the store for. ANI is empty when
// withheld or one of the tenant's own numbers.
type Query struct {
	ANI         string
	ExternalIDs []ExternalID
	CustomerRef string
}

// ExternalID is one identifier a client's own systems use for a customer.
type ExternalID struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

func (e ExternalID) String() string { return e.Key + ":" + e.Value }

// Found is what a store knows about a query's hints.
type Found struct {
	Customers map[string]Record // every customer the hints point at
	ANI       ANIEntry          // the ANI's index entry
	Owners    map[string]string // ExternalID.String() → owner ref
}

// ANIEntry is what is remembered about one ANI.
type ANIEntry struct {
	LineType identity.LineType `json:"line_type,omitempty"`
	Links    map[string]Link   `json:"links,omitempty"` // customer ref → link
}

// Link ties an ANI or external id to a customer until Expires. A
// customer's own ANI links also keep what their calls have shown, which
// the history rules of docs/SCORING.md weigh; index entries keep only the
// times.
type Link struct {
	LastCall time.Time `json:"last_call"`
	Expires  time.Time `json:"expires"`
	Calls    int       `json:"calls,omitempty"`    // ends and completions saved on the link
	Attested int       `json:"attested,omitempty"` // of those, with attestation A or B
	Yes      int       `json:"yes,omitempty"`      // the caller confirmed being the customer
	Disputes int       `json:"disputes,omitempty"` // the caller said no, or an agent named another customer
	// Seen is the time of the last call that taught the link something
	// (LastCall also moves for a guess an end saved to unconfirmed).
	Seen time.Time `json:"seen,omitzero"`
}

// Record is everything remembered about one customer. It is not called
// Context: in Go that word means context.Context.
type Record struct {
	Ref         string              `json:"ref"`
	Version     int64               `json:"version"`
	Created     time.Time           `json:"created"`
	FirstCall   time.Time           `json:"first_call"`
	LastCall    time.Time           `json:"last_call"`
	ANIs        map[string]Link     `json:"anis,omitempty"`
	ExternalIDs map[string]Link     `json:"external_ids,omitempty"` // ExternalID.String() → link
	Intents     []Intent            `json:"intents,omitempty"`      // open, oldest first
	History     []Intent            `json:"history,omitempty"`      // closed, oldest first
	Variables   map[string]Variable `json:"variables,omitempty"`
	Calls       []CallRef           `json:"calls,omitempty"` // recent calls, for erasure
	// Yes and Disputes count, over all of the customer's links, the calls
	// that confirmed or denied that the caller was this customer.
	Yes      int `json:"yes,omitempty"`
	Disputes int `json:"disputes,omitempty"`
	// Expires is when the record is gone unless something refreshes it:
	// the latest expiry of its links, open intents and variables.
	Expires time.Time `json:"expires"`
}

// Intent is one reason a customer called.
type Intent struct {
	Name     string    `json:"name"`
	Status   string    `json:"status"`
	Attempts int       `json:"attempts"`
	Opened   time.Time `json:"opened"`
	LastCall time.Time `json:"last_call"`
	Closed   time.Time `json:"closed,omitzero"`
}

// Variable is one saved value with the call that wrote it.
type Variable struct {
	Value   string    `json:"value"`
	Source  string    `json:"source"`
	Expires time.Time `json:"expires"`
}

// CallRef names a call of a customer, and whether the customer has its
// end (an end applies once, even when its call record could not be
// written after the customer was).
type CallRef struct {
	ID      string    `json:"id"`
	At      time.Time `json:"at"`
	Ended   bool      `json:"ended,omitempty"`
	Created bool      `json:"created,omitempty"` // the end created the customer
	// Disputed: the call was recorded as a dispute of this customer's link
	// (the customer was the start's guess, and the caller was someone else).
	Disputed bool `json:"disputed,omitempty"`
	// Completed: the call's completion linked this customer (Linked: it
	// made the link, rather than refreshed one), so a retried completion,
	// after a store failure past the customer's write, counts nothing twice.
	Completed bool `json:"completed,omitempty"`
	Linked    bool `json:"linked,omitempty"`
}

// Op is the kind of request a claim is for.
type Op string

// Ops.
const (
	OpStart Op = "start"
	OpEnd   Op = "end"
)

// Claim asks to do a start or end of a call.
type Claim struct {
	Op          Op
	CallID      string
	Key         string // Idempotency-Key, may be empty
	Fingerprint string
	Now         time.Time
	Lease       time.Duration
	Replay      time.Duration // how long a finished start replays
	KeyTTL      time.Duration // how long an idempotency key is kept
	Retention   time.Duration // how long a new call record is kept
	Quota       int64         // 0 = unlimited
	Period      string
	Query       *Query // resolved on Claimed, when not nil
}

// Outcome is what a Claim found.
type Outcome int

// Outcomes of a Claim.
const (
	Claimed Outcome = iota
	Replay
	Conflict
	KeyReused
	InFlight
	OverQuota
)

// ClaimResult is a Claim's answer: on Replay the stored response, on
// Claimed the call's record as it stood.
type ClaimResult struct {
	Outcome  Outcome
	Response []byte
	Call     CallRecord
	Found    Found // for Claim.Query
}

// CallRecord is what a call's start and end left for replays and for a
// later end. A zero Started means the call has no start.
type CallRecord struct {
	ID              string                  `json:"id"`
	Started         time.Time               `json:"started,omitzero"`
	StartPrint      string                  `json:"start_print,omitempty"`
	StartResponse   []byte                  `json:"start_response,omitempty"`
	StartLease      time.Time               `json:"start_lease,omitzero"`
	StartLeasePrint string                  `json:"start_lease_print,omitempty"`
	CustomerRef     string                  `json:"customer_ref,omitempty"`
	Recommendation  identity.Recommendation `json:"recommendation,omitempty"`
	ANI             string                  `json:"ani,omitempty"` // linkable ANI only
	DNIS            string                  `json:"dnis,omitempty"`
	ExternalIDs     []ExternalID            `json:"external_ids,omitempty"`
	Revealed        []string                `json:"revealed,omitempty"`  // the customers the start's answer showed (erasing one erases the call)
	Confirmed       bool                    `json:"confirmed,omitempty"` // the caller said yes to the confirm question
	Denied          bool                    `json:"denied,omitempty"`    // the caller said no to it
	// What the start saw, for the link's history (docs/SCORING.md).
	Attestation identity.Attestation `json:"attestation,omitempty"`
	LineType    identity.LineType    `json:"line_type,omitempty"`
	Matched     string               `json:"matched,omitempty"` // the customer the start recognized (reuse or confirm)
	// Contestable: a "no" or an end naming another customer counts against
	// Matched's link to the ANI (the line was not known to be shared, and
	// the call's attestation fit the link).
	Contestable bool `json:"contestable,omitempty"`
	// AgentAction is what the call's AI agent asked for when its stream
	// ends: "hangup" or "transfer:" and the target; "" for nothing.
	AgentAction string `json:"agent_action,omitempty"`
	// DialStatus is how the call's last <Dial> ended (completed, answered,
	// busy, no-answer, failed, canceled); "" before any.
	DialStatus    string    `json:"dial_status,omitempty"`
	Ended         time.Time `json:"ended,omitzero"`
	EndPrint      string    `json:"end_print,omitempty"`
	EndResponse   []byte    `json:"end_response,omitempty"`
	EndLease      time.Time `json:"end_lease,omitzero"`
	EndLeasePrint string    `json:"end_lease_print,omitempty"`
	// Completion: set once, by the voice status callback.
	Completed         time.Time `json:"completed,omitzero"`
	CompletionStatus  string    `json:"completion_status,omitempty"`
	CompletedDuration int64     `json:"completed_duration,omitempty"` // seconds, Twilio's CallDuration
	CompletedRef      string    `json:"completed_ref,omitempty"`      // the customer completion linked the ANI to, when it made that link
	CompletionCreated bool      `json:"completion_created,omitempty"` // completion created that customer
	Expires           time.Time `json:"expires"`
}

// Confirmation is a caller's answer to the confirm question: the customer
// and recommendation the call continues with.
type Confirmation struct {
	Confirmed      bool
	Denied         bool
	CustomerRef    string
	Recommendation identity.Recommendation
	Tally          Tally // the answer, counted with it
}

// CallNote is what the voice webhooks learn about a call after its start.
// An empty field leaves the record's as it is.
type CallNote struct {
	// AgentAction is what the call's AI agent asked to happen when its
	// media stream ends (see callcontext.Service.Instruct).
	AgentAction string
	// DialStatus is Twilio's DialCallStatus of the call's last <Dial>
	// (see callcontext.Service.Dialled).
	DialStatus string
}

// StartCommit is what a finished start stores.
type StartCommit struct {
	Call     CallRecord
	LineType identity.LineType // remembered for Call.ANI unless Unknown
	LinkTTL  time.Duration     // how long a remembered line type lives
	Period   string
	Billable bool
	Tally    Tally // the start, counted with it
}

// EndCommit is one end's whole effect.
type EndCommit struct {
	Call       CallRecord
	Writes     []Write   // customers to create, update or delete
	ANILinks   []ANILink // index entries to set
	ANIUnlinks []ANILink
	Owners     []Owner // external id index entries to set
	Period     string
	Counted    bool // the end counts as a call in usage (it had no start)
	// Completion marks a voice completion: the store merges Call's
	// completion fields instead of its end fields.
	Completion bool
	Billable   bool
	Tally      Tally // the end, counted with it (none for a completion)
}

// Write changes one customer. Prev is the version read (0: must not exist).
type Write struct {
	Record Record
	Prev   int64
	Delete bool
}

// ANILink is one (ANI, customer) index entry.
type ANILink struct {
	ANI  string
	Ref  string
	Link Link
}

// Owner makes ref the owner of an external id.
type Owner struct {
	ID      ExternalID
	Ref     string
	Expires time.Time
}

// UsageCount is a scope's counters for one period.
type UsageCount struct {
	Requests    int64 `json:"requests"`
	Billable    int64 `json:"billable"`
	NonBillable int64 `json:"non_billable"`
}

// Tally is one call event counted in the hourly aggregates that the
// dashboard reads, so every instance shows the same figures: the store
// adds one to Field in the UTC hour of At, in the same write as the event
// (no extra round trip). A zero Tally counts nothing.
type Tally struct {
	At    time.Time
	Field string
}

// HourTally is one hour's counts, by field.
type HourTally struct {
	Hour   time.Time // the start of the UTC hour
	Counts map[string]int64
}

// TallyRetention is how long the store keeps an hour's counts.
const TallyRetention = 35 * 24 * time.Hour

// TallyHour is the name of the hour of t, as stores key it: "2026120116".
func TallyHour(t time.Time) string { return t.UTC().Format("2006010215") }
