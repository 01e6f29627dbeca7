package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// deployDir holds what operators load into their own Prometheus and
// Grafana: alerting rules and a dashboard.
const deployDir = "../../deploy"

// promtool returns the path of Prometheus's promtool, failing the test
// when it is missing: the alerting rules are only as good as their tests.
func promtool(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatalf("promtool not found (%v): it checks deploy/alerts.yml; install Debian's prometheus package "+
			"(scripts/test-deps.sh does, make test runs it) or put Prometheus's promtool on PATH", err)
	}
	return bin
}

// runPromtool runs promtool with args in deploy/ and fails the test with
// its output when it fails.
func runPromtool(t *testing.T, args ...string) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), promtool(t), args...)
	cmd.Dir = deployDir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// The alerting rules are valid and pass their unit tests.
func TestDeployAlerts(t *testing.T) {
	runPromtool(t, "check", "rules", "alerts.yml")
	runPromtool(t, "test", "rules", "alerts_test.yml")
}

// grafanaDashboard is the part of a Grafana dashboard's JSON model the
// tests read.
type grafanaDashboard struct {
	Inputs        []grafanaInput `json:"__inputs"`
	SchemaVersion int            `json:"schemaVersion"`
	Title         string         `json:"title"`
	UID           string         `json:"uid"`
	Templating    struct {
		List []struct {
			Name       string             `json:"name"`
			Type       string             `json:"type"`
			Definition string             `json:"definition"`
			Datasource *grafanaDatasource `json:"datasource"`
		} `json:"list"`
	} `json:"templating"`
	Panels []grafanaPanel `json:"panels"`
}

// grafanaInput is what Grafana asks for when the dashboard is imported.
type grafanaInput struct {
	Name     string `json:"name"`
	Type     string `json:"type"`
	PluginID string `json:"pluginId"`
}

type grafanaDatasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type grafanaPanel struct {
	ID         int                `json:"id"`
	Type       string             `json:"type"`
	Title      string             `json:"title"`
	Datasource *grafanaDatasource `json:"datasource"`
	Targets    []struct {
		RefID      string             `json:"refId"`
		Expr       string             `json:"expr"`
		Datasource *grafanaDatasource `json:"datasource"`
	} `json:"targets"`
	Panels []grafanaPanel `json:"panels"` // a collapsed row's
}

// readDashboard parses deploy/grafana-dashboard.json and returns it with
// its panels, rows' panels included, rows left out.
func readDashboard(t *testing.T) (grafanaDashboard, []grafanaPanel) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(deployDir, "grafana-dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	var d grafanaDashboard
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatalf("grafana-dashboard.json does not parse: %v", err)
	}
	var panels []grafanaPanel
	var walk func([]grafanaPanel)
	walk = func(ps []grafanaPanel) {
		for _, p := range ps {
			if p.Type == "row" {
				walk(p.Panels)
				continue
			}
			panels = append(panels, p)
		}
	}
	walk(d.Panels)
	return d, panels
}

// promDatasource is the datasource every panel names: the input Grafana
// asks for on import.
const promDatasource = "${DS_PROMETHEUS}"

// The dashboard imports into Grafana with a Prometheus datasource input,
// filters by tenant and mode, has the panels the operators' guide lists,
// and each of its queries is PromQL.
func TestDeployDashboard(t *testing.T) {
	d, panels := readDashboard(t)
	if !slices.Contains(d.Inputs, grafanaInput{Name: "DS_PROMETHEUS", Type: "datasource", PluginID: "prometheus"}) {
		t.Errorf("__inputs = %+v, want a prometheus datasource DS_PROMETHEUS", d.Inputs)
	}
	if d.SchemaVersion < 36 || d.Title == "" || d.UID == "" {
		t.Errorf("schemaVersion %d, title %q, uid %q: want 36 or more and a title and uid", d.SchemaVersion, d.Title, d.UID)
	}
	vars := map[string]string{}
	for _, v := range d.Templating.List {
		if v.Datasource == nil || v.Datasource.UID != promDatasource {
			t.Errorf("variable %s: datasource %+v, want uid %s", v.Name, v.Datasource, promDatasource)
		}
		vars[v.Name] = v.Definition
	}
	for _, tt := range []struct{ name, query string }{
		{"tenant", `^label_values\(stickycalls_calls_started_total, tenant\)$`},
		{"mode", `^label_values\(stickycalls_calls_started_total(\{tenant=~"\$tenant"\})?, mode\)$`},
	} {
		if !regexp.MustCompile(tt.query).MatchString(vars[tt.name]) {
			t.Errorf("variable %s = %q, want it to match %s", tt.name, vars[tt.name], tt.query)
		}
	}

	ids := map[int]bool{}
	titles := map[string]bool{}
	var rules strings.Builder
	rules.WriteString("groups:\n  - name: dashboard\n    rules:\n")
	for _, p := range panels {
		if ids[p.ID] {
			t.Errorf("panel %q: id %d is used twice", p.Title, p.ID)
		}
		ids[p.ID], titles[p.Title] = true, true
		if p.Datasource == nil || p.Datasource.UID != promDatasource || len(p.Targets) == 0 {
			t.Errorf("panel %q: datasource %+v and %d targets, want %s and some", p.Title, p.Datasource, len(p.Targets), promDatasource)
		}
		for _, tg := range p.Targets {
			if tg.Datasource == nil || tg.Datasource.UID != promDatasource || tg.RefID == "" {
				t.Errorf("panel %q target %q: datasource %+v, want %s", p.Title, tg.RefID, tg.Datasource, promDatasource)
			}
			expr, err := json.Marshal(grafanaExpand(tg.Expr)) // a JSON string is a YAML double-quoted scalar
			if err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(&rules, "      - record: dashboard:panel_%d_%s\n        expr: %s\n", p.ID, tg.RefID, expr)
		}
	}
	for _, want := range []string{
		"Calls per hour", "Recognition rate", "Recommendation mix", "Confidence distribution",
		"Billable vs non-billable calls", "Open-intent resolution rate", "Confirm answers", "HTTP errors by status",
		"401, 402 and 429", "Lookup breaker state", "Lookup outcomes", "Voice fallback rate", "Store latency p99",
		"Store errors", "Outbox depth and oldest age", "Open media streams",
	} {
		if !titles[want] {
			t.Errorf("the dashboard has no panel %q", want)
		}
	}

	// promtool parses each query as the expression of a recording rule.
	file := filepath.Join(t.TempDir(), "dashboard-rules.yml")
	if err := os.WriteFile(file, []byte(rules.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	file, err := filepath.Abs(file)
	if err != nil {
		t.Fatal(err)
	}
	runPromtool(t, "check", "rules", file)
}

// grafanaExpand replaces the dashboard's variables in a query with what
// Grafana would put there: every tenant and mode, a 5 minute rate window.
func grafanaExpand(expr string) string {
	return strings.NewReplacer("$__rate_interval", "5m", "${tenant}", ".*", "$tenant", ".*", "${mode}", ".*", "$mode", ".*").Replace(expr)
}

// metricName matches the service's metric names, and the series names
// derived from them (a histogram's _bucket, _sum and _count).
var metricName = regexp.MustCompile(`stickycalls_[a-z_]+`)

// metricTypes returns the type of each metric family in a Prometheus text
// exposition, by name, from its "# TYPE" lines.
func metricTypes(scrape string) map[string]string {
	types := map[string]string{}
	for line := range strings.Lines(scrape) {
		if f := strings.Fields(line); len(f) == 4 && f[0] == "#" && f[1] == "TYPE" {
			types[f[2]] = f[3]
		}
	}
	return types
}

// queryable reports whether PromQL can select series named name from an
// exposition whose families have types: a family of any type but
// histogram or summary by its own name, a histogram by its _bucket, _sum
// and _count series, a summary by its _sum and _count (its own name holds
// the quantiles).
func queryable(name string, types map[string]string) bool {
	if typ, ok := types[name]; ok && typ != "histogram" {
		return true
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(name, suffix); ok {
			switch types[base] {
			case "histogram":
				return true
			case "summary":
				return suffix != "_bucket"
			}
		}
	}
	return false
}

// unexposed returns the metric names text mentions that an exposition
// with these types does not serve, each once, in order.
func unexposed(text string, types map[string]string) []string {
	var missing []string
	for _, name := range metricName.FindAllString(text, -1) {
		if !queryable(name, types) && !slices.Contains(missing, name) {
			missing = append(missing, name)
		}
	}
	return missing
}

// The checker itself: a wrong name, a suffix on what is not a histogram,
// a histogram's bare name are all caught.
func TestDeployNameCheck(t *testing.T) {
	const scrape = `# HELP stickycalls_calls_started_total Starts.
# TYPE stickycalls_calls_started_total counter
stickycalls_calls_started_total{mode="test",recommendation="reuse",tenant="default"} 1
# HELP stickycalls_identity_confidence Confidence.
# TYPE stickycalls_identity_confidence histogram
stickycalls_identity_confidence_bucket{le="0.5"} 1
stickycalls_identity_confidence_sum 0.4
stickycalls_identity_confidence_count 1
# TYPE stickycalls_latency_seconds summary
stickycalls_latency_seconds{quantile="0.99"} 0.1
stickycalls_latency_seconds_sum 0.1
stickycalls_latency_seconds_count 1
# TYPE stickycalls_voice_streams_open gauge
stickycalls_voice_streams_open 0
`
	types := metricTypes(scrape)
	for _, tt := range []struct {
		name, text string
		want       []string
	}{
		{"counter", `sum(rate(stickycalls_calls_started_total{recommendation="reuse"}[1h]))`, nil},
		{"gauge", `sum by (instance) (stickycalls_voice_streams_open)`, nil},
		{"histogram series", `sum(rate(stickycalls_identity_confidence_sum[1h])) / sum(rate(stickycalls_identity_confidence_count[1h])) + sum(stickycalls_identity_confidence_bucket)`, nil},
		{"summary", `stickycalls_latency_seconds{quantile="0.99"} + stickycalls_latency_seconds_sum / stickycalls_latency_seconds_count`, nil},
		{"wrong name", `sum(rate(stickycalls_calls_startd_total[5m])) / sum(rate(stickycalls_calls_started_total[5m]))`, []string{"stickycalls_calls_startd_total"}},
		{"unknown, twice", `stickycalls_nope_total + stickycalls_nope_total`, []string{"stickycalls_nope_total"}},
		{"suffix on a counter", `stickycalls_calls_started_total_count`, []string{"stickycalls_calls_started_total_count"}},
		{"histogram's bare name", `avg(stickycalls_identity_confidence)`, []string{"stickycalls_identity_confidence"}},
		{"summary has no buckets", `stickycalls_latency_seconds_bucket`, []string{"stickycalls_latency_seconds_bucket"}},
		{"histogram with a wrong suffix", `stickycalls_identity_confidence_total`, []string{"stickycalls_identity_confidence_total"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := unexposed(tt.text, types); !slices.Equal(got, tt.want) {
				t.Errorf("unexposed(%s) = %q, want %q", tt.text, got, tt.want)
			}
		})
	}
}

// Every metric the dashboard's queries and the alerting rules name is one
// the service serves on /metrics after traffic.
func TestDeployNamesExposed(t *testing.T) {
	types := metricTypes(scrapeAfterTraffic(t, true))
	if got := unexposed("stickycalls_calls_startd_total", types); len(got) != 1 {
		t.Fatalf("a misspelt name passes the check against /metrics: unexposed = %q", got)
	}

	_, panels := readDashboard(t)
	for _, p := range panels {
		for _, tg := range p.Targets {
			if !metricName.MatchString(tg.Expr) {
				t.Errorf("panel %q target %s names no stickycalls metric: %s", p.Title, tg.RefID, tg.Expr)
			}
			if missing := unexposed(tg.Expr, types); len(missing) > 0 {
				t.Errorf("panel %q target %s: /metrics has no %s", p.Title, tg.RefID, strings.Join(missing, ", "))
			}
		}
	}

	alerts, err := os.ReadFile(filepath.Join(deployDir, "alerts.yml"))
	if err != nil {
		t.Fatal(err)
	}
	if n := len(metricName.FindAll(alerts, -1)); n < 10 {
		t.Errorf("alerts.yml names %d stickycalls metrics, want its every alert to name some", n)
	}
	if missing := unexposed(string(alerts), types); len(missing) > 0 {
		t.Errorf("alerts.yml: /metrics has no %s", strings.Join(missing, ", "))
	}
}
