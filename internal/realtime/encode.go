package realtime

import (
	"encoding/json"
	"hash/maphash"
	"sync/atomic"
	"time"

	"github.com/handoff-health/handoff/hub"
)

// Server→client frame types.
const (
	frameConnected     = "connected"
	frameAuthenticated = "authenticated"
	frameSubscribed    = "subscribed"
	frameUnsubscribed  = "unsubscribed"
	frameEvent         = "event"
	frameResync        = "resync"
	frameErrorType     = "error"
	framePong          = "pong"
)

// serverFrame is every control frame the server sends; each type fills
// the fields it needs (see docs/protocol.md). Event frames are encoded
// separately (eventFrame) because they are shared between subscribers.
type serverFrame struct {
	Type         string          `json:"type"`
	Ref          json.RawMessage `json:"ref,omitempty"`
	ConnectionID string          `json:"connectionId,omitempty"`
	Heartbeat    int64           `json:"heartbeat,omitempty"` // milliseconds
	Channel      string          `json:"channel,omitempty"`
	Recovered    *bool           `json:"recovered,omitempty"`
	Cursor       string          `json:"cursor,omitempty"`
	ExpiresAt    *time.Time      `json:"expiresAt,omitempty"`
	Code         string          `json:"code,omitempty"`
	Message      string          `json:"message,omitempty"`
}

// encode renders a control frame. The fields are plain strings and
// numbers, so marshalling cannot fail.
func (f serverFrame) encode() []byte {
	b, err := json.Marshal(f)
	if err != nil {
		panic("realtime: encoding a control frame: " + err.Error())
	}
	return b
}

// eventFrame is the wire form of an event: the hub.Event JSON under "event",
// since the event's own "type" would collide with the frame's.
type eventFrame struct {
	Type  string    `json:"type"`
	Event hub.Event `json:"event"`
}

// frameCache remembers recently encoded event frames so that fanning one
// event out to a thousand sockets encodes it once, not a thousand times.
// It is direct-mapped and lock-free: a slot holds the last frame whose key
// hashed to it, and a collision costs one extra encode, never a wrong frame
// (the key is compared in full). Frames are immutable once stored, so
// every queue can share the same bytes.
type frameCache struct {
	seed  maphash.Seed
	slots [frameCacheSlots]atomic.Pointer[cachedFrame]
}

type cachedFrame struct {
	channel, id string
	b           []byte
}

func newFrameCache() *frameCache { return &frameCache{seed: maphash.MakeSeed()} }

// event returns the encoded frame of ev. A channel's event id (epoch and
// offset) names one stored event forever, so (channel, id) is a safe key.
// It fails only if the event's data is not JSON, which the hub refuses at
// publish time.
func (fc *frameCache) event(ev hub.Event) ([]byte, error) {
	var h maphash.Hash
	h.SetSeed(fc.seed)
	h.WriteString(ev.Channel)
	h.WriteByte(0)
	h.WriteString(ev.ID)
	slot := &fc.slots[h.Sum64()%frameCacheSlots]
	if c := slot.Load(); c != nil && c.id == ev.ID && c.channel == ev.Channel {
		return c.b, nil
	}
	b, err := json.Marshal(eventFrame{Type: frameEvent, Event: ev})
	if err != nil {
		return nil, err
	}
	slot.Store(&cachedFrame{channel: ev.Channel, id: ev.ID, b: b})
	return b, nil
}
