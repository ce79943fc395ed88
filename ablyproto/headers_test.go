package ablyproto

import (
	"encoding/json"
	"testing"
	"time"
)

func TestHeadersOf(t *testing.T) {
	for in, want := range map[string]string{
		``:                 ``,
		`null`:             ``,
		`{}`:               ``,
		`{"push":{"a":1}}`: ``,
		`{"headers":null}`: ``,
		`{"headers":{}}`:   ``,
		`{"headers": {"a" : 1, "b":"x", "c":true}, "push":{}}`: `{"a":1,"b":"x","c":true}`,
	} {
		got, err := HeadersOf(json.RawMessage(in))
		if err != nil || got != want {
			t.Errorf("HeadersOf(%s) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{`[]`, `"x"`, `{"headers":[1]}`, `{"headers":{"a":{"b":1}}}`, `{"headers":{"a":[1]}}`, `{"headers":{"a":null}}`, `{"headers":"x"}`} {
		if _, err := HeadersOf(json.RawMessage(in)); err != ErrBadHeaders {
			t.Errorf("HeadersOf(%s): %v, want ErrBadHeaders", in, err)
		}
	}
	got, err := RealtimeHeadersOf(map[string]any{"headers": map[string]any{"n": 1234}})
	if err != nil || got != `{"n":1234}` {
		t.Errorf("RealtimeHeadersOf = %q, %v", got, err)
	}
}

func TestEventMessageHeaders(t *testing.T) {
	m := EventMessage("s", "n", nil, time.UnixMilli(1700000000000), Origin{Headers: `{"a":1}`})
	if string(m.Extras) != `{"headers":{"a":1}}` {
		t.Fatalf("extras %s", m.Extras)
	}
	r := m.Realtime()
	h, _ := r.Extras["headers"].(map[string]any)
	if h["a"] != 1.0 {
		t.Fatalf("realtime extras %v", r.Extras)
	}
	if EventMessage("s", "n", nil, time.UnixMilli(1700000000000), Origin{}).Extras != nil {
		t.Fatal("extras without headers")
	}
}
