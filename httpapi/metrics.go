package httpapi

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the HTTP layer's Prometheus series.
type metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	replays  prometheus.Counter
	// limiterErrors counts requests let through because the limiter failed.
	limiterErrors prometheus.Counter
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
	reg.MustRegister(m.requests, m.duration, m.replays, m.limiterErrors)
	return m
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
