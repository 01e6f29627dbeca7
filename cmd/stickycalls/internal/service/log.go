package service

import (
	"bytes"
	"io"
	"regexp"
	"strings"
	"sync"
	"unicode"

	"github.com/rs/zerolog"
)

// phoneLike matches what could be a phone number in a log line, encoded
// "+" included.
var phoneLike = regexp.MustCompile(`(\+|%2B|\\u002b)[1-9][0-9]{5,14}`)

// redactWriter is the last line of defence: it masks anything shaped like
// a phone number in each log line to its last four digits.
type redactWriter struct{ w io.Writer }

func (r redactWriter) Write(p []byte) (int, error) {
	out := p
	// Most lines hold no "+" at all: skip the regexp for them.
	if bytes.IndexByte(p, '+') >= 0 || bytes.Contains(p, []byte("%2B")) || bytes.Contains(p, []byte(`\u002b`)) {
		out = phoneLike.ReplaceAllFunc(p, func(m []byte) []byte {
			return append([]byte("***"), m[len(m)-4:]...)
		})
	}
	if _, err := r.w.Write(out); err != nil {
		return 0, err
	}
	return len(p), nil
}

func newLogger(w io.Writer, level string) (zerolog.Logger, error) {
	lvl, err := zerolog.ParseLevel(level)
	if err != nil {
		return zerolog.Logger{}, err
	}
	scrubErrorsOnce.Do(func() {
		zerolog.ErrorMarshalFunc = func(err error) any {
			if err == nil {
				return nil
			}
			return scrub(err.Error())
		}
	})
	return zerolog.New(redactWriter{w}).Level(lvl).With().Timestamp().Logger(), nil
}

// scrubErrorsOnce guards zerolog's error marshaller, which is process-wide
// (tests run several servers).
var scrubErrorsOnce sync.Once

// scrub masks, in free text such as an error message, every phone-shaped
// run (7 to 15 digits, an optional "+" and the separators people write
// between them: spaces, dashes, dots, parentheses) to its last four
// digits. It leaves alone what the service itself writes: a run touching a
// letter, a digit or "_" (ids such as req_… or cust_…, timestamps such as
// 2026-12-01T16:25:58Z, units such as 150ms), an address such as
// 127.0.0.1, and a time of day (a run followed by ":" and a digit).
func scrub(s string) string {
	var b strings.Builder
	rs := []rune(s)
	last := 0
	for i := 0; i < len(rs); {
		if !isRunStart(rs[i]) || (i > 0 && isWordRune(rs[i-1])) {
			i++
			continue
		}
		j, digits := i, 0
		for j < len(rs) && (unicode.IsDigit(rs[j]) || strings.ContainsRune(" -.()\u00a0", rs[j]) || (j == i && rs[j] == '+')) {
			if unicode.IsDigit(rs[j]) {
				digits++
			}
			j++
		}
		end := j
		for end > i && !unicode.IsDigit(rs[end-1]) {
			end-- // trailing separators are not part of the number
		}
		after := func(k int) rune {
			if end+k < len(rs) {
				return rs[end+k]
			}
			return 0
		}
		phone := digits >= 7 && digits <= 15 && end > i && !isWordRune(after(0)) &&
			!(after(0) == ':' && unicode.IsDigit(after(1))) && !isAddress(rs[i:end])
		if phone {
			b.WriteString(string(rs[last:i]))
			ds := []rune{}
			for _, r := range rs[i:end] {
				if unicode.IsDigit(r) {
					ds = append(ds, r)
				}
			}
			b.WriteString("***" + string(ds[len(ds)-4:]))
			last = end
		}
		i = max(j, i+1)
	}
	b.WriteString(string(rs[last:]))
	return b.String()
}

func isRunStart(r rune) bool { return r == '+' || r == '(' || unicode.IsDigit(r) }

func isWordRune(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) || r == '_' }

// isAddress reports whether a run is dotted groups of at most three digits
// (an IPv4 address or a version), not a number written 415.555.0198.
func isAddress(run []rune) bool {
	groups := strings.Split(string(run), ".")
	if len(groups) < 3 {
		return false
	}
	for _, g := range groups {
		if len(g) == 0 || len(g) > 3 || strings.TrimFunc(g, unicode.IsDigit) != "" {
			return false
		}
	}
	return true
}
