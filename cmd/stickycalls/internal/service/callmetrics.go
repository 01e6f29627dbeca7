package service

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/stickycalls/stickycalls/context/callcontext"
	"github.com/stickycalls/stickycalls/context/identity"
)

// callMetrics count what calls do, as /v1/usage counts them (a start once,
// an end as a call only when it had no start, replays never): the
// recommendation mix and confidence, billing, intents, and what calls
// reveal about recognition (the callers' answers to the confirm question
// and the agents' corrections, from which an operator estimates the live
// wrong-person rate, docs/SCORING.md). It is the service's
// callcontext.Observer. docs/METRICS.md has the PromQL for each.
type callMetrics struct {
	started     *prometheus.CounterVec
	ended       *prometheus.CounterVec
	confidence  *prometheus.HistogramVec
	billable    *prometheus.CounterVec
	intents     *prometheus.CounterVec
	answers     *prometheus.CounterVec
	corrections *prometheus.CounterVec
}

// newCallMetrics registers the call counters with reg.
func newCallMetrics(reg prometheus.Registerer) *callMetrics {
	m := &callMetrics{
		started: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stickycalls_calls_started_total", Help: "Starts answered (REST and voice; replays not counted), by recommendation.",
		}, []string{"tenant", "mode", "recommendation"}),
		ended: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stickycalls_calls_ended_total", Help: "Ends saved (replays not counted), by whether the end created its customer.",
		}, []string{"tenant", "mode", "created"}),
		confidence: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "stickycalls_identity_confidence", Help: "The identity confidence of starts answered.",
			Buckets: []float64{0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0},
		}, []string{"tenant", "mode"}),
		billable: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stickycalls_billable_calls_total", Help: "Calls as /v1/usage counts them (a start, or an end without one), by billable.",
		}, []string{"tenant", "mode", "billable"}),
		intents: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stickycalls_intents_total", Help: "Intents ends reported, by transition (opened, followed_up, resolved, abandoned).",
		}, []string{"tenant", "mode", "transition"}),
		answers: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stickycalls_confirm_answers_total", Help: "Answers to the voice confirm question, by answer (yes, no, none).",
		}, []string{"answer"}),
		corrections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stickycalls_agent_corrections_total",
			Help: "Ends that named another customer than the one the start recognized, by the start's tier (reuse, confirm).",
		}, []string{"tier"}),
	}
	for _, a := range []callcontext.Answer{callcontext.AnswerYes, callcontext.AnswerNo, callcontext.AnswerNone} {
		m.answers.WithLabelValues(string(a)) // exported at 0 from the start, so that rates work
	}
	for _, tier := range []identity.Recommendation{identity.Reuse, identity.Confirm} {
		m.corrections.WithLabelValues(string(tier))
	}
	reg.MustRegister(m.started, m.ended, m.confidence, m.billable, m.intents, m.answers, m.corrections)
	return m
}

// Started implements callcontext.Observer.
func (m *callMetrics) Started(sc callcontext.Scope, e callcontext.StartEvent) {
	mode := string(sc.Mode)
	m.started.WithLabelValues(sc.Tenant, mode, string(e.Recommendation)).Inc()
	m.confidence.WithLabelValues(sc.Tenant, mode).Observe(e.Confidence)
	m.billable.WithLabelValues(sc.Tenant, mode, strconv.FormatBool(e.Billable)).Inc()
}

// Ended implements callcontext.Observer.
func (m *callMetrics) Ended(sc callcontext.Scope, e callcontext.EndEvent) {
	mode := string(sc.Mode)
	m.ended.WithLabelValues(sc.Tenant, mode, strconv.FormatBool(e.Created)).Inc()
	if e.Counted {
		m.billable.WithLabelValues(sc.Tenant, mode, strconv.FormatBool(e.Billable)).Inc()
	}
	if e.Intent != "" {
		m.intents.WithLabelValues(sc.Tenant, mode, e.Intent).Inc()
	}
}

// Answered implements callcontext.Observer.
func (m *callMetrics) Answered(a callcontext.Answer) { m.answers.WithLabelValues(string(a)).Inc() }

// Corrected implements callcontext.Observer.
func (m *callMetrics) Corrected(tier identity.Recommendation) {
	m.corrections.WithLabelValues(string(tier)).Inc()
}
