package ablyrt

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/handoff-health/handoff/ablyproto"
	"github.com/handoff-health/handoff/hub"
)

// BenchmarkDeliver: what one live event costs one attached subscriber
// once its frame is cached (the fan-out hot path): the sink's bookkeeping,
// the frame cache hit and the enqueue. A writer is taken to be running,
// so no socket is written; the queue is emptied between events.
func BenchmarkDeliver(b *testing.B) {
	s := &Server{cfg: Config{}.withDefaults(), frames: newFrameCache(), log: zerolog.Nop()}
	c := &conn{s: s, format: ablyproto.FormatMsgpack, echo: true, channels: make(map[string]*channelState)}
	c.q.writing = true
	cs := &channelState{name: "session:7c1e", base: "session:7c1e", flags: ablyproto.FlagSubscribe}
	sink := c.sink(cs, nil, false, nil)
	ev := hub.Event{ID: "k3j5x0a2b9qzm-42", Channel: "session:7c1e", Type: "image.added",
		Data: json.RawMessage(`{"imageId":"img_01HZX3","size":482113}`), TS: time.UnixMilli(1753000000123),
		Cursor: hub.Cursor{Epoch: "k3j5x0a2b9qzm", Offset: 42}}
	d := hub.Delivery{Kind: hub.KindEvent, Event: ev}
	b.ReportAllocs()
	for b.Loop() {
		if !sink(d) {
			b.Fatal("delivery refused")
		}
		c.q.frames, c.q.pending, c.q.bytes = c.q.frames[:0], 0, 0
	}
}
