// Package callcontext remembers what each caller told a business on earlier
// calls: who they probably are, their open issues and saved variables. It
// owns the rules of starting and ending calls and calls identity to score.
// It never logs and knows nothing of HTTP, Redis or Twilio.
package callcontext

import (
	"context"
	"errors"
	"time"

	"github.com/stickycalls/stickycalls/context/callapi"
	"github.com/stickycalls/stickycalls/context/identity"
)

// Errors callers act on, tested with errors.Is.
var (
	ErrNotFound    = errors.New("not found")
	ErrConflict    = errors.New("call_id already used with another body")
	ErrKeyReused   = errors.New("idempotency key reused with another body")
	ErrInFlight    = errors.New("an identical request is still in flight")
	ErrOverQuota   = errors.New("monthly quota spent")
	ErrUnavailable = errors.New("store unavailable")
)

// Mode separates test data from production data.
type Mode string

// Modes.
const (
	Test Mode = "test"
	Prod Mode = "prod"
)

// Scope is a tenant and mode. Every store method takes one, so no data can
// cross from one tenant or mode to another.
type Scope struct {
	Tenant string
	Mode   Mode
}

// LineTyper tells the line type of a number. Any error means Unknown.
type LineTyper interface {
	LineType(ctx context.Context, tenant, e164 string) (identity.LineType, error)
}

// NoLookup is the LineTyper of a tenant without Lookup credentials.
type NoLookup struct{}

// LineType always fails, so the remembered line type, if any, is used.
func (NoLookup) LineType(context.Context, string, string) (identity.LineType, error) {
	return identity.Unknown, errNoLookup
}

var errNoLookup = errors.New("lookup not configured")

// Greeter picks the spoken greeting for a start result.
type Greeter interface {
	Greet(res *callapi.StartResult) callapi.Greeting
}

// Plan limits a scope's use. Zero means unlimited.
type Plan struct {
	RateLimitPerMinute int
	MonthlyQuota       int64
}

// Policy is one tenant's configuration as the service needs it.
type Policy struct {
	Weights    identity.Weights
	Thresholds identity.Thresholds
	Plans      map[Mode]Plan
	OwnNumbers map[string]bool // the tenant's own numbers, never matched or linked as an ANI
}

// Durations the service works with. Zero fields take their defaults.
type Durations struct {
	Lease         time.Duration // in-flight marker, default 30s
	ReplayWindow  time.Duration // replays, default 24h
	CallRetention time.Duration // call records, default 7 days
	LinkTTL       time.Duration // a link after its last call, default 90 days
	IntentTTL     time.Duration // an open intent without a call, default 90 days
	HistoryTTL    time.Duration // closed intents, default 90 days
	MinCall       time.Duration // a completed call shorter than this links nothing, default 5s
}

func (d Durations) withDefaults() Durations {
	day := 24 * time.Hour
	d.Lease = orDefault(d.Lease, 30*time.Second)
	d.ReplayWindow = orDefault(d.ReplayWindow, day)
	d.CallRetention = orDefault(d.CallRetention, 7*day)
	d.LinkTTL = orDefault(d.LinkTTL, 90*day)
	d.IntentTTL = orDefault(d.IntentTTL, 90*day)
	d.HistoryTTL = orDefault(d.HistoryTTL, 90*day)
	d.MinCall = orDefault(d.MinCall, 5*time.Second)
	return d
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// Period is the usage month of t, such as "2026-11".
func Period(t time.Time) string { return t.UTC().Format("2006-01") }

// periodBounds returns the first instants of t's month and of the next.
func periodBounds(t time.Time) (time.Time, time.Time) {
	t = t.UTC()
	start := time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
	return start, start.AddDate(0, 1, 0)
}
