package callcontext

import (
	"regexp"
	"slices"
	"strings"
	"unicode"
)

var (
	ssnPattern = regexp.MustCompile(`(^|[^0-9])[0-9]{3}-[0-9]{2}-[0-9]{4}([^0-9]|$)`)
	// digitRun is a run of digits that spaces or dashes may separate.
	digitRun = regexp.MustCompile(`[0-9](?:[ -]*[0-9])*`)
)

// secretWords are key parts that name a secret.
var secretWords = []string{"password", "passwd", "secret", "ssn", "cvv", "cvc", "pin"}

// sensitive tells why a variable must not be stored, or "" if it may be.
func sensitive(key string, val *string) string {
	parts := keyParts(key)
	for _, p := range parts {
		if slices.Contains(secretWords, p) {
			return "the name " + key + " names a secret"
		}
	}
	if i := slices.Index(parts, "card"); i >= 0 && slices.Contains(parts[i+1:], "number") {
		return "the name " + key + " names a card number"
	}
	if val == nil {
		return ""
	}
	if ssnPattern.MatchString(*val) {
		return "the value holds a US social security number"
	}
	if holdsCardNumber(*val) {
		return "the value holds a payment card number"
	}
	return ""
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

// holdsCardNumber reports whether s holds a 13-19 digit number that passes
// Luhn and starts with a card network's prefix.
func holdsCardNumber(s string) bool {
	for _, run := range digitRun.FindAllString(s, -1) {
		groups := strings.FieldsFunc(run, func(r rune) bool { return r == ' ' || r == '-' })
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
