package lookup

import (
	"context"
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sony/gobreaker/v2"
)

// Metrics are a Client's Prometheus series, per tenant: how each Lookup
// ended, how long Twilio took, and the state of the tenant's breaker. A nil
// *Metrics records nothing.
type Metrics struct {
	outcomes *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	breaker  *prometheus.GaugeVec
}

// NewMetrics registers the Lookup series with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		outcomes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stickycalls_lookup_requests_total",
			Help: "Line type Lookups by tenant and outcome: hit (cache), answered (by Twilio), timeout, error (5xx, 429, transport), " +
				"unauthorized (401/403: check the credentials), refused (another 4xx), breaker_open, canceled.",
		}, []string{"tenant", "outcome"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "stickycalls_lookup_duration_seconds", Help: "Time of the requests sent to Twilio Lookup, by tenant.",
			Buckets: []float64{.025, .05, .1, .15, .2, .3, .5, 1},
		}, []string{"tenant"}),
		breaker: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "stickycalls_lookup_breaker_state", Help: "The tenant's Lookup circuit breaker: 0 closed, 1 half-open, 2 open.",
		}, []string{"tenant"}),
	}
	reg.MustRegister(m.outcomes, m.latency, m.breaker)
	return m
}

func (m *Metrics) outcome(tenant, outcome string) {
	if m != nil {
		m.outcomes.WithLabelValues(tenant, outcome).Inc()
	}
}

func (m *Metrics) took(tenant string, d time.Duration) {
	if m != nil {
		m.latency.WithLabelValues(tenant).Observe(d.Seconds())
	}
}

func (m *Metrics) state(tenant string, s gobreaker.State) {
	if m != nil {
		m.breaker.WithLabelValues(tenant).Set(float64(s)) // closed 0, half-open 1, open 2
	}
}

// outcomeOf names how a Lookup that reached the breaker ended.
func outcomeOf(err error) string {
	switch {
	case err == nil:
		return "answered"
	case errors.Is(err, ErrBreakerOpen):
		return "breaker_open"
	case errors.Is(err, errUnauthorized):
		return "unauthorized"
	case errors.Is(err, errRefused):
		return "refused"
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "canceled"
	}
	return "error"
}
