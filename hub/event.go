package hub

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Event is one published message as stored in a channel's history and as
// delivered to subscribers. ID is the event's cursor in text form.
type Event struct {
	ID      string          `json:"id"`
	Channel string          `json:"channel"`
	Type    string          `json:"type"`
	Data    json.RawMessage `json:"data,omitempty"`
	TS      time.Time       `json:"ts"`

	// Cursor is ID parsed; kept beside it so the hot path never re-parses.
	Cursor Cursor `json:"-"`
}

// Publication is what a publisher hands to the hub.
type Publication struct {
	Type string
	Data json.RawMessage
}

// Errors returned by Hub.Publish and Hub.Subscribe for bad input.
var (
	ErrBadChannel = errors.New("hub: invalid channel name")
	ErrBadType    = errors.New("hub: invalid event type")
	ErrTooLarge   = errors.New("hub: event data too large")
)

// ValidChannel reports whether name is an acceptable channel name: 1 to
// MaxChannelLen bytes of letters, digits and "-_.:@". Keeping the alphabet
// small lets names go into Redis keys, log fields and URLs unescaped.
func ValidChannel(name string) bool {
	if len(name) == 0 || len(name) > MaxChannelLen {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '-', c == '_', c == '.', c == ':', c == '@':
		default:
			return false
		}
	}
	return true
}

// validate checks a publication against the limits in limits.go.
func (p Publication) validate(channel string) error {
	if !ValidChannel(channel) {
		return ErrBadChannel
	}
	if p.Type == "" || len(p.Type) > MaxTypeLen {
		return ErrBadType
	}
	if len(p.Data) > MaxDataBytes {
		return fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(p.Data), MaxDataBytes)
	}
	if len(p.Data) > 0 && !json.Valid(p.Data) {
		return fmt.Errorf("hub: event data is not valid JSON")
	}
	return nil
}
