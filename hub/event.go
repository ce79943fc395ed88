package hub

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"
)

// Event is one published message as stored in a channel's history and as
// delivered to subscribers. ID is the event's cursor in text form.
type Event struct {
	ID      string          `json:"id"`
	Channel string          `json:"channel"`
	Type    string          `json:"type"`
	Data    json.RawMessage `json:"data,omitempty"`
	TS      time.Time       `json:"ts"`
	// Origin is stored with the event and comes back identically live, on
	// replay and from History; its fields are left out of JSON when empty,
	// so events without one encode as they always did.
	Origin

	// Cursor is ID parsed; kept beside it so the hot path never re-parses.
	Cursor Cursor `json:"-"`
	// Duplicate is set only on what Publish returns, when the
	// publication's MsgID had been published on the channel within the
	// dedupe window (dedupe.go): the event is that first publish's, and
	// nothing was stored or delivered this time.
	Duplicate bool `json:"-"`
}

// Publication is what a publisher hands to the hub.
type Publication struct {
	// Type names the event. It may be empty: an Ably message may have no
	// name (RSL1f1), and comes back without one; the capture API's events
	// always have one.
	Type string
	Data json.RawMessage
	// DataIsJSON says the publisher has already checked that Data is
	// valid JSON text, so Publish does not scan it again (the REST route's
	// decoder checks it in the pass that reads it). Set it only for data
	// checked so: subscribers' decoders rely on the event data being JSON.
	DataIsJSON bool
	// Origin is optional: the zero Origin is a hub-originated event (the
	// capture API's), which transports name by its cursor.
	Origin
}

// Origin is who published an event and under which id, as a publisher
// outside the hub named them: an Ably client's message id, clientId and
// connectionId. The hub stores it with the event and returns it as given;
// it neither checks nor interprets it beyond the limits in limits.go.
type Origin struct {
	// MsgID is the publisher's message id, e.g. an Ably REST idempotent id
	// "<base>:<index>" or a realtime id "<connectionId>:<msgSerial>:<index>".
	MsgID string `json:"msgId,omitempty"`
	// ClientID is the publisher's client identity, if it has one.
	ClientID string `json:"clientId,omitempty"`
	// ConnectionID is the realtime connection it was published on; empty
	// for REST publishes.
	ConnectionID string `json:"connectionId,omitempty"`
	// Headers is the publisher's Ably extras.headers: a compact JSON
	// object of string, number and boolean values (ValidHeaders), or "".
	// It is what subscription filters read besides the event's type.
	Headers string `json:"headers,omitempty"`
}

// Errors returned by Hub.Publish and Hub.Subscribe for bad input.
var (
	ErrBadChannel = errors.New("hub: invalid channel name")
	ErrBadType    = errors.New("hub: invalid event type")
	ErrTooLarge   = errors.New("hub: event data too large")
	ErrBadOrigin  = errors.New("hub: invalid event origin")
)

// ValidChannel reports whether name is an acceptable channel name: 1 to
// MaxChannelLen bytes of UTF-8 text without control characters (so no
// newline) that does not start with '[' or ':'. These are Ably's rules
// (its docs, "Channel concepts"; error 40010), so every Ably channel name
// is a hub channel name as it is, and '[' stays free for Ably's
// "[qualifier]name" forms, which handoff does not support.
//
// Where a name goes: Redis keys "<prefix>:{<name>}:<kind>" take any bytes,
// and a '{' or '}' in a name cannot split one channel's keys across
// Cluster slots: the hash tag runs from the prefix's '{' (a prefix has
// none of its own) to the first '}' after it, the same for every kind, and
// no kind holds a '}', so keys of different channels never coincide. Log
// lines quote names (zerolog JSON); the native protocol carries them as
// JSON strings; REST paths carry them percent-encoded.
func ValidChannel(name string) bool {
	if len(name) == 0 || len(name) > MaxChannelLen || name[0] == '[' || name[0] == ':' {
		return false
	}
	return textWithoutControls(name)
}

// validate checks a publication against the limits in limits.go.
func (p Publication) validate(channel string) error {
	if !ValidChannel(channel) {
		return ErrBadChannel
	}
	if len(p.Type) > MaxTypeLen {
		return ErrBadType
	}
	if len(p.Data) > MaxDataBytes {
		return fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(p.Data), MaxDataBytes)
	}
	if len(p.Data) > 0 && !p.DataIsJSON && !json.Valid(p.Data) {
		return fmt.Errorf("hub: event data is not valid JSON")
	}
	return ValidateOrigin(p.Origin)
}

// ValidateOrigin checks an origin as Publish will, for callers that must
// refuse a whole batch before publishing any of it (a function, not a
// method: Origin is embedded, and p.Validate() would read as checking all
// of p). Each field at most
// MaxOriginIDLen bytes; ids printable ASCII without spaces, like the ids
// Ably and its SDKs generate; a clientId any UTF-8 text without control
// characters, as Ably allows any string. Either way nothing in it can
// break a log line. Errors wrap ErrBadOrigin.
func ValidateOrigin(o Origin) error {
	for _, f := range []struct{ name, v string }{{"msgId", o.MsgID}, {"connectionId", o.ConnectionID}} {
		if len(f.v) > MaxOriginIDLen || !printableASCII(f.v) {
			return fmt.Errorf("%w: %s must be at most %d printable ASCII characters without spaces", ErrBadOrigin, f.name, MaxOriginIDLen)
		}
	}
	if len(o.ClientID) > MaxOriginIDLen || !textWithoutControls(o.ClientID) {
		return fmt.Errorf("%w: clientId must be at most %d bytes of UTF-8 text without control characters", ErrBadOrigin, MaxOriginIDLen)
	}
	if o.Headers != "" && !ValidHeaders(o.Headers) {
		return fmt.Errorf("%w: headers must be a compact JSON object of at most %d bytes whose values are strings, numbers or booleans", ErrBadOrigin, MaxHeadersBytes)
	}
	return nil
}

// ValidHeaders reports whether h is a compact JSON object (as
// json.Compact writes it) of at most MaxHeadersBytes whose values are all
// strings, numbers or booleans: Ably's flat extras.headers.
func ValidHeaders(h string) bool {
	if len(h) > MaxHeadersBytes || len(h) < 2 || h[0] != '{' {
		return false
	}
	var m map[string]json.RawMessage
	if json.Unmarshal([]byte(h), &m) != nil {
		return false
	}
	var c bytes.Buffer
	if json.Compact(&c, []byte(h)) != nil || c.String() != h {
		return false
	}
	for _, v := range m {
		switch v[0] {
		case '{', '[', 'n':
			return false
		}
	}
	return true
}

func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}

func textWithoutControls(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r < ' ' || r >= 0x7f && r < 0xa0 {
			return false
		}
	}
	return true
}
