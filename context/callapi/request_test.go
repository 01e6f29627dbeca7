package callapi

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/stickycalls/stickycalls/context/identity"
)

// issuePaths returns the dotted paths of a validation error's issues,
// sorted, or nil when err is nil. It fails the test on any other error.
func issuePaths(t *testing.T, input string, err error) []string {
	t.Helper()
	if err == nil {
		return nil
	}
	var v *ValidationError
	if !errors.As(err, &v) {
		t.Fatalf("parse(%s) error %T %v, want a *ValidationError", input, err, err)
	}
	paths := make([]string, len(v.Issues))
	for i, is := range v.Issues {
		paths[i] = strings.Join(is.Path, ".")
	}
	slices.Sort(paths)
	return paths
}

func TestNormalizeANI(t *testing.T) {
	type want struct {
		e164     string
		withheld bool
		ok       bool
	}
	withheld := want{"", true, true}
	invalid := want{"", false, false}
	tests := map[string]want{
		"":                    withheld,
		"   ":                 withheld,
		"anonymous":           withheld,
		"Anonymous":           withheld,
		" ANONYMOUS ":         withheld,
		"restricted":          withheld,
		"RESTRICTED":          withheld,
		"private":             withheld,
		"Private":             withheld,
		"unknown":             withheld,
		"UNKNOWN":             withheld,
		"unavailable":         withheld,
		"Unavailable":         withheld,
		"blocked":             withheld,
		"Blocked":             withheld,
		"bLoCkEd":             withheld,
		"+266696687":          withheld,
		"+7378742833":         withheld,
		"+86282452253":        withheld,
		"+2562533":            withheld,
		"+8656696":            withheld,
		"+7 378 742 833":      withheld,
		"+14155551234":        {"+14155551234", false, true},
		"+1 (415) 555-1234":   {"+14155551234", false, true},
		"+1.415.555.1234":     {"+14155551234", false, true},
		"+1-415-555-1234":     {"+14155551234", false, true},
		"+44 20 7946 0958":    {"+442079460958", false, true},
		"+12345678":           {"+12345678", false, true},        // 8 digits, the least
		"+123456789012345":    {"+123456789012345", false, true}, // 15 digits, the most
		"+1234567":            invalid,                           // 7 digits
		"+1234567890123456":   invalid,                           // 16 digits
		"14155551234":         invalid,                           // no +
		"+04155551234":        invalid,                           // no country code starts with 0
		"++14155551234":       invalid,
		"+1415555ABCD":        invalid,
		"+1 415 555 1234 x12": invalid,
		"withheld":            invalid, // not one of the markers
		"+1/415/555/1234":     invalid, // only spaces, dashes, dots and parentheses go
		"tel:+14155551234":    invalid,
		"+1 (415) 555-1234 ":  {"+14155551234", false, true},
		"(+1) 415 555 1234":   {"+14155551234", false, true},
		"+86 282 452 253":     withheld,
		"+1 800 555 0100":     {"+18005550100", false, true},
		"+4420794609581234":   invalid,                           // 16 digits
		"+1 415 555 12345678": {"+141555512345678", false, true}, // 15 digits
		"+999999999999999":    {"+999999999999999", false, true},
		"+266 696 687":        withheld,
		"+2562533 ":           withheld,
		"+8656696\t":          withheld,
		"+1\u00a0415":         invalid, // nor a non-breaking space
		"unknown ":            withheld,
		" blocked":            withheld,
		"Restricted ":         withheld,
		"PRIVATE":             withheld,
		"unavailable ":        withheld,
		"+7378742833 ":        withheld,
		"+862-824-522-53":     withheld,
	}
	for in, w := range tests {
		e164, wh, ok := NormalizeANI(in)
		if got := (want{e164, wh, ok}); got != w {
			t.Errorf("NormalizeANI(%q) = %+v, want %+v", in, got, w)
		}
	}
}

func TestParseStartShapes(t *testing.T) {
	nested := `{"call_id":"c1","identity_hints":{"ani":"+14155551234","external_ids":{"crm":"1"}}}`
	base, err := ParseStart([]byte(nested))
	if err != nil {
		t.Fatalf("ParseStart(%s) error %v", nested, err)
	}
	wantReq := StartRequest{
		CallID: "c1", Hints: Hints{ANI: "+14155551234", ExternalIDs: map[string]string{"crm": "1"}},
		Attestation: identity.AttestNone, Channel: "phone",
	}
	if diff := cmp.Diff(wantReq, base); diff != "" {
		t.Errorf("ParseStart(%s): diff (-want +got):\n%s", nested, diff)
	}
	same := []string{
		`{"call_id":"c1","ani":"+14155551234","external_ids":{"crm":"1"}}`,
		`{ "external_ids": {"crm": "1"}, "ani": "+1 (415) 555-1234", "call_id": "c1" }`,
		`{"call_id":"c1","ani":"+14155551234","external_ids":{"crm":"1"},"identity_hints":{"external_ids":{"crm":"1"},"ani":"+1.415.555.1234"}}`,
		`{"call_id":"c1","identity_hints":{"ani":"+14155551234","external_ids":{"crm":"1"}},"telco":{"attestation":"none"},"channel":"phone"}`,
		`{"call_id":"c1","identity_hints":{"ani":"+14155551234","external_ids":{"crm":"1"}},"ani":null,"telco":null}`,
	}
	for _, body := range same {
		req, err := ParseStart([]byte(body))
		if err != nil {
			t.Errorf("ParseStart(%s) error %v, want nil", body, err)
			continue
		}
		if got, want := Fingerprint(req), Fingerprint(base); got != want {
			t.Errorf("Fingerprint(ParseStart(%s)) = %s, want %s (the nested shape's)", body, got, want)
		}
	}
	different := []string{
		`{"call_id":"c2","identity_hints":{"ani":"+14155551234","external_ids":{"crm":"1"}}}`,
		`{"call_id":"c1","identity_hints":{"ani":"+14155551234","external_ids":{"crm":"2"}}}`,
		`{"call_id":"c1","identity_hints":{"ani":"+14155551234","external_ids":{"crm":"1"}},"telco":{"line_type":"mobile"}}`,
		`{"call_id":"c1","identity_hints":{"ani":"+14155551234","external_ids":{"crm":"1"}},"channel":"sms"}`,
	}
	for _, body := range different {
		req, err := ParseStart([]byte(body))
		if err != nil {
			t.Errorf("ParseStart(%s) error %v, want nil", body, err)
			continue
		}
		if Fingerprint(req) == Fingerprint(base) {
			t.Errorf("Fingerprint(ParseStart(%s)) = the fingerprint of %s, want a different one", body, nested)
		}
	}
}

func TestParseStartIssues(t *testing.T) {
	tests := []struct {
		name string
		body string
		want []string // issue paths, sorted; nil = valid
	}{
		{"nested", `{"call_id":"c1","identity_hints":{"ani":"+14155551234"}}`, nil},
		{"flat", `{"call_id":"c1","ani":"+14155551234"}`, nil},
		{"customer_ref only", `{"call_id":"c1","identity_hints":{"customer_ref":"cust_1:a.b-c"}}`, nil},
		{"external ids only", `{"call_id":"c1","external_ids":{"crm.id-1_x":"v"}}`, nil},
		{"withheld ANI only", `{"call_id":"c1","identity_hints":{"ani":"anonymous"}}`, nil},
		{"every telco value", `{"call_id":"c1","ani":"+14155551234","telco":{"line_type":"voip","attestation":"A"},"channel":"chat"}`, nil},
		{"shapes disagree on the ANI", `{"call_id":"c1","ani":"+14155551234","identity_hints":{"ani":"+14155559999"}}`,
			[]string{"identity_hints"}},
		{"shapes disagree on external ids", `{"call_id":"c1","ani":"+14155551234","identity_hints":{"ani":"+14155551234","external_ids":{"crm":"1"}}}`,
			[]string{"identity_hints"}},
		{"no hints", `{"call_id":"c1"}`, []string{"identity_hints"}},
		{"empty hints", `{"call_id":"c1","identity_hints":{}}`, []string{"identity_hints"}},
		{"only a dnis", `{"call_id":"c1","identity_hints":{"dnis":"+18005550100"}}`, []string{"identity_hints"}},
		{"nothing", `{}`, []string{"call_id", "identity_hints"}},
		{"null call_id", `{"call_id":null,"ani":"+14155551234"}`, []string{"call_id"}},
		{"numeric call_id", `{"call_id":12,"ani":"+14155551234"}`, []string{"call_id"}},
		{"call_id with a space", `{"call_id":"c 1","ani":"+14155551234"}`, []string{"call_id"}},
		{"call_id too long", `{"call_id":"` + strings.Repeat("c", 129) + `","ani":"+14155551234"}`, []string{"call_id"}},
		{"call_id of 128", `{"call_id":"` + strings.Repeat("c", 128) + `","ani":"+14155551234"}`, nil},
		{"not E.164", `{"call_id":"c1","ani":"4155551234"}`, []string{"ani"}},
		{"withheld dnis", `{"call_id":"c1","identity_hints":{"ani":"+14155551234","dnis":"anonymous"}}`,
			[]string{"identity_hints.dnis"}},
		{"21 external ids", `{"call_id":"c1","external_ids":{` + manyIDs(21) + `}}`, []string{"external_ids"}},
		{"20 external ids", `{"call_id":"c1","external_ids":{` + manyIDs(20) + `}}`, nil},
		{"empty external id value", `{"call_id":"c1","external_ids":{"crm":""}}`, []string{"external_ids.crm"}},
		{"external id value of 257", `{"call_id":"c1","external_ids":{"crm":"` + strings.Repeat("v", 257) + `"}}`, []string{"external_ids.crm"}},
		{"external id key of 65", `{"call_id":"c1","external_ids":{"` + strings.Repeat("k", 65) + `":"v"}}`, []string{"external_ids." + strings.Repeat("k", 65)}},
		{"external ids not strings", `{"call_id":"c1","external_ids":{"crm":1}}`, []string{"external_ids.crm"}},
		{"unknown line type", `{"call_id":"c1","ani":"+14155551234","telco":{"line_type":"fax"}}`, []string{"telco.line_type"}},
		{"lower-case attestation", `{"call_id":"c1","ani":"+14155551234","telco":{"attestation":"a"}}`, []string{"telco.attestation"}},
		{"telco not an object", `{"call_id":"c1","ani":"+14155551234","telco":"mobile"}`, []string{"telco"}},
		{"unknown channel", `{"call_id":"c1","ani":"+14155551234","channel":"fax"}`, []string{"channel"}},
		{"not an object", `[]`, []string{"body"}},
		{"null body", `null`, []string{"body"}},
		{"malformed JSON", `{"call_id":`, []string{"body"}},
		{"every problem at once",
			`{"call_id":"has space","identity_hints":{"ani":"12345","dnis":"x","external_ids":{"bad key!":"v"},"customer_ref":"bad ref!"},"telco":{"line_type":"fax","attestation":"Z"},"channel":"pigeon"}`,
			[]string{"call_id", "channel", "identity_hints.ani", "identity_hints.customer_ref", "identity_hints.dnis",
				"identity_hints.external_ids.bad key!", "telco.attestation", "telco.line_type"}},
	}
	for _, tc := range tests {
		_, err := ParseStart([]byte(tc.body))
		if diff := cmp.Diff(tc.want, issuePaths(t, tc.body, err)); diff != "" {
			t.Errorf("ParseStart(%s: %s) issue paths: diff (-want +got):\n%s", tc.name, tc.body, diff)
		}
	}
}

func manyIDs(n int) string {
	var parts []string
	for i := range n {
		parts = append(parts, fmt.Sprintf(`"k%d":"v"`, i))
	}
	return strings.Join(parts, ",")
}

func TestParseStartWithheld(t *testing.T) {
	markers := []string{"", "anonymous", "restricted", "private", "unknown", "unavailable", "blocked",
		"Anonymous", "RESTRICTED", "Private", "UnKnown", "UNAVAILABLE", "Blocked", "BLOCKED",
		"+266696687", "+7378742833", "+86282452253", "+2562533", "+8656696"}
	for _, m := range markers {
		for _, body := range []string{
			fmt.Sprintf(`{"call_id":"c1","identity_hints":{"ani":%q}}`, m),
			fmt.Sprintf(`{"call_id":"c1","ani":%q}`, m),
		} {
			req, err := ParseStart([]byte(body))
			if err != nil {
				t.Errorf("ParseStart(%s) error %v, want a valid withheld caller", body, err)
				continue
			}
			if req.Hints.ANI != "" || !req.Hints.Withheld {
				t.Errorf("ParseStart(%s).Hints = ANI %q, withheld %v; want \"\", true", body, req.Hints.ANI, req.Hints.Withheld)
			}
		}
	}
}

func TestParseEndIntent(t *testing.T) {
	type want struct {
		intent, status string
		issues         []string
	}
	tests := map[string]want{
		`{"call_id":"c1","intent":"refund","intent_is_open":true}`:                              {"refund", "open", nil},
		`{"call_id":"c1","intent":"refund","intent_is_open":false}`:                             {"refund", "resolved", nil},
		`{"call_id":"c1","intent":"refund","intent_status":"open"}`:                             {"refund", "open", nil},
		`{"call_id":"c1","intent":"refund","intent_status":"resolved"}`:                         {"refund", "resolved", nil},
		`{"call_id":"c1","intent":"refund","intent_status":"abandoned"}`:                        {"refund", "abandoned", nil},
		`{"call_id":"c1","intent":"refund"}`:                                                    {"refund", "open", nil},
		`{"call_id":"c1","intent":"refund","intent_status":"open","intent_is_open":true}`:       {"refund", "open", nil},
		`{"call_id":"c1","intent":"refund","intent_status":"resolved","intent_is_open":false}`:  {"refund", "resolved", nil},
		`{"call_id":"c1","intent":"refund","intent_status":"open","intent_is_open":false}`:      {"refund", "", []string{"intent_is_open"}},
		`{"call_id":"c1","intent":"refund","intent_status":"resolved","intent_is_open":true}`:   {"refund", "", []string{"intent_is_open"}},
		`{"call_id":"c1","intent":"refund","intent_status":"abandoned","intent_is_open":false}`: {"refund", "", []string{"intent_is_open"}},
		`{"call_id":"c1","intent":"refund","intent_is_open":"yes"}`:                             {"refund", "", []string{"intent_is_open"}},
		`{"call_id":"c1","intent":"refund","intent_status":"closed"}`:                           {"refund", "", []string{"intent_status"}},
		`{"call_id":"c1","intent_status":"open"}`:                                               {"", "", []string{"intent"}},
		`{"call_id":"c1","intent_is_open":true}`:                                                {"", "", []string{"intent"}},
		`{"call_id":"c1","intent":"Refund Request"}`:                                            {"", "", []string{"intent"}},
		`{"call_id":"c1","intent":"refund_request.v2-b"}`:                                       {"refund_request.v2-b", "open", nil},
		`{"call_id":"c1","intent":""}`:                                                          {"", "", []string{"intent"}},
		`{"call_id":"c1"}`:                                                                      {"", "", nil},
	}
	for body, w := range tests {
		req, err := ParseEnd([]byte(body))
		if diff := cmp.Diff(w.issues, issuePaths(t, body, err)); diff != "" {
			t.Errorf("ParseEnd(%s) issue paths: diff (-want +got):\n%s", body, diff)
			continue
		}
		if err == nil && (req.Intent != w.intent || req.Status != w.status) {
			t.Errorf("ParseEnd(%s) = intent %q status %q, want %q %q", body, req.Intent, req.Status, w.intent, w.status)
		}
	}
	// The guide's and the docs' forms of one end are the same request.
	a, errA := ParseEnd([]byte(`{"call_id":"c1","intent":"refund","intent_is_open":false}`))
	b, errB := ParseEnd([]byte(`{"intent_status":"resolved","intent":"refund","call_id":"c1"}`))
	if errA != nil || errB != nil || Fingerprint(a) != Fingerprint(b) {
		t.Errorf("Fingerprint of intent_is_open false vs intent_status resolved: %s vs %s (%v, %v), want equal", Fingerprint(a), Fingerprint(b), errA, errB)
	}
}

// TestParseEndSensitive checks what an end refuses to store.
func TestParseEndSensitive(t *testing.T) {
	values := map[string]bool{ // value of variable "note" → refused
		"123-45-6789":                        true,
		"my ssn is 123-45-6789.":             true,
		"ssn:123-45-6789":                    true,
		"4111 1111 1111 1111":                true,
		"4111-1111-1111-1111":                true,
		"4111111111111111":                   true,
		"card 4111 1111 1111 1111 exp":       true,
		"order 1234 4111 1111 1111 1111":     true,
		"5500 0000 0000 0004":                true, // Mastercard
		"2223003122003222":                   true, // Mastercard 2-series
		"378282246310005":                    true, // Amex
		"6011111111111117":                   true, // Discover
		"3530111333300000":                   true, // JCB
		"30569309025904":                     true, // Diners, 14 digits
		"4111.1111.1111.1111":                true, // dots
		"4111/1111/1111/1111":                true, // slashes
		"4111\t1111\t1111\t1111":             true, // tabs
		"4111\u00a01111\u00a01111\u00a01111": true, // non-breaking spaces
		"４１１１１１１１１１１１１１１１":                   true, // full-width digits
		"٤١١١١١١١١١١١١١١١":                   true, // Arabic-Indic digits
		"123 45 6789":                        true, // an SSN with spaces
		"123.45.6789":                        true,
		"order 1234567890123456":             false, // no card network starts with 1
		"order 4111111111111112":             false, // fails Luhn
		"1234567890123456":                   false,
		"9111111111111111":                   false,
		"411111111111":                       false, // 12 digits
		"1234-56-7890":                       false, // not ddd-dd-dddd
		"12-345-6789":                        false,
		"1123-45-67890":                      false, // digits run on both sides
		"call me at 415-555-1234":            false,
		"+14155551234":                       false,
		"2026-02-07":                         false,
		"John Doe":                           false,
		"":                                   false,
	}
	for val, refused := range values {
		body := fmt.Sprintf(`{"call_id":"c1","customer_ref":"cust_1","variables":{"note":%q}}`, val)
		checkRefused(t, body, "note", refused)
		// The same rules hold for external ids.
		body = fmt.Sprintf(`{"call_id":"c1","customer_ref":"cust_1","external_ids":{"note":%q}}`, val)
		if val != "" {
			checkRefusedAt(t, body, "external_ids.note", refused)
		}
	}
	// Under a name that says SSN, nine digits are one, however written.
	for val, refused := range map[string]bool{"123456789": true, "123 45 6789": true, "12345678": false, "1234567890": false} {
		checkRefused(t, fmt.Sprintf(`{"call_id":"c1","variables":{"tax_id":%q}}`, val), "tax_id", refused)
		checkRefused(t, fmt.Sprintf(`{"call_id":"c1","variables":{"plan":%q}}`, val), "plan", val == "123 45 6789") // 3-2-4 is one under any name
	}
	// An intent that is a card number is refused like a variable.
	checkRefusedAt(t, `{"call_id":"c1","intent":"4111111111111111"}`, "intent", true)
	keys := map[string]bool{ // variable name → refused
		"password":           true,
		"userPassword":       true,
		"user_password":      true,
		"user.password":      true,
		"PASSWORD":           true,
		"passwd":             true,
		"api_secret":         true,
		"apiSecret":          true,
		"SSN":                true,
		"social_security":    true,
		"socialSecurityNo":   true,
		"ssn_last4":          true,
		"customerSSN":        true,
		"cvv":                true,
		"cvc":                true,
		"card_number":        true,
		"cardNumber":         true,
		"CardNumber":         true,
		"card-holder-number": true, // card, then number
		"pin":                true,
		"pin_code":           true,
		"PIN":                true,
		"pinCode":            true,
		"shipping":           false,
		"account_number":     false,
		"spinner":            false,
		"opinion":            false,
		"pinnacle":           false,
		"secretary":          false,
		"cardholder":         false,
		"number_card":        false,
		"discard_number":     false,
		"name":               false,
		"order_id":           false,
	}
	for key, refused := range keys {
		body := fmt.Sprintf(`{"call_id":"c1","customer_ref":"cust_1","variables":{%q:"blue"}}`, key)
		checkRefused(t, body, key, refused)
	}
	// Numbers and wrapped values are checked like strings.
	for _, body := range []string{
		`{"call_id":"c1","variables":{"note":4111111111111111}}`,
		`{"call_id":"c1","variables":{"note":{"value":"4111 1111 1111 1111"}}}`,
		`{"call_id":"c1","variables":{"note":{"value":"123-45-6789"}}}`,
	} {
		checkRefused(t, body, "note", true)
	}
}

func checkRefused(t *testing.T, body, key string, refused bool) {
	t.Helper()
	checkRefusedAt(t, body, "variables."+key, refused)
}

// checkRefusedAt checks that an end body is refused at exactly path, or
// accepted.
func checkRefusedAt(t *testing.T, body, path string, refused bool) {
	t.Helper()
	_, err := ParseEnd([]byte(body))
	var want []string
	if refused {
		want = []string{path}
	}
	if diff := cmp.Diff(want, issuePaths(t, body, err)); diff != "" {
		t.Errorf("ParseEnd(%s) refused = %v, want %v; issue paths diff (-want +got):\n%s", body, err != nil, refused, diff)
		return
	}
	if refused && !strings.Contains(err.Error(), "refused") {
		t.Errorf("ParseEnd(%s) error %q, want it to say the value was refused", body, err)
	}
}

func TestParseEndVariables(t *testing.T) {
	str := func(s string) *string { return &s }
	tests := []struct {
		in     string // the JSON value of variable "v"
		want   *string
		issues []string
	}{
		{`"text"`, str("text"), nil},
		{`10`, str("10"), nil},
		{`-1.5e3`, str("-1.5e3"), nil},
		{`true`, str("true"), nil},
		{`false`, str("false"), nil},
		{`null`, nil, nil},
		{`{"value":"gold"}`, str("gold"), nil},
		{`{"value":5}`, str("5"), nil},
		{`{"value":null}`, nil, nil},
		{`[1]`, nil, []string{"variables.v"}},
		{`{"value":{"a":1}}`, nil, []string{"variables.v"}},
		{`{"a":1}`, nil, []string{"variables.v"}},
		{`{"value":"x","source":"y"}`, nil, []string{"variables.v"}},
		{`"` + strings.Repeat("x", 1024) + `"`, str(strings.Repeat("x", 1024)), nil},
		{`"` + strings.Repeat("x", 1025) + `"`, nil, []string{"variables.v"}},
	}
	for _, tc := range tests {
		body := `{"call_id":"c1","variables":{"v":` + tc.in + `}}`
		req, err := ParseEnd([]byte(body))
		if diff := cmp.Diff(tc.issues, issuePaths(t, body, err)); diff != "" {
			t.Errorf("ParseEnd(variable %.40s) issue paths: diff (-want +got):\n%s", tc.in, diff)
			continue
		}
		if err != nil {
			continue
		}
		got, ok := req.Variables["v"]
		if !ok {
			t.Errorf("ParseEnd(variable %.40s).Variables = %v, want v present", tc.in, req.Variables)
			continue
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("ParseEnd(variable %.40s) value: diff (-want +got):\n%s", tc.in, diff)
		}
	}
	for _, key := range []string{"bad key", "", strings.Repeat("k", 129), "naïve"} {
		body := fmt.Sprintf(`{"call_id":"c1","variables":{%q:"x"}}`, key)
		_, err := ParseEnd([]byte(body))
		if diff := cmp.Diff([]string{"variables." + key}, issuePaths(t, body, err)); diff != "" {
			t.Errorf("ParseEnd(variable name %.40q) issue paths: diff (-want +got):\n%s", key, diff)
		}
	}
}

func TestParseEndTTL(t *testing.T) {
	tests := map[string]struct {
		ttl    time.Duration
		issues []string
	}{
		``:                                {30 * 24 * time.Hour, nil},
		`,"variable_ttl_seconds":null`:    {30 * 24 * time.Hour, nil},
		`,"variable_ttl_seconds":86400`:   {24 * time.Hour, nil},
		`,"variable_ttl_seconds":7776000`: {90 * 24 * time.Hour, nil},
		`,"variable_ttl_seconds":86399`:   {0, []string{"variable_ttl_seconds"}},
		`,"variable_ttl_seconds":7776001`: {0, []string{"variable_ttl_seconds"}},
		`,"variable_ttl_seconds":-1`:      {0, []string{"variable_ttl_seconds"}},
		`,"variable_ttl_seconds":1.5`:     {0, []string{"variable_ttl_seconds"}},
		`,"variable_ttl_seconds":"86400"`: {0, []string{"variable_ttl_seconds"}},
	}
	for extra, w := range tests {
		body := `{"call_id":"c1","variables":{"a":"b"}` + extra + `}`
		req, err := ParseEnd([]byte(body))
		if diff := cmp.Diff(w.issues, issuePaths(t, body, err)); diff != "" {
			t.Errorf("ParseEnd(%s) issue paths: diff (-want +got):\n%s", body, diff)
			continue
		}
		if err == nil && req.VariableTTL != w.ttl {
			t.Errorf("ParseEnd(%s).VariableTTL = %v, want %v", body, req.VariableTTL, w.ttl)
		}
	}
}

func TestParseEndIssues(t *testing.T) {
	tests := []struct {
		name string
		body string
		want []string
	}{
		{"the guide's end", `{"call_id":"test_001","customer_ref":"cust_test","variables":{"name":"Test"},"intent":"test","intent_is_open":false}`, nil},
		{"hints and external ids", `{"call_id":"c1","identity_hints":{"ani":"+14155551234","external_ids":{"crm":"1"}},"external_ids":{"zd":"2"}}`, nil},
		{"no call_id", `{"customer_ref":"cust_1"}`, []string{"call_id"}},
		{"bad hints", `{"call_id":"c1","identity_hints":{"ani":"12"}}`, []string{"identity_hints.ani"}},
		{"hints not an object", `{"call_id":"c1","identity_hints":[]}`, []string{"identity_hints"}},
		{"variables not an object", `{"call_id":"c1","variables":"x"}`, []string{"variables"}},
		{"not an object", `"end"`, []string{"body"}},
		{"every problem at once",
			`{"call_id":"","customer_ref":"bad ref!","external_ids":{"k":""},"intent":"Bad","intent_status":"maybe","variables":{"password":"x","note":"123-45-6789","ok":"fine"},"variable_ttl_seconds":5}`,
			[]string{"call_id", "customer_ref", "external_ids.k", "intent", "intent_status", "variable_ttl_seconds", "variables.note", "variables.password"}},
	}
	for _, tc := range tests {
		_, err := ParseEnd([]byte(tc.body))
		if diff := cmp.Diff(tc.want, issuePaths(t, tc.body, err)); diff != "" {
			t.Errorf("ParseEnd(%s: %s) issue paths: diff (-want +got):\n%s", tc.name, tc.body, diff)
		}
	}
}

func TestParseEndCountsCharacters(t *testing.T) {
	long := strings.Repeat("é", 1000) // 2,000 bytes, 1,000 characters
	body := `{"call_id":"c","customer_ref":"r","variables":{"note":"` + long + `"},"external_ids":{"crm":"` + strings.Repeat("日", 200) + `"}}`
	if _, err := ParseEnd([]byte(body)); err != nil {
		t.Errorf("ParseEnd(1,000 é and 200 日) = %v, want nil: limits count characters", err)
	}
	vars := make([]string, 101)
	for i := range vars {
		vars[i] = fmt.Sprintf(`"v%d":"x"`, i)
	}
	_, err := ParseEnd([]byte(`{"call_id":"c","customer_ref":"r","variables":{` + strings.Join(vars, ",") + `}}`))
	var v *ValidationError
	if !errors.As(err, &v) || len(v.Issues) != 1 || strings.Join(v.Issues[0].Path, ".") != "variables" {
		t.Errorf("ParseEnd(101 variables) = %v, want one issue at variables", err)
	}
	if _, err := ParseEnd([]byte(`{"call_id":"c","customer_ref":"r","variables":{"note":"card 4111  1111-1111 1111"}}`)); err == nil {
		t.Error("ParseEnd(a card number with a double space) = nil, want a refusal")
	}
}

// Text that encoding/json would silently change, and control characters,
// are refused at their path rather than stored altered.
func TestParseTextValidity(t *testing.T) {
	tests := []struct {
		name, body string
		path, says string
	}{
		{"invalid UTF-8 in a value", "{\"call_id\":\"c1\",\"variables\":{\"note\":\"ok \xff\xfe\"}}", "variables.note", "valid UTF-8"},
		{"a lone surrogate", `{"call_id":"c1","variables":{"note":"\ud800"}}`, "variables.note", "valid UTF-8"},
		{"a lone surrogate beside a U+FFFD", `{"call_id":"c1","variables":{"note":"\ufffd \ud800"}}`, "variables.note", "valid UTF-8"},
		{"a lone low surrogate", `{"call_id":"c1","variables":{"note":"x\udc00"}}`, "variables.note", "valid UTF-8"},
		{"NUL", `{"call_id":"c1","variables":{"note":"a\u0000b"}}`, "variables.note", "control characters"},
		{"escape", `{"call_id":"c1","variables":{"note":"\u001b[31mred"}}`, "variables.note", "control characters"},
		{"C1 control", `{"call_id":"c1","variables":{"note":"a\u0085b"}}`, "variables.note", "control characters"},
		{"wrapped value", `{"call_id":"c1","variables":{"note":{"value":"a\u0007"}}}`, "variables.note", "control characters"},
		{"external id", `{"call_id":"c1","external_ids":{"crm":"a\u0000"}}`, "external_ids.crm", "control characters"},
		{"invalid UTF-8 in a name", "{\"call_id\":\"c1\",\"variables\":{\"n\xffote\":\"x\"}}", "", "valid UTF-8"},
	}
	for _, tt := range tests {
		_, err := ParseEnd([]byte(tt.body))
		if err == nil || !strings.Contains(err.Error(), tt.says) {
			t.Errorf("%s: ParseEnd error %v, want it to say %q", tt.name, err, tt.says)
			continue
		}
		if tt.path != "" && !slices.Contains(issuePaths(t, tt.body, err), tt.path) {
			t.Errorf("%s: issue paths %v, want %s", tt.name, issuePaths(t, tt.body, err), tt.path)
		}
	}
	for _, ok := range []string{`"tab\there"`, `"line\nbreak"`, `"U+FFFD \ufffd kept"`, `"é日本"`, `"\ud83d\ude00 a pair"`, `"not an escape: \\ud800"`} {
		body := `{"call_id":"c1","variables":{"note":` + ok + `}}`
		if _, err := ParseEnd([]byte(body)); err != nil {
			t.Errorf("ParseEnd(%s) = %v, want it accepted", body, err)
		}
	}
	if _, err := ParseStart([]byte("{\"call_id\":\"c1\",\"ani\":\"+14155551234\",\"external_ids\":{\"crm\":\"\xff\"}}")); err == nil || !strings.Contains(err.Error(), "UTF-8") {
		t.Errorf("ParseStart with invalid UTF-8 = %v, want refused", err)
	}
}
