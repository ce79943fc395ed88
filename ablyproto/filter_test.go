package ablyproto

import (
	"errors"
	"strings"
	"testing"
)

func TestFilterMatch(t *testing.T) {
	in := FilterInput{Name: "filtered", Headers: `{"name":"value one","number":1234,"bool":true}`}
	cases := []struct {
		expr string
		want bool
	}{
		{"name == `\"filtered\"` && headers.number == `1234`", true},
		{"name == `\"filtered\"` && headers.number == `5678`", false},
		{"name == 'filtered'", true},
		{"name != 'filtered'", false},
		{"headers.bool == `true`", true},
		{"headers.bool", true},
		{"!headers.bool", false},
		{"headers.missing", false},
		{"headers.missing == `null`", true},
		{`headers."name" == 'value one'`, true},
		{"headers.number > `1000` && headers.number <= `1234`", true},
		{"headers.number < `1000` || (name == 'x' || name == 'filtered')", true},
		{"headers.name < `1`", false},
		{"headers.number == '1234'", false},
		{"!(name == 'a') && !(name == 'b')", true},
	}
	for _, c := range cases {
		f, err := ParseFilter(c.expr)
		if err != nil {
			t.Fatalf("%s: %v", c.expr, err)
		}
		if got := f.Match(in); got != c.want {
			t.Errorf("%s = %v, want %v", c.expr, got, c.want)
		}
	}
	f, _ := ParseFilter("headers.number == `1234`")
	if f.Match(FilterInput{Name: "filtered"}) || f.Match(FilterInput{Headers: "[1]"}) {
		t.Error("a message without headers matched a header condition")
	}
}

func TestFilterParseErrors(t *testing.T) {
	for _, expr := range []string{
		"", "name ==", "foo == `1`", "headers", "headers.", "name == `[1]`", "name == `{}`",
		"name == `x`", "(name == 'a'", "name == 'a", "name == `\"a\"` extra", "&& name",
		strings.Repeat("(", 100) + "name" + strings.Repeat(")", 100),
		strings.Repeat("!", 100) + "name",
		"name == '" + strings.Repeat("a", MaxFilterLen) + "'",
	} {
		if _, err := ParseFilter(expr); !errors.Is(err, ErrBadFilter) {
			t.Errorf("%q: err = %v, want ErrBadFilter", expr, err)
		}
	}
}

func FuzzFilter(f *testing.F) {
	f.Add("name == `\"filtered\"` && headers.number == `1234`", "filtered", `{"number":1234}`)
	f.Add("!(headers.a < `1`) || name != 'x'", "x", `{"a":"b"}`)
	f.Fuzz(func(t *testing.T, expr, name, headers string) {
		flt, err := ParseFilter(expr)
		if err != nil {
			return
		}
		flt.Match(FilterInput{Name: name, Headers: headers})
	})
}
