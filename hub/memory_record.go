package hub

import (
	"encoding/binary"
	"encoding/json"
	"time"
)

// The memory backend keeps each channel's history as records: one
// pointer-free byte slice per event instead of an Event (ten pointers:
// strings, the data, the time's location). A node with 1,000 busy channels
// holds hundreds of thousands of history events, and the garbage
// collector's mark phase, which on 2 cores takes one of the two for as
// long as it runs, scanned every one of those pointers: it was the
// delivery p99 of the memory backend under publish load. A record's bytes
// are never scanned. The live path never reads records: Publish hands the
// Event itself to delivery, and only History and a deduplicated retry
// decode one.
//
// A record holds, in order: the time as Unix nanoseconds (8 bytes), then
// uvarint-length-prefixed Type, Data, MsgID, ClientID, ConnectionID and
// Headers. The channel, the epoch and the offset are the ring's.

// encodeRecord returns ev as a record, in one allocation of its size.
func encodeRecord(ev *Event) []byte {
	origin := [...]string{ev.MsgID, ev.ClientID, ev.ConnectionID, ev.Headers}
	n := 8 + uvarintLen(uint64(len(ev.Type))) + len(ev.Type) + uvarintLen(uint64(len(ev.Data))) + len(ev.Data)
	for _, f := range origin {
		n += uvarintLen(uint64(len(f))) + len(f)
	}
	b := make([]byte, 8, n)
	binary.LittleEndian.PutUint64(b, uint64(ev.TS.UnixNano()))
	b = binary.AppendUvarint(b, uint64(len(ev.Type)))
	b = append(b, ev.Type...)
	b = binary.AppendUvarint(b, uint64(len(ev.Data)))
	b = append(b, ev.Data...)
	for _, f := range origin {
		b = binary.AppendUvarint(b, uint64(len(f)))
		b = append(b, f...)
	}
	return b
}

// decodeRecord rebuilds the event at cur of channel from its record.
func decodeRecord(rec []byte, channel string, cur Cursor) Event {
	ev := Event{ID: cur.String(), Channel: channel, Cursor: cur,
		TS: time.Unix(0, int64(binary.LittleEndian.Uint64(rec))).UTC()}
	rec = rec[8:]
	next := func() []byte {
		l, k := binary.Uvarint(rec)
		f := rec[k : k+int(l)]
		rec = rec[k+int(l):]
		return f
	}
	ev.Type = string(next())
	if d := next(); len(d) > 0 {
		ev.Data = json.RawMessage(append([]byte(nil), d...))
	}
	ev.MsgID = string(next())
	ev.ClientID = string(next())
	ev.ConnectionID = string(next())
	ev.Headers = string(next())
	return ev
}

func uvarintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}
