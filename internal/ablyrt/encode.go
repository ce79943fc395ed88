package ablyrt

import (
	"hash/maphash"
	"sync/atomic"
	"time"

	"github.com/handoff-health/handoff/ablyproto"
	"github.com/handoff-health/handoff/hub"
)

// frameCacheSlots is the size of the server-wide cache of encoded MESSAGE
// frames. It only needs to cover the events in flight at once; a miss
// costs one extra encode, never a wrong frame.
const frameCacheSlots = 4096

// frameCache remembers recently encoded MESSAGE frames, per wire format,
// so that fanning one event out to many Ably subscribers encodes it once
// per format, not once per subscriber (as internal/realtime does for the
// native socket). A delivered MESSAGE holds nothing of the subscriber but
// the channel's name (the same for every subscriber of a hub channel but
// on test apps, scope.go): its channelSerial and message (id, name, data,
// encoding, serial, timestamp, clientId, connectionId) all come from the
// event, through ablyproto.EventMessage. It
// is direct-mapped and lock-free; the key (format, channel, id, publish
// time) is compared in full, so a collision or a position handed out twice
// re-encodes instead of serving another event's frame. Frames are
// immutable once stored, so every send queue shares the same bytes.
type frameCache struct {
	seed  maphash.Seed
	slots [frameCacheSlots]atomic.Pointer[cachedFrame]
}

type cachedFrame struct {
	format            ablyproto.Format
	channel, name, id string
	origin            hub.Origin
	ts                time.Time
	b                 []byte
}

func newFrameCache() *frameCache { return &frameCache{seed: maphash.MakeSeed()} }

// message returns ev's MESSAGE frame in format f.
//
// name is the channel's name as the subscriber knows it: the hub channel,
// or behind a test app's prefix (scope.go) the name without it.
func (fc *frameCache) message(f ablyproto.Format, ev hub.Event, name string) ([]byte, error) {
	var h maphash.Hash
	h.SetSeed(fc.seed)
	h.WriteByte(byte(f))
	h.WriteString(ev.Channel)
	h.WriteByte(0)
	h.WriteString(ev.ID)
	slot := &fc.slots[h.Sum64()%frameCacheSlots]
	if c := slot.Load(); c != nil && c.format == f && c.id == ev.ID && c.channel == ev.Channel && c.name == name &&
		c.origin == ev.Origin && c.ts.Equal(ev.TS) {
		return c.b, nil
	}
	b, ok := ablyproto.EncodeEventFrame(f, name, ev.ID, ev.ID, ev.Type, ev.Data, ev.TS, ablyproto.Origin(ev.Origin))
	if !ok {
		var err error
		if b, err = ablyproto.Encode(f, messageFrame(ev, name)); err != nil {
			return nil, err
		}
	}
	slot.Store(&cachedFrame{format: f, channel: ev.Channel, name: name, id: ev.ID, origin: ev.Origin, ts: ev.TS, b: b})
	return b, nil
}

// messageFrame is ev as a MESSAGE ProtocolMessage on the channel named name.
func messageFrame(ev hub.Event, name string) *ablyproto.ProtocolMessage {
	m := ablyproto.EventMessage(ev.ID, ev.Type, ev.Data, ev.TS, ablyproto.Origin(ev.Origin)).Realtime()
	return &ablyproto.ProtocolMessage{Action: ablyproto.ActionMessage, Channel: name, ChannelSerial: ev.ID,
		Messages: []ablyproto.RealtimeMessage{m}}
}
