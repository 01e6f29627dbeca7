package callapi

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/stickycalls/stickycalls/context/identity"
)

// Hints are what a client knows about who is calling.
type Hints struct {
	// ANI is the caller's number in E.164, or "" when withheld or absent.
	ANI         string            `json:"ani,omitempty"`
	Withheld    bool              `json:"withheld,omitempty"` // an ANI was sent but is withheld
	DNIS        string            `json:"dnis,omitempty"`
	ExternalIDs map[string]string `json:"external_ids,omitempty"`
	CustomerRef string            `json:"customer_ref,omitempty"`
}

// Empty reports whether the hints name nothing to recognize a caller by.
func (h Hints) Empty() bool {
	return h.ANI == "" && !h.Withheld && len(h.ExternalIDs) == 0 && h.CustomerRef == ""
}

// StartRequest is a validated POST /v1/calls/start body.
type StartRequest struct {
	CallID      string               `json:"call_id"`
	Hints       Hints                `json:"identity_hints"`
	LineType    identity.LineType    `json:"line_type,omitempty"` // "" when not sent
	Attestation identity.Attestation `json:"attestation"`
	Channel     string               `json:"channel"`
}

// EndRequest is a validated POST /v1/calls/end body.
type EndRequest struct {
	CallID      string            `json:"call_id"`
	CustomerRef string            `json:"customer_ref,omitempty"`
	Hints       *Hints            `json:"identity_hints,omitempty"`
	ExternalIDs map[string]string `json:"external_ids,omitempty"`
	Intent      string            `json:"intent,omitempty"`
	Status      string            `json:"intent_status,omitempty"`
	// Variables maps a name to its new value; nil deletes it.
	Variables   map[string]*string `json:"variables,omitempty"`
	VariableTTL time.Duration      `json:"variable_ttl,omitempty"`
}

// Fingerprint hashes the canonical form of a parsed request, so key order,
// whitespace and equivalent shapes of one request hash the same.
func Fingerprint(req any) string {
	b, _ := json.Marshal(req) // maps marshal with sorted keys
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// Limits of the contract.
const (
	MaxVariables      = 100 // a customer keeps at most this many variables
	MaxOpenIntents    = 20  // … and this many open intents
	maxVariableKey    = 128
	maxVariableLen    = 1024
	maxExternalIDs    = 20
	minVariableTTL    = 24 * time.Hour
	maxVariableTTL    = 90 * 24 * time.Hour
	defVariableTTL    = 30 * 24 * time.Hour
	maxCandidates     = 10
	maxIdempotencyKey = 255
)

var (
	callIDPattern = regexp.MustCompile(`^[\x21-\x7e]{1,128}$`)
	refPattern    = regexp.MustCompile(`^[A-Za-z0-9_.:-]{1,128}$`)
	keyPattern    = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)
	varKeyPattern = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,128}$`)
	intentPattern = regexp.MustCompile(`^[a-z0-9_.-]{1,64}$`)
	e164Pattern   = regexp.MustCompile(`^\+[1-9][0-9]{7,14}$`)
)

// withheldANIs are the words and Twilio placeholders of a withheld number.
var withheldANIs = map[string]bool{
	"": true, "anonymous": true, "restricted": true, "private": true, "unknown": true,
	"unavailable": true, "blocked": true,
	"+266696687": true, "+7378742833": true, "+86282452253": true, "+2562533": true, "+8656696": true,
}

// NormalizeANI returns a number in E.164, whether it is withheld, and
// whether it is valid at all. Spaces, dashes, dots and parentheses go.
func NormalizeANI(s string) (e164 string, withheld, ok bool) {
	if withheldANIs[strings.ToLower(strings.TrimSpace(s))] {
		return "", true, true
	}
	n := strings.Map(func(r rune) rune {
		if strings.ContainsRune(" -.()", r) {
			return -1
		}
		return r
	}, s)
	if withheldANIs[n] {
		return "", true, true
	}
	if !e164Pattern.MatchString(n) {
		return "", false, false
	}
	return n, false, true
}

// Issue is one problem with a request, at a JSON path.
type Issue struct {
	Path    []string `json:"path"`
	Message string   `json:"message"`
	// Reason, for a value refused as sensitive data, is one of the
	// Reason constants, for the metrics; the client reads Message.
	Reason string `json:"-"`
}

// ValidationError lists every problem of a request.
type ValidationError struct {
	Issues []Issue
}

func (e *ValidationError) Error() string {
	parts := make([]string, len(e.Issues))
	for i, is := range e.Issues {
		parts[i] = strings.Join(is.Path, ".") + ": " + is.Message
	}
	return "invalid request: " + strings.Join(parts, "; ")
}

// Add adds an issue at path.
func (e *ValidationError) Add(msg string, path ...string) {
	e.Issues = append(e.Issues, Issue{Path: path, Message: msg})
}

// refuse adds a value refused as sensitive data.
func (e *ValidationError) refuse(r refusal, path ...string) {
	e.Issues = append(e.Issues, Issue{Path: path, Message: "refused: " + r.why + "; sensitive data is never stored", Reason: r.reason})
}

// errOrNil returns e as an error only when it holds issues, never a typed nil.
func (e *ValidationError) errOrNil() error {
	if len(e.Issues) == 0 {
		return nil
	}
	return e
}

// object decodes a JSON object into its raw fields. Duplicate keys keep
// the last, as encoding/json does.
func object(raw json.RawMessage, v *ValidationError, path ...string) map[string]json.RawMessage {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil || m == nil {
		v.Add("must be a JSON object", path...)
		return nil
	}
	return m
}

func isNull(raw json.RawMessage) bool {
	return raw == nil || bytes.Equal(bytes.TrimSpace(raw), []byte("null"))
}

// str decodes an optional string field; absent and null give "".
func str(m map[string]json.RawMessage, name string, v *ValidationError, path ...string) (string, bool) {
	raw, ok := m[name]
	if !ok || isNull(raw) {
		return "", false
	}
	s, problem := text(raw)
	if problem != "" {
		v.Add(problem, append(path, name)...)
		return "", false
	}
	return s, true
}

func stringMap(raw json.RawMessage, v *ValidationError, path ...string) map[string]string {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		v.Add("must be an object of strings", path...)
		return nil
	}
	m := make(map[string]string, len(fields))
	for _, k := range slices.Sorted(maps.Keys(fields)) {
		s, problem := text(fields[k])
		if problem != "" {
			v.Add(problem, append(path, k)...)
			continue
		}
		m[k] = s
	}
	return m
}

// Problems of a text.
const (
	notString   = "must be a string"
	notUTF8     = "must be valid UTF-8"
	hasControls = "must not hold control characters (tab and newline are allowed)"
)

// text decodes a JSON string, refusing what encoding/json would silently
// change (invalid UTF-8 and lone surrogate escapes both become U+FFFD) and
// control characters other than tab and newline. It returns the string or
// why it is refused.
func text(raw json.RawMessage) (string, string) {
	if !utf8.Valid(raw) {
		return "", notUTF8
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", notString
	}
	if loneSurrogate(raw) {
		return "", notUTF8 // a lone surrogate, such as \ud800
	}
	if strings.ContainsFunc(s, func(r rune) bool { return unicode.IsControl(r) && r != '\t' && r != '\n' }) {
		return "", hasControls
	}
	return s, ""
}

// loneSurrogate reports whether a raw JSON string holds a \uXXXX escape of
// a UTF-16 surrogate that is not half of a pair, which encoding/json turns
// into U+FFFD.
func loneSurrogate(raw []byte) bool {
	hex := func(i int) (rune, bool) {
		if i+6 > len(raw) || raw[i] != '\\' || raw[i+1] != 'u' {
			return 0, false
		}
		v, err := strconv.ParseUint(string(raw[i+2:i+6]), 16, 16)
		return rune(v), err == nil
	}
	for i := 0; i < len(raw); i++ {
		if raw[i] != '\\' || i+1 >= len(raw) {
			continue
		}
		r, ok := hex(i)
		if !ok {
			i++ // another escape: skip its letter (an escaped backslash included)
			continue
		}
		switch {
		case r >= 0xD800 && r <= 0xDBFF: // high: a low must follow
			if lo, ok := hex(i + 6); !ok || lo < 0xDC00 || lo > 0xDFFF {
				return true
			}
			i += 11
		case r >= 0xDC00 && r <= 0xDFFF:
			return true
		default:
			i += 5
		}
	}
	return false
}

// checkUTF8 adds a problem for a body that is not valid UTF-8 where no
// field's problem says so already (invalid bytes in a name, say).
func checkUTF8(body []byte, v *ValidationError) {
	if utf8.Valid(body) || slices.ContainsFunc(v.Issues, func(i Issue) bool { return i.Message == notUTF8 }) {
		return
	}
	v.Add(notUTF8, "body")
}

// ParseStart validates a start body, flat or nested, listing every problem.
func ParseStart(body []byte) (StartRequest, error) {
	var v ValidationError
	m := object(body, &v, "body")
	if m == nil {
		return StartRequest{}, &v
	}
	var req StartRequest
	req.CallID = callID(m, &v)
	req.Hints = startHints(m, &v)
	if telco, ok := m["telco"]; ok && !isNull(telco) {
		if t := object(telco, &v, "telco"); t != nil {
			req.LineType, req.Attestation = parseTelco(t, &v)
		}
	}
	if req.Attestation == "" {
		req.Attestation = identity.AttestNone
	}
	checkUTF8(body, &v)
	req.Channel = "phone"
	if ch, ok := str(m, "channel", &v); ok {
		switch ch {
		case "phone", "sms", "chat", "email":
			req.Channel = ch
		default:
			v.Add("must be one of phone, sms, chat, email", "channel")
		}
	}
	return req, v.errOrNil()
}

func callID(m map[string]json.RawMessage, v *ValidationError) string {
	id, ok := str(m, "call_id", v)
	if !ok {
		if _, present := m["call_id"]; !present || isNull(m["call_id"]) {
			v.Add("required", "call_id")
		}
		return ""
	}
	if !callIDPattern.MatchString(id) {
		v.Add("must be 1-128 printable ASCII characters without spaces", "call_id")
	}
	return id
}

// startHints reads identity_hints, or the flat alias of the LLM prompts.
func startHints(m map[string]json.RawMessage, v *ValidationError) Hints {
	var nested, flat Hints
	raw, hasNested := m["identity_hints"]
	hasNested = hasNested && !isNull(raw)
	if hasNested {
		if h := object(raw, v, "identity_hints"); h != nil {
			nested = parseHints(h, v, "identity_hints")
		}
	}
	hasFlat := false
	for _, k := range []string{"ani", "dnis", "external_ids", "customer_ref"} {
		if raw, ok := m[k]; ok && !isNull(raw) {
			hasFlat = true
		}
	}
	if hasFlat {
		flat = parseHints(m, v)
	}
	switch {
	case hasNested && hasFlat && Fingerprint(nested) != Fingerprint(flat):
		v.Add("disagrees with the flat ani/external_ids fields; send one shape", "identity_hints")
	case !hasNested && !hasFlat:
		v.Add("required: at least one of ani, external_ids, customer_ref", "identity_hints")
		return Hints{}
	case hasFlat && !hasNested:
		nested = flat
	}
	if nested.Empty() && len(v.Issues) == 0 {
		v.Add("needs at least one of ani, external_ids, customer_ref", "identity_hints")
	}
	return nested
}

func parseHints(m map[string]json.RawMessage, v *ValidationError, path ...string) Hints {
	var h Hints
	if raw, ok := str(m, "ani", v, path...); ok {
		e164, withheld, valid := NormalizeANI(raw)
		if !valid {
			v.Add("must be E.164 (+ and 8-15 digits) or a withheld marker", append(path, "ani")...)
		}
		h.ANI, h.Withheld = e164, withheld
	}
	if raw, ok := str(m, "dnis", v, path...); ok {
		e164, _, valid := NormalizeANI(raw)
		if !valid || e164 == "" {
			v.Add("must be E.164 (+ and 8-15 digits)", append(path, "dnis")...)
		}
		h.DNIS = e164
	}
	if raw, ok := m["external_ids"]; ok && !isNull(raw) {
		h.ExternalIDs = externalIDs(raw, v, append(path, "external_ids")...)
	}
	if ref, ok := str(m, "customer_ref", v, path...); ok {
		if !refPattern.MatchString(ref) {
			v.Add("must be 1-128 characters of A-Z a-z 0-9 _ . : -", append(path, "customer_ref")...)
		}
		h.CustomerRef = ref
	}
	return h
}

func externalIDs(raw json.RawMessage, v *ValidationError, path ...string) map[string]string {
	ids := stringMap(raw, v, path...)
	if len(ids) > maxExternalIDs {
		v.Add(fmt.Sprintf("at most %d entries", maxExternalIDs), path...)
	}
	for _, k := range slices.Sorted(maps.Keys(ids)) {
		if !keyPattern.MatchString(k) {
			v.Add("key must be 1-64 characters of A-Z a-z 0-9 _ . -", append(path, k)...)
		}
		if n := utf8.RuneCountInString(ids[k]); n < 1 || n > 256 {
			v.Add("value must be 1-256 characters", append(path, k)...)
		}
		val := ids[k]
		if r := sensitive(k, &val); r.why != "" {
			v.refuse(r, append(path, k)...)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	return ids
}

func parseTelco(t map[string]json.RawMessage, v *ValidationError) (identity.LineType, identity.Attestation) {
	var lt identity.LineType
	att := identity.AttestNone
	if s, ok := str(t, "line_type", v, "telco"); ok {
		var valid bool
		if lt, valid = identity.ParseLineType(s); !valid {
			v.Add("must be one of mobile, landline, voip, unknown", "telco", "line_type")
			lt = ""
		}
	}
	if s, ok := str(t, "attestation", v, "telco"); ok {
		var valid bool
		if att, valid = identity.ParseAttestation(s); !valid {
			v.Add("must be one of A, B, C, failed, none", "telco", "attestation")
		}
	}
	return lt, att
}

// ParseEnd validates an end body, listing every problem, sensitive data
// included.
func ParseEnd(body []byte) (EndRequest, error) {
	var v ValidationError
	m := object(body, &v, "body")
	if m == nil {
		return EndRequest{}, &v
	}
	var req EndRequest
	req.CallID = callID(m, &v)
	if ref, ok := str(m, "customer_ref", &v); ok {
		if !refPattern.MatchString(ref) {
			v.Add("must be 1-128 characters of A-Z a-z 0-9 _ . : -", "customer_ref")
		}
		req.CustomerRef = ref
	}
	if raw, ok := m["identity_hints"]; ok && !isNull(raw) {
		if h := object(raw, &v, "identity_hints"); h != nil {
			hints := parseHints(h, &v, "identity_hints")
			req.Hints = &hints
		}
	}
	if raw, ok := m["external_ids"]; ok && !isNull(raw) {
		req.ExternalIDs = externalIDs(raw, &v, "external_ids")
	}
	req.Intent, req.Status = parseIntent(m, &v)
	if raw, ok := m["variables"]; ok && !isNull(raw) {
		req.Variables = parseVariables(raw, &v)
	}
	req.VariableTTL = parseTTL(m, &v)
	checkUTF8(body, &v)
	return req, v.errOrNil()
}

func parseIntent(m map[string]json.RawMessage, v *ValidationError) (intent, status string) {
	intent, hasIntent := str(m, "intent", v)
	if hasIntent && !intentPattern.MatchString(intent) {
		v.Add("must be a slug of 1-64 characters a-z 0-9 _ . -", "intent")
	} else if r := sensitiveText(intent); hasIntent && r.why != "" {
		v.refuse(r, "intent")
	}
	status, hasStatus := str(m, "intent_status", v)
	if hasStatus && status != "open" && status != "resolved" && status != "abandoned" {
		v.Add("must be one of open, resolved, abandoned", "intent_status")
	}
	if raw, ok := m["intent_is_open"]; ok && !isNull(raw) {
		var open bool
		if err := json.Unmarshal(raw, &open); err != nil {
			v.Add("must be a boolean", "intent_is_open")
		} else {
			guide := map[bool]string{true: "open", false: "resolved"}[open]
			if hasStatus && status != guide {
				v.Add("disagrees with intent_status", "intent_is_open")
			}
			status, hasStatus = guide, true
		}
	}
	if hasStatus && !hasIntent {
		v.Add("required when an intent status is given", "intent")
	}
	if hasIntent && !hasStatus {
		status = "open" // an intent with no word on its outcome is followed up next call
	}
	return intent, status
}

func parseVariables(raw json.RawMessage, v *ValidationError) map[string]*string {
	m := object(raw, v, "variables")
	if m == nil {
		return nil
	}
	vars := make(map[string]*string, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		if !varKeyPattern.MatchString(k) {
			v.Add("name must be 1-128 characters of A-Z a-z 0-9 _ . -", "variables", k)
			continue
		}
		val, problem := variableValue(m[k])
		if problem != "" {
			v.Add(problem, "variables", k)
			continue
		}
		if problem, r := checkVariable(k, val); problem != "" {
			v.Add(problem, "variables", k)
			continue
		} else if r.why != "" {
			v.refuse(r, "variables", k)
			continue
		}
		vars[k] = val
	}
	// A body that sets more than a customer may keep is refused here, before
	// the quota is looked at; the merged total is checked at the commit.
	set := 0
	for _, val := range vars {
		if val != nil {
			set++
		}
	}
	if set > MaxVariables {
		v.Add(fmt.Sprintf("at most %d variables; this body sets %d", MaxVariables, set), "variables")
	}
	return vars
}

// checkVariable tells what is wrong with a variable's name and value (nil:
// a deletion): a problem of form, or a refusal of sensitive data.
func checkVariable(key string, val *string) (string, refusal) {
	switch {
	case !varKeyPattern.MatchString(key):
		return "name must be 1-128 characters of A-Z a-z 0-9 _ . -", refusal{}
	case val != nil && utf8.RuneCountInString(*val) > maxVariableLen:
		return fmt.Sprintf("value must be at most %d characters", maxVariableLen), refusal{}
	}
	return "", sensitive(key, val)
}

// VariableProblem tells why a stored variable is one that no end could
// have saved (see §4: its name, its length, sensitive data), or "". An
// import checks what it is given with it.
func VariableProblem(key, value string) string {
	problem, r := checkVariable(key, &value)
	if problem == "" {
		problem = r.why
	}
	return problem
}

// notValue is the problem of a variable that is no value.
const notValue = "must be a string, number, boolean, null or {\"value\": ...}"

// variableValue turns a JSON value into the text stored (nil deletes), or
// says why it cannot be stored.
func variableValue(raw json.RawMessage) (*string, string) {
	raw = bytes.TrimSpace(raw)
	if isNull(raw) {
		return nil, ""
	}
	switch raw[0] {
	case '"':
		s, problem := text(raw)
		if problem != "" {
			return nil, problem
		}
		return &s, ""
	case 't', 'f':
		if b := string(raw); b == "true" || b == "false" {
			return &b, ""
		}
		return nil, notValue
	case '{':
		var w map[string]json.RawMessage
		if json.Unmarshal(raw, &w) != nil || len(w) != 1 || w["value"] == nil || bytes.TrimSpace(w["value"])[0] == '{' {
			return nil, notValue
		}
		return variableValue(w["value"])
	case '[':
		return nil, notValue
	}
	if _, err := strconv.ParseFloat(string(raw), 64); err != nil {
		return nil, notValue
	}
	s := string(raw) // a number keeps the text the client sent
	return &s, ""
}

func parseTTL(m map[string]json.RawMessage, v *ValidationError) time.Duration {
	raw, ok := m["variable_ttl_seconds"]
	if !ok || isNull(raw) {
		return defVariableTTL
	}
	var secs int64
	if err := json.Unmarshal(raw, &secs); err != nil {
		v.Add("must be a whole number of seconds", "variable_ttl_seconds")
		return defVariableTTL
	}
	// Compare seconds before converting: a huge number must not wrap.
	if secs < int64(minVariableTTL/time.Second) || secs > int64(maxVariableTTL/time.Second) {
		v.Add("must be between 86400 (1 day) and 7776000 (90 days)", "variable_ttl_seconds")
		return defVariableTTL
	}
	return time.Duration(secs) * time.Second
}
