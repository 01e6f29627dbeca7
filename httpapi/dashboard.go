package httpapi

import (
	"bytes"
	"cmp"
	"embed"
	"fmt"
	"html/template"
	"maps"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/stickycalls/stickycalls/context/callapi"
	"github.com/stickycalls/stickycalls/context/callcontext"
	"github.com/stickycalls/stickycalls/context/identity"
	"github.com/stickycalls/stickycalls/context/tally"
)

//go:embed templates/dashboard.html
var templates embed.FS

// dashboardPage renders the dashboard; parsed once.
var dashboardPage = template.Must(template.New("dashboard.html").Funcs(template.FuncMap{
	"percent": func(f float64) string { return strconv.FormatFloat(math.Round(f*1000)/10, 'f', -1, 64) + " %" },
	"bars":    barChart,
}).ParseFS(templates, "templates/dashboard.html"))

// bar is one labelled value of a chart.
type bar struct {
	Label string
	Value int64
}

// dashboardData is what the page shows.
type dashboardData struct {
	Tenant, Mode string
	Modes        []string
	To           string
	S            tally.Summary
	Hours, Days  []bar
	Mix          []bar
	Confidence   []bar
	Billing      []bar
	Intents      []bar
	Answers      []bar
	Errors       []bar   // this instance: requests by error status
	Breaker      string  // this instance: the tenant's Lookup breaker
	Fallbacks    []bar   // this instance: voice fallbacks by reason
	FallbackRate float64 // this instance: fallbacks over incoming calls answered
}

// handleDashboard serves the operators' page for one tenant and mode
// (?tenant=default&mode=prod): the call figures from the store's hourly
// tallies, so every instance shows the same; errors, the Lookup breaker
// and voice fallbacks from this instance's own registry, and marked so. A
// server-rendered page with inline SVG: no script, no external asset.
func handleDashboard(calls *callcontext.Service, reg prometheus.Gatherer) func(http.ResponseWriter, *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		q := r.URL.Query()
		tenant, mode := cmp.Or(q.Get("tenant"), "default"), cmp.Or(q.Get("mode"), string(callcontext.Prod))
		v := &callapi.ValidationError{}
		if !tenantName.MatchString(tenant) {
			v.Issues = append(v.Issues, callapi.Issue{Path: []string{"query", "tenant"}, Message: "1 to 64 characters of a-z, 0-9, _ and -"})
		}
		if mode != string(callcontext.Test) && mode != string(callcontext.Prod) {
			v.Issues = append(v.Issues, callapi.Issue{Path: []string{"query", "mode"}, Message: "must be test or prod"})
		}
		if len(v.Issues) > 0 {
			return v
		}
		s, err := calls.Summary(r.Context(), callcontext.Scope{Tenant: tenant, Mode: callcontext.Mode(mode)})
		if err != nil {
			return err
		}
		d := dashboardData{Tenant: tenant, Mode: mode, Modes: []string{"prod", "test"}, To: s.To.Format("2006-01-02 15:04"), S: s}
		for i, n := range s.CallsByHour { // the hour that starts at the label
			d.Hours = append(d.Hours, bar{s.To.Add(time.Duration(i-24) * time.Hour).Format("15h"), n})
		}
		for i, n := range s.CallsByDay { // the 24 hours that start at the label's hour
			d.Days = append(d.Days, bar{s.To.Add(time.Duration(i-30) * 24 * time.Hour).Format("Jan 2"), n})
		}
		for _, rec := range []identity.Recommendation{identity.Reuse, identity.Confirm, identity.Ignore} {
			d.Mix = append(d.Mix, bar{string(rec), s.Starts[rec]})
		}
		for i, n := range s.Confidence {
			d.Confidence = append(d.Confidence, bar{fmt.Sprintf("%.1f", float64(i)/10), n})
		}
		d.Billing = []bar{{"billable", s.Billable}, {"non-billable", s.NonBillable}}
		for _, t := range []string{tally.IntentOpened, tally.IntentFollowedUp, tally.IntentResolved, tally.IntentAbandoned} {
			d.Intents = append(d.Intents, bar{t, s.Intents[t]})
		}
		for _, a := range []callcontext.Answer{callcontext.AnswerYes, callcontext.AnswerNo, callcontext.AnswerNone} {
			d.Answers = append(d.Answers, bar{string(a), s.Answers[string(a)]})
		}
		d.instance(reg, tenant)
		var page bytes.Buffer
		if err := dashboardPage.Execute(&page, d); err != nil {
			return fmt.Errorf("render dashboard: %w", err)
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src data:")
		w.Write(page.Bytes())
		return nil
	}
}

// instance fills in what only this instance knows, from its registry.
func (d *dashboardData) instance(reg prometheus.Gatherer, tenant string) {
	d.Breaker = "no Lookup for this tenant"
	mfs, err := reg.Gather()
	if err != nil {
		return
	}
	errs := map[string]int64{}
	var greeted, fellBack int64
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			switch mf.GetName() {
			case "stickycalls_http_requests_total":
				if st := labels["status"]; st >= "400" {
					errs[st] += int64(m.GetCounter().GetValue())
				}
			case "stickycalls_lookup_breaker_state":
				if labels["tenant"] == tenant {
					d.Breaker = [...]string{"closed", "half-open: trying Twilio again", "open: Lookup is skipped"}[min(max(int(m.GetGauge().GetValue()), 0), 2)]
				}
			case "stickycalls_voice_greetings_total":
				greeted += int64(m.GetCounter().GetValue())
			case "stickycalls_voice_fallbacks_total":
				n := int64(m.GetCounter().GetValue())
				d.Fallbacks = append(d.Fallbacks, bar{labels["reason"], n})
				if r := labels["reason"]; r != "asked_again" && r != "unanswered" {
					fellBack += n // a call answered with the generic greeting
				}
			}
		}
	}
	for _, st := range slices.Sorted(maps.Keys(errs)) {
		d.Errors = append(d.Errors, bar{st, errs[st]})
	}
	if greeted+fellBack > 0 {
		d.FallbackRate = float64(fellBack) / float64(greeted+fellBack)
	}
}

// barChart draws bars as an inline SVG, each bar carrying its label and
// value as data attributes (the browser test reads them).
func barChart(bars []bar, id string) template.HTML {
	const width, height, pad = 300, 120, 14
	top := int64(1)
	for _, b := range bars {
		top = max(top, b.Value)
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, `<svg id="%s" viewBox="0 0 %d %d" width="100%%" role="img">`, template.HTMLEscapeString(id), width, height+2*pad)
	step := float64(width) / float64(max(len(bars), 1))
	for i, b := range bars {
		h := float64(height) * float64(b.Value) / float64(top)
		x := float64(i)*step + 1
		fmt.Fprintf(&sb, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="#4f7be8" data-label="%s" data-value="%d"><title>%s: %d</title></rect>`,
			x, float64(pad)+float64(height)-h, max(step-2, 1), h, template.HTMLEscapeString(b.Label), b.Value, template.HTMLEscapeString(b.Label), b.Value)
		if len(bars) <= 12 || i%6 == 0 {
			fmt.Fprintf(&sb, `<text x="%.1f" y="%d">%s</text>`, x, height+2*pad-2, template.HTMLEscapeString(b.Label))
		}
		if b.Value > 0 && len(bars) <= 12 {
			fmt.Fprintf(&sb, `<text x="%.1f" y="%.1f">%d</text>`, x, float64(pad)+float64(height)-h-2, b.Value)
		}
	}
	sb.WriteString(`</svg>`)
	return template.HTML(sb.String())
}
