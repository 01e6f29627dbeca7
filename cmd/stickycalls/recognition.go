package main

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/stickycalls/stickycalls/context/callcontext"
	"github.com/stickycalls/stickycalls/context/identity"
)

// recognition counts what calls reveal about recognition: the callers'
// answers to the confirm question and the agents' corrections, from which
// an operator estimates the live wrong-person rate (docs/SCORING.md). It is
// the service's callcontext.Observer.
type recognition struct {
	starts      *prometheus.CounterVec
	answers     *prometheus.CounterVec
	corrections *prometheus.CounterVec
}

// newRecognition registers the recognition counters with reg.
func newRecognition(reg prometheus.Registerer) *recognition {
	r := &recognition{
		starts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stickycalls_starts_total", Help: "Starts answered (REST and voice, replays not counted), by recommendation.",
		}, []string{"tier"}),
		answers: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stickycalls_confirm_answers_total", Help: "Answers to the voice confirm question, by answer (yes, no, none).",
		}, []string{"answer"}),
		corrections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stickycalls_agent_corrections_total",
			Help: "Ends that named another customer than the one the start recognized, by the start's tier (reuse, confirm).",
		}, []string{"tier"}),
	}
	for _, a := range []callcontext.Answer{callcontext.AnswerYes, callcontext.AnswerNo, callcontext.AnswerNone} {
		r.answers.WithLabelValues(string(a)) // exported at 0 from the start, so that rates work
	}
	for _, tier := range []identity.Recommendation{identity.Reuse, identity.Confirm, identity.Ignore} {
		r.starts.WithLabelValues(string(tier))
		if tier != identity.Ignore {
			r.corrections.WithLabelValues(string(tier))
		}
	}
	reg.MustRegister(r.starts, r.answers, r.corrections)
	return r
}

// Started implements callcontext.Observer.
func (r *recognition) Started(tier identity.Recommendation) {
	r.starts.WithLabelValues(string(tier)).Inc()
}

// Answered implements callcontext.Observer.
func (r *recognition) Answered(a callcontext.Answer) { r.answers.WithLabelValues(string(a)).Inc() }

// Corrected implements callcontext.Observer.
func (r *recognition) Corrected(tier identity.Recommendation) {
	r.corrections.WithLabelValues(string(tier)).Inc()
}
