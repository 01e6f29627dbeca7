package callapi

import (
	"regexp"
	"slices"
	"strings"
	"unicode"
)

var (
	// ssnPattern is 3-2-4 digits with one kind of separator, read on
	// normalized text (see digitsText).
	ssnPattern = regexp.MustCompile(`(^|[^0-9])[0-9]{3}([ -])[0-9]{2}([ -])[0-9]{4}([^0-9]|$)`)
	// nineDigits is nine digits, separated or not: an SSN under a name
	// that says so.
	nineDigits = regexp.MustCompile(`(^|[^0-9])[0-9]{3} ?[0-9]{2} ?[0-9]{4}([^0-9]|$)`)
	// digitRun is a run of digits that separators may split.
	digitRun = regexp.MustCompile(`[0-9](?: *[0-9])*`)
)

// secretWords are key parts that name a secret.
var secretWords = []string{"password", "passwd", "passcode", "secret", "ssn", "cvv", "cvc", "cvv2", "pin", "otp"}

// ssnWords are key parts that say a value may be an SSN or another tax id.
var ssnWords = []string{"ss", "ssn", "social", "socsec", "sin", "tin", "tax", "taxid"}

// Reasons a value is refused as sensitive data (Issue.Reason).
const (
	ReasonSecretName = "secret_name"
	ReasonSSN        = "ssn"
	ReasonCardNumber = "card_number"
)

// refusal is why a value must not be stored: a reason for the metrics and
// the words for the client. The zero refusal means it may be stored.
type refusal struct{ reason, why string }

// sensitive tells why a named value must not be stored: a name that names
// a secret (password, social security…), an SSN, or a payment card
// number, however it is written (see digitsText).
func sensitive(key string, val *string) refusal {
	parts := keyParts(key)
	for _, p := range parts {
		if slices.Contains(secretWords, p) {
			return refusal{ReasonSecretName, "the name " + key + " names a secret"}
		}
	}
	if i := slices.Index(parts, "social"); i >= 0 && slices.Contains(parts[i+1:], "security") {
		return refusal{ReasonSecretName, "the name " + key + " names a social security number"}
	}
	if i := slices.Index(parts, "card"); i >= 0 && slices.Contains(parts[i+1:], "number") {
		return refusal{ReasonSecretName, "the name " + key + " names a card number"}
	}
	if val == nil {
		return refusal{}
	}
	if r := sensitiveText(*val); r.why != "" {
		return r
	}
	if slices.ContainsFunc(parts, func(p string) bool { return slices.Contains(ssnWords, p) }) && nineDigits.MatchString(digitsText(*val)) {
		return refusal{ReasonSSN, "the value holds a social security number"}
	}
	return refusal{}
}

// sensitiveText tells why a text must not be stored whatever its name (an
// SSN written 3-2-4, a payment card number).
func sensitiveText(s string) refusal {
	d := digitsText(s)
	if ssnPattern.MatchString(d) {
		return refusal{ReasonSSN, "the value holds a US social security number"}
	}
	if holdsCardNumber(d) {
		return refusal{ReasonCardNumber, "the value holds a payment card number"}
	}
	return refusal{}
}

// digitsText rewrites s so digit patterns can be read whatever the
// writing: every Unicode decimal digit (full-width, Arabic-Indic…) becomes
// its ASCII digit, and every separator people put between digit groups
// (white space of any kind, dashes, dots, slashes, underscores) a space.
func digitsText(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r >= '0' && r <= '9':
			b.WriteRune(r)
		case unicode.IsDigit(r):
			b.WriteRune('0' + rune(digitValue(r)))
		case unicode.IsSpace(r), unicode.Is(unicode.Pd, r), r == '.', r == '/', r == '_', r == '\u00a0', r == '\u202f':
			b.WriteByte(' ')
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// digitValue is the value of a Unicode decimal digit. Decimal digits come
// in runs of ten code points, 0 to 9, some runs adjacent (the mathematical
// digits), so the value is how many digits precede r in its run, modulo 10.
func digitValue(r rune) int {
	below := 0
	for unicode.IsDigit(r - rune(below) - 1) {
		below++
	}
	return below % 10
}

// keyParts lower-cases a key split on _ . - and camelCase boundaries.
func keyParts(key string) []string {
	var parts []string
	var cur []rune
	rs := []rune(key)
	flush := func() {
		if len(cur) > 0 {
			parts = append(parts, strings.ToLower(string(cur)))
			cur = cur[:0]
		}
	}
	for i, r := range rs {
		if r == '_' || r == '.' || r == '-' {
			flush()
			continue
		}
		if unicode.IsUpper(r) && i > 0 {
			prev := rs[i-1]
			nextLower := i+1 < len(rs) && unicode.IsLower(rs[i+1])
			if unicode.IsLower(prev) || unicode.IsDigit(prev) || (unicode.IsUpper(prev) && nextLower) {
				flush()
			}
		}
		cur = append(cur, r)
	}
	flush()
	return parts
}

// holdsCardNumber reports whether normalized text s (see digitsText)
// holds a 13-19 digit number that passes Luhn and starts with a card
// network's prefix.
func holdsCardNumber(s string) bool {
	for _, run := range digitRun.FindAllString(s, -1) {
		groups := strings.Fields(run)
		// Any consecutive groups may form the number: "order 1234 4111 1111 1111 1111".
		for i := range groups {
			digits := ""
			for _, g := range groups[i:] {
				digits += g
				if len(digits) > 19 {
					break
				}
				if len(digits) >= 13 && isCard(digits) {
					return true
				}
			}
		}
	}
	return false
}

func isCard(d string) bool { return cardPrefix(d) && luhn(d) }

func luhn(d string) bool {
	sum := 0
	for i := range len(d) {
		n := int(d[len(d)-1-i] - '0')
		if i%2 == 1 {
			n *= 2
			if n > 9 {
				n -= 9
			}
		}
		sum += n
	}
	return sum%10 == 0
}

// cardPrefix reports whether d starts with a card network's prefix.
func cardPrefix(d string) bool {
	p := func(n int) int {
		v := 0
		for _, c := range d[:n] {
			v = v*10 + int(c-'0')
		}
		return v
	}
	in := func(n, lo, hi int) bool { v := p(n); return v >= lo && v <= hi }
	switch {
	case d[0] == '4': // Visa
		return true
	case in(2, 51, 55), in(4, 2221, 2720): // Mastercard
		return true
	case in(2, 34, 34), in(2, 37, 37): // Amex
		return true
	case in(4, 6011, 6011), in(3, 644, 649), in(2, 65, 65): // Discover
		return true
	case in(4, 3528, 3589): // JCB
		return true
	case in(3, 300, 305), in(2, 36, 36), in(2, 38, 38): // Diners
		return true
	}
	return false
}
