package callcontext

import (
	"github.com/stickycalls/stickycalls/context/callapi"
	"time"
)

// UsageView is a scope's usage in the current period.
type UsageView struct {
	Tenant             string     `json:"tenant"`
	Mode               Mode       `json:"mode"`
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

func optTimestamp(t time.Time) *string {
	if t.IsZero() {
		return nil
	}
	s := callapi.Timestamp(t)
	return &s
}

// secondsLeft is the whole seconds until expires, rounded up, so a value
// written with a 30-day life shows 2592000 at once.
func secondsLeft(expires, now time.Time) int64 {
	return int64((expires.Sub(now) + time.Second - 1) / time.Second)
}

func intentViews(r *Record) []callapi.IntentView {
	out := []callapi.IntentView{}
	for _, in := range r.Intents {
		out = append(out, callapi.IntentView{Intent: in.Name, Status: "open", AttemptCount: in.Attempts,
			OpenedAt: callapi.Timestamp(in.Opened), LastCallAt: callapi.Timestamp(in.LastCall)})
	}
	return out
}
