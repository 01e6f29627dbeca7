// Package tally is the vocabulary of the hourly counts that the dashboard
// reads, so every instance shows the same figures: the field a start, an
// end or an answer to the confirm question adds one to (the stores add it
// in the same write as the event), and the sum of 30 days of them.
package tally

import (
	"fmt"
	"strings"
	"time"

	"github.com/stickycalls/stickycalls/context/identity"
	"github.com/stickycalls/stickycalls/context/storage"
)

// The fields of a tally: what was counted, with its labels, joined by "/".
//
//	s/<recommendation>/<billable 1|0>/<confidence tenth 0-9>   a start
//	e/<created 1|0>/<counted 1|0>/<billable 1|0>/<intent transition or ->   an end
//	a/<answer>   an answer to the confirm question
//
// Start is the count of a start.
func Start(at time.Time, rec identity.Recommendation, billable bool, confidence float64) storage.Tally {
	tenth := min(max(int(confidence*10), 0), 9)
	return storage.Tally{At: at, Field: fmt.Sprintf("s/%s/%s/%d", rec, bit(billable), tenth)}
}

// End is the count of an end; intent is its intent's transition, or "".
func End(at time.Time, created, counted, billable bool, intent string) storage.Tally {
	if intent == "" {
		intent = "-"
	}
	return storage.Tally{At: at, Field: fmt.Sprintf("e/%s/%s/%s/%s", bit(created), bit(counted), bit(billable), intent)}
}

// Answer is the count of an answer to the confirm question.
func Answer(at time.Time, answer string) storage.Tally {
	return storage.Tally{At: at, Field: "a/" + answer}
}

func bit(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// Intent transitions an end reports.
const (
	IntentOpened     = "opened"
	IntentFollowedUp = "followed_up"
	IntentResolved   = "resolved"
	IntentAbandoned  = "abandoned"
)

// Summary is what a scope's hourly counts say over the last 30 days, as
// the dashboard shows it. Calls are counted as /v1/usage counts them.
type Summary struct {
	From, To    time.Time // the hours summed: [From, To)
	CallsByHour [24]int64 // the last 24 hours, oldest first
	CallsByDay  [30]int64 // the last 30 days (24-hour spans ending at To), oldest first
	Starts      map[identity.Recommendation]int64
	Confidence  [10]int64 // starts by tenth of confidence: [0,0.1), … [0.9,1]
	Billable    int64
	NonBillable int64
	Ends        int64
	Created     int64 // ends that created their customer
	Intents     map[string]int64
	Answers     map[string]int64
}

// Calls is every call counted.
func (s Summary) Calls() int64 { return s.Billable + s.NonBillable }

// StartsTotal is every start.
func (s Summary) StartsTotal() int64 {
	n := int64(0)
	for _, v := range s.Starts {
		n += v
	}
	return n
}

// RecognitionRate is the share of starts answered reuse, or 0.
func (s Summary) RecognitionRate() float64 { return ratio(s.Starts[identity.Reuse], s.StartsTotal()) }

// ResolutionRate is the share of closed intents that were resolved, not
// abandoned, or 0.
func (s Summary) ResolutionRate() float64 {
	return ratio(s.Intents[IntentResolved], s.Intents[IntentResolved]+s.Intents[IntentAbandoned])
}

func ratio(a, b int64) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

// Summarize sums hours into the summary of the 30 days before to (an hour
// boundary; the hour it starts is the last one summed).
func Summarize(hours []storage.HourTally, to time.Time) Summary {
	to = to.UTC().Truncate(time.Hour).Add(time.Hour)
	s := Summary{From: to.Add(-30 * 24 * time.Hour), To: to, Starts: map[identity.Recommendation]int64{},
		Intents: map[string]int64{}, Answers: map[string]int64{}}
	for _, h := range hours {
		if h.Hour.Before(s.From) || !h.Hour.Before(to) {
			continue
		}
		day := 29 - int(to.Sub(h.Hour)-time.Hour)/int(24*time.Hour)
		hour := 23 - int(to.Sub(h.Hour)/time.Hour-1)
		for field, n := range h.Counts {
			calls := s.add(field, n)
			s.CallsByDay[day] += calls
			if hour >= 0 {
				s.CallsByHour[hour] += calls
			}
		}
	}
	return s
}

// add counts one field's n and returns how many calls it holds.
func (s *Summary) add(field string, n int64) (calls int64) {
	p := strings.Split(field, "/")
	switch {
	case p[0] == "s" && len(p) == 4:
		s.Starts[identity.Recommendation(p[1])] += n
		if t := int(p[3][0] - '0'); len(p[3]) == 1 && t >= 0 && t <= 9 {
			s.Confidence[t] += n
		}
		s.bill(p[2] == "1", n)
		return n
	case p[0] == "e" && len(p) == 5:
		s.Ends += n
		if p[1] == "1" {
			s.Created += n
		}
		if p[4] != "-" {
			s.Intents[p[4]] += n
		}
		if p[2] == "1" { // an end counts as a call only when it had no start
			s.bill(p[3] == "1", n)
			return n
		}
	case p[0] == "a" && len(p) == 2:
		s.Answers[p[1]] += n
	}
	return 0
}

func (s *Summary) bill(billable bool, n int64) {
	if billable {
		s.Billable += n
	} else {
		s.NonBillable += n
	}
}
