package ablyproto

import (
	"bytes"
	"encoding/json"
	"errors"
)

// ErrBadHeaders is HeadersOf's error; its text is fit to show the publisher.
var ErrBadHeaders = errors.New("extras must be a JSON object, and extras.headers an object whose values are strings, numbers or booleans")

// HeadersOf returns a published message's extras.headers as compact JSON
// (the form hub.Origin.Headers stores), "" when there are none. Other
// extras (push, …) are accepted and not kept. The size bound is the hub's
// (hub.ValidateOrigin).
func HeadersOf(extras json.RawMessage) (string, error) {
	if len(extras) == 0 || string(extras) == "null" {
		return "", nil
	}
	var e map[string]json.RawMessage
	if err := json.Unmarshal(extras, &e); err != nil {
		return "", ErrBadHeaders
	}
	h, ok := e["headers"]
	if !ok || string(h) == "null" {
		return "", nil
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(h, &m); err != nil {
		return "", ErrBadHeaders
	}
	if len(m) == 0 {
		return "", nil
	}
	for _, v := range m {
		switch v[0] {
		case '{', '[', 'n':
			return "", ErrBadHeaders
		}
	}
	var c bytes.Buffer
	if err := json.Compact(&c, h); err != nil {
		return "", ErrBadHeaders
	}
	return c.String(), nil
}

// RealtimeHeadersOf is HeadersOf for a realtime message's decoded extras.
func RealtimeHeadersOf(extras map[string]any) (string, error) {
	if len(extras) == 0 {
		return "", nil
	}
	b, err := json.Marshal(extras)
	if err != nil {
		return "", ErrBadHeaders
	}
	return HeadersOf(b)
}
