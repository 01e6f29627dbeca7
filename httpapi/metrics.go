package httpapi

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/stickycalls/stickycalls/context/callapi"
	"github.com/stickycalls/stickycalls/context/callcontext"
)

// metrics are the HTTP layer's Prometheus series.
type metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	replays  prometheus.Counter
	// limiterErrors counts requests let through because the limiter failed.
	limiterErrors prometheus.Counter
	rateLimited   *prometheus.CounterVec
	quotaRefused  *prometheus.CounterVec
	refused       *prometheus.CounterVec
}

func newMetrics(reg *prometheus.Registry) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stickycalls_http_requests_total", Help: "HTTP requests by route and status.",
		}, []string{"route", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "stickycalls_http_request_duration_seconds", Help: "HTTP request latency by route.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"route"}),
		replays: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "stickycalls_idempotent_replays_total", Help: "Start and end requests answered from a stored response.",
		}),
		limiterErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "stickycalls_rate_limiter_errors_total", Help: "Requests let through unlimited because the rate limiter did not answer.",
		}),
	}
	m.rateLimited = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "stickycalls_rate_limited_total", Help: "Requests refused with 429 by the plan's rate limit.",
	}, []string{"tenant", "mode"})
	m.quotaRefused = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "stickycalls_quota_refused_total", Help: "Starts and ends refused with 402: the plan's monthly quota is spent.",
	}, []string{"tenant", "mode"})
	m.refused = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "stickycalls_variables_refused_total", Help: "Values refused as sensitive data, by reason (secret_name, ssn, card_number).",
	}, []string{"reason"})
	for _, r := range []string{callapi.ReasonSecretName, callapi.ReasonSSN, callapi.ReasonCardNumber} {
		m.refused.WithLabelValues(r)
	}
	reg.MustRegister(m.requests, m.duration, m.replays, m.limiterErrors, m.rateLimited, m.quotaRefused, m.refused)
	return m
}

// refusals counts what a start's or end's error refused: sensitive values
// and a spent quota.
func (m *metrics) refusals(sc callcontext.Scope, err error) {
	var invalid *callapi.ValidationError
	if errors.As(err, &invalid) {
		for _, is := range invalid.Issues {
			if is.Reason != "" {
				m.refused.WithLabelValues(is.Reason).Inc()
			}
		}
	}
	if errors.Is(err, callcontext.ErrOverQuota) {
		m.quotaRefused.WithLabelValues(sc.Tenant, string(sc.Mode)).Inc()
	}
}

func (m *metrics) observe(r *http.Request, status int, d time.Duration) {
	route := r.Pattern
	if route == "" {
		route = "unmatched"
	}
	m.requests.WithLabelValues(route, strconv.Itoa(status)).Inc()
	m.duration.WithLabelValues(route).Observe(d.Seconds())
}

func (m *metrics) replay(replayed bool) {
	if replayed {
		m.replays.Inc()
	}
}
