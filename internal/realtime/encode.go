package realtime

import (
	"encoding/json"
	"hash/maphash"
	"sync/atomic"
	"time"

	"github.com/handoff-health/handoff/hub"
	"github.com/handoff-health/handoff/protocol"
)

// encodeFrame renders a control frame. The fields are plain strings and
// numbers, so marshalling cannot fail.
func encodeFrame(f protocol.ServerFrame) []byte {
	b, err := json.Marshal(f)
	if err != nil {
		panic("realtime: encoding a control frame: " + err.Error())
	}
	return b
}

// eventFrame is the wire form of an event (protocol.ServerFrame with only
// Type and Event set), encoded from the hub.Event directly so the hot path
// copies nothing; TestEventFrameIsProtocol keeps the two shapes equal.
type eventFrame struct {
	Type  protocol.FrameType `json:"type"`
	Event hub.Event          `json:"event"`
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
	ts          time.Time
	b           []byte
}

func newFrameCache() *frameCache { return &frameCache{seed: maphash.MakeSeed()} }

// event returns the encoded frame of ev. The key is the event's identity,
// not only its position: (channel, id) should name one stored event
// forever, and the hub starts a new epoch whenever its backend may have
// lost data, but a frame is only reused when the publish time matches too,
// so a position ever handed out twice re-encodes instead of serving the
// old event's frame. It fails only if the event's data is not JSON, which
// the hub refuses at publish time.
func (fc *frameCache) event(ev hub.Event) ([]byte, error) {
	var h maphash.Hash
	h.SetSeed(fc.seed)
	h.WriteString(ev.Channel)
	h.WriteByte(0)
	h.WriteString(ev.ID)
	slot := &fc.slots[h.Sum64()%frameCacheSlots]
	if c := slot.Load(); c != nil && c.id == ev.ID && c.channel == ev.Channel && c.ts.Equal(ev.TS) {
		return c.b, nil
	}
	b, err := json.Marshal(eventFrame{Type: protocol.FrameEvent, Event: ev})
	if err != nil {
		return nil, err
	}
	slot.Store(&cachedFrame{channel: ev.Channel, id: ev.ID, ts: ev.TS, b: b})
	return b, nil
}
