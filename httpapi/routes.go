// Package httpapi is the service's one http.Handler: the REST /v1 API,
// health, readiness and metrics. Every route is listed in addRoutes.
package httpapi

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"

	"github.com/stickycalls/stickycalls/context/callcontext"
)

// Body limits of the routes that take one.
const (
	smallBody = 64 << 10
	endBody   = 512 << 10
)

// Extra routes a caller mounts beside the API (the voice webhooks).
type Extra map[string]http.Handler

// NewHandler returns the whole HTTP surface. reg collects the metrics that
// /metrics serves; extra adds routes owned by other packages.
func NewHandler(logger zerolog.Logger, calls *callcontext.Service, reg *prometheus.Registry, extra Extra) http.Handler {
	m := newMetrics(reg)
	mux := http.NewServeMux()
	addRoutes(mux, logger, calls, m, reg)
	for pattern, h := range extra {
		mux.Handle(pattern, h)
	}
	return logRequests(logger, m, jsonErrors(logger, mux))
}

func addRoutes(mux *http.ServeMux, logger zerolog.Logger, calls *callcontext.Service, m *metrics, reg *prometheus.Registry) {
	api := requireKey(logger, calls)
	mux.Handle("GET /healthz", handleHealthz())
	mux.Handle("GET /readyz", handleReadyz(calls))
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.Handle("POST /v1/calls/start", api(handle(logger, handleCallStart(calls, m))))
	mux.Handle("POST /v1/calls/end", api(handle(logger, handleCallEnd(calls, m))))
	mux.Handle("GET /v1/calls/{call_id}", api(handle(logger, handleCallGet(calls))))
	mux.Handle("GET /v1/customers/{customer_ref}", api(handle(logger, handleCustomerGet(calls))))
	mux.Handle("DELETE /v1/customers/{customer_ref}", api(handle(logger, handleCustomerDelete(calls))))
	mux.Handle("GET /v1/usage", api(handle(logger, handleUsage(calls))))
}
