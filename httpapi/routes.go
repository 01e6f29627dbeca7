// Package httpapi is the service's one http.Handler: the REST /v1 API,
// health, readiness, metrics and the API's OpenAPI document. Every route is
// listed in addRoutes, and every REST route in openapi.yaml.
package httpapi

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"

	"github.com/stickycalls/stickycalls/context/callcontext"
	"github.com/stickycalls/stickycalls/context/keys"
	"github.com/stickycalls/stickycalls/voice"
)

// Body limits of the routes that take one.
const (
	smallBody = 64 << 10
	endBody   = 512 << 10
)

// NewHandler returns the whole HTTP surface. reg collects the metrics that
// /metrics serves; a nil tw leaves the Twilio voice webhooks out; limiter
// enforces the plans' rate limits (nil: none); opts add what is optional
// (the admin routes).
func NewHandler(logger zerolog.Logger, calls *callcontext.Service, ring *keys.Keyring, reg *prometheus.Registry, tw *voice.Config, limiter Limiter, opts ...Option) http.Handler {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	m := newMetrics(reg)
	mux := http.NewServeMux()
	addRoutes(mux, logger, calls, ring, m, reg, limiter)
	if tw != nil {
		addVoiceRoutes(mux, logger, calls, *tw)
	}
	if o.adminToken != "" {
		addAdminRoutes(mux, logger, calls, ring, reg, o)
	}
	if o.vapi != nil {
		mux.Handle("POST /integrations/vapi", o.vapi) // the tenant's X-Vapi-Secret, checked inside
	}
	if o.retell[0] != nil {
		mux.Handle("POST /integrations/retell/inbound", o.retell[0]) // X-Retell-Signature, checked inside
		mux.Handle("POST /integrations/retell/events", o.retell[1])
	}
	return logRequests(logger, m, jsonErrors(logger, mux))
}

func addVoiceRoutes(mux *http.ServeMux, logger zerolog.Logger, calls *callcontext.Service, tw voice.Config) {
	twilio := voice.RequireSignature(tw, logger) // the token of the AccountSid's tenant, and its previous one
	mux.Handle("POST /voice/incoming", twilio(voice.HandleIncoming(logger, calls, tw)))
	mux.Handle("POST /voice/confirm", twilio(voice.HandleConfirm(logger, calls, tw)))
	mux.Handle("POST /voice/status", twilio(voice.HandleStatus(logger, calls, tw)))
	mux.Handle("POST /voice/after-stream", twilio(voice.HandleAfterStream(logger, calls, tw)))
	mux.Handle("POST /voice/dial-status", twilio(voice.HandleDialStatus(logger, calls, tw)))
	mux.Handle("POST /voice/whisper", twilio(voice.HandleWhisper(calls, tw)))
	mux.Handle("GET /voice/stream", voice.HandleStream(logger, calls, tw, tw.Shutdown)) // signed upgrade, checked inside
	mux.Handle("GET /voice/relay", voice.HandleRelay(logger, calls, tw, tw.Shutdown))   // ConversationRelay: likewise
}

// addAdminRoutes serves the operators' dashboard and key management to the
// holder of the admin token (STICKYCALLS_ADMIN_TOKEN), so keys are managed
// while the service runs.
func addAdminRoutes(mux *http.ServeMux, logger zerolog.Logger, calls *callcontext.Service, ring *keys.Keyring, reg *prometheus.Registry, o options) {
	admin := requireAdmin(logger, o.adminToken)
	if o.backup != nil {
		mux.Handle("GET /admin/export", admin(handle(logger, handleExport(o.backup))))
		mux.Handle("POST /admin/import", admin(handle(logger, handleImport(o.backup))))
	}
	mux.Handle("GET /dashboard", admin(handle(logger, handleDashboard(calls, reg))))
	mux.Handle("POST /admin/keys", admin(handle(logger, handleKeyCreate(ring))))
	mux.Handle("GET /admin/keys", admin(handle(logger, handleKeyList(ring))))
	mux.Handle("DELETE /admin/keys/{key_id}", admin(handle(logger, handleKeyRevoke(ring))))
}

func addRoutes(mux *http.ServeMux, logger zerolog.Logger, calls *callcontext.Service, ring *keys.Keyring, m *metrics, reg *prometheus.Registry, limiter Limiter) {
	api := requireKey(logger, ring, rateLimit(calls, limiter, m))
	mux.Handle("GET /healthz", handleHealthz())
	mux.Handle("GET /openapi.json", handleOpenAPI(logger))
	mux.Handle("GET /readyz", handleReadyz(calls))
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.Handle("POST /v1/calls/start", api(handle(logger, handleCallStart(calls, m))))
	mux.Handle("POST /v1/calls/end", api(handle(logger, handleCallEnd(calls, m))))
	mux.Handle("GET /v1/calls/{call_id}", api(handle(logger, handleCallGet(calls))))
	mux.Handle("GET /v1/customers/{customer_ref}", api(handle(logger, handleCustomerGet(calls))))
	mux.Handle("DELETE /v1/customers/{customer_ref}", api(handle(logger, handleCustomerDelete(calls))))
	mux.Handle("GET /v1/usage", api(handle(logger, handleUsage(calls))))
}
