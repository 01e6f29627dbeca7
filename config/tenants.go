package config

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
)

// tenants checks the file's tenants and resolves their secrets. The result
// always holds DefaultTenant, from the environment when the file omits it.
func (l *loader) tenants(in map[string]tenantFile) map[string]Tenant {
	out := make(map[string]Tenant, len(in)+1)
	out[DefaultTenant] = l.tenant(DefaultTenant, in[DefaultTenant])
	for name, tf := range in {
		if name == DefaultTenant {
			continue
		}
		if !isTenantName(name) {
			l.add(fmt.Sprintf("tenants[%q]", name), "a tenant name is 1 to 64 characters of a-z, 0-9, _ and -")
		}
		out[name] = l.tenant(name, tf)
	}
	l.checkAccounts(out)
	return out
}

// tenant checks and resolves one tenant of the file.
func (l *loader) tenant(name string, tf tenantFile) Tenant {
	where := fmt.Sprintf("tenants[%q]", name)
	t := Tenant{
		Plans:   l.plans(where+".plans", tf.Plans),
		Twilio:  l.twilio(where+".twilio", name == DefaultTenant, tf.Twilio),
		Scoring: l.scoring(where+".scoring", tf.Scoring),
	}
	if env := tf.Vapi.SecretEnv; env != "" {
		t.VapiSecret = l.secret(where+".vapi.secret_env", env, func(string) string { return "" }, "")
	}
	if env := tf.Retell.APIKeyEnv; env != "" {
		t.RetellAPIKey = l.secret(where+".retell.api_key_env", env, func(string) string { return "" }, "")
	}
	return t
}

// isTenantName reports whether s is 1 to 64 characters of a-z, 0-9, _ and -.
func isTenantName(s string) bool {
	if len(s) < 1 || len(s) > 64 {
		return false
	}
	for _, r := range s {
		if !('a' <= r && r <= 'z' || '0' <= r && r <= '9' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}

// plans checks a tenant's plans, keyed by mode.
func (l *loader) plans(where string, in map[string]planFile) map[string]Plan {
	out := make(map[string]Plan, len(in))
	for mode, p := range in {
		w := fmt.Sprintf("%s[%q]", where, mode)
		if mode != "test" && mode != "prod" {
			l.add(w, "a mode is test or prod")
		}
		if p.RateLimitPerMinute < 0 {
			l.add(w+".rate_limit_per_minute", "must be 0 (unlimited) or more, got %d", p.RateLimitPerMinute)
		}
		if p.MonthlyQuota < 0 {
			l.add(w+".monthly_quota", "must be 0 (unlimited) or more, got %d", p.MonthlyQuota)
		}
		out[mode] = Plan(p)
	}
	return out
}

// twilio resolves a tenant's Twilio credentials. For the default tenant, each
// one the file does not name comes from the TWILIO_* environment variables.
func (l *loader) twilio(where string, isDefault bool, tf twilioFile) Twilio {
	fallback := func(name string) string { return "" }
	sidWhere := where + ".account_sid"
	if isDefault {
		fallback = l.getenv
		if tf.AccountSID == "" {
			sidWhere = "TWILIO_ACCOUNT_SID"
		}
	}
	t := Twilio{
		AccountSID:        orEnv(tf.AccountSID, fallback, "TWILIO_ACCOUNT_SID"),
		AuthToken:         l.secret(where+".auth_token_env", tf.AuthTokenEnv, fallback, "TWILIO_AUTH_TOKEN"),
		PreviousAuthToken: l.secret(where+".previous_auth_token_env", tf.PreviousAuthTokenEnv, fallback, "TWILIO_AUTH_TOKEN_PREVIOUS"),
		APIKey:            l.secret(where+".api_key_env", tf.APIKeyEnv, fallback, "TWILIO_API_KEY"),
		APISecret:         l.secret(where+".api_secret_env", tf.APISecretEnv, fallback, "TWILIO_API_SECRET"),
	}
	if t.AccountSID != "" && !strings.HasPrefix(t.AccountSID, "AC") {
		l.add(sidWhere, "an account SID starts with AC")
	}
	if (t.APIKey == "") != (t.APISecret == "") {
		l.add(where, "an API key and an API secret go together")
	}
	if t.PreviousAuthToken != "" && t.AuthToken == "" {
		l.add(where, "a previous auth token needs a current one")
	}
	return t
}

// orEnv returns s, else the fallback for name.
func orEnv(s string, fallback func(string) string, name string) string {
	if s != "" {
		return s
	}
	return fallback(name)
}

// secret returns the value of the environment variable that the file names
// at where, else the fallback for envName. A variable that is named but empty
// is a problem. Messages never echo the name: it could be a pasted secret.
func (l *loader) secret(where, name string, fallback func(string) string, envName string) string {
	switch {
	case name == "":
		return fallback(envName)
	case !isEnvName(name):
		l.add(where, "must name an environment variable, such as ACME_TWILIO_AUTH_TOKEN; the file never holds secrets")
		return ""
	}
	v := l.getenv(name)
	if v == "" {
		l.add(where, "the environment variable it names is empty or unset")
	}
	return v
}

// isEnvName reports whether s is a portable environment variable name.
func isEnvName(s string) bool {
	for i, r := range s {
		if !('A' <= r && r <= 'Z' || 'a' <= r && r <= 'z' || r == '_' || i > 0 && '0' <= r && r <= '9') {
			return false
		}
	}
	return s != ""
}

// checkAccounts makes sure each webhook's AccountSid selects one tenant: no
// two tenants share an account SID, and at most one tenant with an auth token
// has none (that tenant owns every account no other tenant claims).
func (l *loader) checkAccounts(ts map[string]Tenant) {
	owner := make(map[string]string)
	for _, name := range slices.Sorted(maps.Keys(ts)) {
		t := ts[name].Twilio
		if t.AccountSID == "" && t.AuthToken == "" {
			continue
		}
		first, taken := owner[t.AccountSID]
		switch {
		case taken && t.AccountSID != "":
			l.add(fmt.Sprintf("tenants[%q].twilio.account_sid", name), "tenant %q has the same account; an account belongs to one tenant", first)
		case taken:
			l.add(fmt.Sprintf("tenants[%q].twilio", name), "tenant %q also has an auth token and no account_sid; only one tenant may own every account", first)
		default:
			owner[t.AccountSID] = name
		}
	}
}

// scoring checks a tenant's scoring overrides.
func (l *loader) scoring(where string, in scoringFile) Scoring {
	s := Scoring{Weights: make(map[string]float64), Thresholds: make(map[string]float64)}
	for name, v := range in.Weights {
		l.weight(fmt.Sprintf("%s.weights[%q]", where, name), name, v)
		s.Weights[name] = v
	}
	for name, v := range in.Thresholds {
		w := fmt.Sprintf("%s.thresholds[%q]", where, name)
		switch {
		case !slices.Contains(thresholdNames, name):
			l.add(w, "unknown threshold; known: %s", strings.Join(thresholdNames, ", "))
		case !(v >= 0 && v <= 1):
			l.add(w, "must be from 0 to 1, got %v", v)
		}
		s.Thresholds[name] = v
	}
	l.order(where+".thresholds", s.Thresholds)
	return s
}

// The names of the scoring overrides (docs/SCORING.md).
var (
	thresholdNames = []string{"reuse", "confirm", "very_high", "high", "medium", "household_reuse",
		"unusual_reuse", "unattested_reuse", "dormant_reuse", "disputed_reuse", "usual_attestation"}
	weightNames = []string{"ani_mobile", "ani_landline", "ani_unknown", "ani_voip", "ani_shared_factor",
		"stir_failed", "stir_a", "external_id", "customer_ref", "recency", "ani_disputed", "ani_confirmed"}
)

// weight checks one scoring weight.
func (l *loader) weight(where, name string, v float64) {
	switch {
	case name == "recency_days":
		if !(v >= 1 && v <= 90) || v != math.Trunc(v) {
			l.add(where, "must be a whole number of days from 1 to 90, got %v", v)
		}
	case name == "dormant_days":
		if !(v >= 0 && v <= 90) || v != math.Trunc(v) {
			l.add(where, "must be a whole number of days from 0 (no limit) to 90, got %v", v)
		}
	case !slices.Contains(weightNames, name):
		l.add(where, "unknown weight; known: %s, recency_days, dormant_days", strings.Join(weightNames, ", "))
	case !(v >= 0 && v <= 1):
		l.add(where, "must be from 0 to 1, got %v", v)
	}
}

// order checks that thresholds given together are in order: confirm <= reuse
// and medium <= high <= very_high.
func (l *loader) order(where string, th map[string]float64) {
	for _, p := range [][2]string{{"confirm", "reuse"}, {"medium", "high"}, {"high", "very_high"}, {"medium", "very_high"}} {
		lo, okLo := th[p[0]]
		hi, okHi := th[p[1]]
		_, hasHigh := th["high"]
		if p == [2]string{"medium", "very_high"} && hasHigh {
			continue // the two checks through high already cover it
		}
		if okLo && okHi && lo > hi {
			l.add(where, "%s (%v) must not be above %s (%v)", p[0], lo, p[1], hi)
		}
	}
}
