package presence

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/handoff-health/handoff/hub"
)

// validate checks a change against the limits in limits.go, and compacts
// its data so every registry stores and announces the same bytes. Every
// registry calls it first, so bad input changes nothing.
func (c *Change) validate(maxData int) error {
	switch c.Action {
	case Enter, Update, Leave:
	default:
		return fmt.Errorf("%w: action %d is not ENTER, UPDATE or LEAVE", ErrBadChange, c.Action)
	}
	if !hub.ValidChannel(c.Channel) {
		return ErrBadChannel
	}
	if c.ClientID == "" {
		return ErrNoClientID
	}
	if c.ConnectionID == "" {
		return fmt.Errorf("%w: no connectionId", ErrBadChange)
	}
	for _, s := range []string{c.ClientID, c.ConnectionID, c.ID, c.Encoding} {
		if len(s) > MaxIDLen {
			return fmt.Errorf("%w: an id or encoding is longer than %d bytes", ErrBadChange, MaxIDLen)
		}
	}
	if len(c.Data) > maxData {
		return fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(c.Data), maxData)
	}
	if len(c.Data) > 0 {
		var b bytes.Buffer
		if err := json.Compact(&b, c.Data); err != nil {
			return fmt.Errorf("%w: data is not valid JSON", ErrBadChange)
		}
		c.Data = b.Bytes()
	}
	return nil
}

// normalize checks a history query and fills in its default limit.
func (q HistoryQuery) normalize() (HistoryQuery, error) {
	switch {
	case q.Limit < 0:
		return q, fmt.Errorf("%w: negative history limit", ErrBadChange)
	case q.Limit == 0:
		q.Limit = defaultHistoryLimit
	case q.Limit > maxHistoryLimit:
		q.Limit = maxHistoryLimit
	}
	if !q.Start.IsZero() && !q.End.IsZero() && q.End.Before(q.Start) {
		return q, fmt.Errorf("%w: history end before start", ErrBadChange)
	}
	return q, nil
}

func checkChannel(name string) error {
	if !hub.ValidChannel(name) {
		return ErrBadChannel
	}
	return nil
}
