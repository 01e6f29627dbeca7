package main

import (
	"strings"
	"testing"
)

func TestRedactWriter(t *testing.T) {
	for in, want := range map[string]string{
		`{"ani":"+14155551234"}`:            `{"ani":"***1234"}`,
		`{"url":"/x?From=%2B14155551234"}`:  `{"url":"/x?From=***1234"}`,
		`{"msg":"\u002b14155551234"}`:       `{"msg":"***1234"}`,
		`{"path":"/v1/usage","status":200}`: `{"path":"/v1/usage","status":200}`,
	} {
		var b strings.Builder
		if _, err := (redactWriter{&b}).Write([]byte(in)); err != nil || b.String() != want {
			t.Errorf("redact(%s) = %s, %v; want %s", in, b.String(), err, want)
		}
	}
}
