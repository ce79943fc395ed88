package ablyrt

import (
	"bytes"
	"encoding/json"
	"strconv"
	"testing"
	"time"

	"github.com/handoff-health/handoff/ablyproto"
	"github.com/handoff-health/handoff/hub"
	"github.com/handoff-health/handoff/internal/testutil"
)

var formats = []ablyproto.Format{ablyproto.FormatJSON, ablyproto.FormatMsgpack}

// TestFrameCacheSharesOneEncodePerFormat: every subscriber of one format
// gets the same bytes, encoded once, and they are exactly the frame a
// per-subscriber encode gives; the two formats never share a frame.
func TestFrameCacheSharesOneEncodePerFormat(t *testing.T) {
	// Not parallel: AllocsPerRun needs the process to itself.
	fc := newFrameCache()
	ev := hub.Event{ID: "k3j5-42", Channel: "session:a", Type: "image.added", Data: json.RawMessage(`{"imageId":"i1","n":3}`),
		TS: time.UnixMilli(1753000000123).UTC()}
	got := map[ablyproto.Format][]byte{}
	for _, f := range formats {
		first, err := fc.message(f, ev, ev.Channel)
		if err != nil {
			t.Fatal(err)
		}
		if allocs := testing.AllocsPerRun(100, func() { _, _ = fc.message(f, ev, ev.Channel) }); allocs != 0 {
			t.Fatalf("%s: a cached frame costs %v allocations per subscriber, want 0", f, allocs)
		}
		again, _ := fc.message(f, ev, ev.Channel)
		if &first[0] != &again[0] {
			t.Fatalf("%s: the second subscriber's lookup re-encoded the event", f)
		}
		want, err := ablyproto.Encode(f, &ablyproto.ProtocolMessage{Action: ablyproto.ActionMessage, Channel: ev.Channel,
			ChannelSerial: ev.ID, Messages: []ablyproto.RealtimeMessage{ablyproto.EventMessage(ev.ID, ev.Type, ev.Data, ev.TS, ablyproto.Origin(ev.Origin)).Realtime()}})
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(first, want) {
			t.Fatalf("%s: cached frame %q differs from the per-subscriber encoding %q", f, first, want)
		}
		pm, err := ablyproto.Decode(f, first)
		if err != nil {
			t.Fatal(err)
		}
		testutil.Equal(t, "action", ablyproto.ActionMessage, pm.Action)
		testutil.Equal(t, "serial", ev.ID, pm.Messages[0].Serial)
		testutil.Equal(t, "encoding", "json", pm.Messages[0].Encoding)
		got[f] = first
	}
	if bytes.Equal(got[ablyproto.FormatJSON], got[ablyproto.FormatMsgpack]) {
		t.Fatal("JSON and msgpack subscribers got the same frame")
	}
	// Far more events than slots, alternating formats: every lookup gets
	// its own event's frame in its own format.
	for i := range 3 * frameCacheSlots {
		e := ev
		e.ID = "k3j5-" + strconv.Itoa(i)
		f := formats[i%2]
		b, err := fc.message(f, e, e.Channel)
		if err != nil {
			t.Fatal(err)
		}
		pm, err := ablyproto.Decode(f, b)
		if err != nil {
			t.Fatalf("lookup of %s (%s) returned an undecodable frame: %v", e.ID, f, err)
		}
		testutil.Equal(t, "serial of lookup "+e.ID, e.ID, pm.ChannelSerial)
	}
}

// TestFrameCacheReissuedPosition: a position handed out twice (a backend
// that lost data and reused a cursor) never serves the first event's frame
// for the second, and the same id on another channel is another event.
func TestFrameCacheReissuedPosition(t *testing.T) {
	t.Parallel()
	fc := newFrameCache()
	old := hub.Event{ID: "abc-35", Channel: "session:a", Type: "image.added", Data: json.RawMessage(`{"seq":34}`), TS: time.Unix(100, 0).UTC()}
	for _, f := range formats {
		if _, err := fc.message(f, old, old.Channel); err != nil {
			t.Fatal(err)
		}
		reissued := old
		reissued.Data, reissued.TS = json.RawMessage(`{"seq":99}`), time.Unix(105, 0).UTC()
		other := old
		other.Channel, other.Data = "session:b", json.RawMessage(`{"seq":7}`)
		for _, e := range []hub.Event{reissued, other} {
			b, err := fc.message(f, e, e.Channel)
			if err != nil {
				t.Fatal(err)
			}
			pm, err := ablyproto.Decode(f, b)
			if err != nil {
				t.Fatal(err)
			}
			var data string
			if err := json.Unmarshal(pm.Messages[0].Data.JSON, &data); err != nil {
				t.Fatal(err)
			}
			testutil.Equal(t, f.String()+" data of "+e.Channel, string(e.Data), data)
			testutil.Equal(t, f.String()+" channel", e.Channel, pm.Channel)
		}
	}
}

// BenchmarkFanoutMessage: the sinks' encoding cost of one event delivered
// to 100 Ably subscribers of one format (the socket writes excluded):
// each subscriber encoding its own frame (as before the frame cache)
// against one encode shared through the cache.
func BenchmarkFanoutMessage(b *testing.B) {
	const subscribers = 100
	data := json.RawMessage(`{"t":1753000000123456789,"r":1753000000123499999,"s":"3.1234"}`)
	for _, f := range formats {
		ev := func(i int) hub.Event {
			return hub.Event{ID: "k3j5x0a2b9qzm-" + strconv.Itoa(i), Channel: "session:7c1e", Type: "bench", Data: data,
				TS: time.UnixMilli(1753000000123)}
		}
		b.Run(f.String()+"/per-subscriber", func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				i++
				e := ev(i)
				for range subscribers {
					if _, err := ablyproto.Encode(f, messageFrame(e, e.Channel)); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
		b.Run(f.String()+"/shared", func(b *testing.B) {
			b.ReportAllocs()
			fc := newFrameCache()
			i := 0
			for b.Loop() {
				i++
				e := ev(i)
				for range subscribers {
					if _, err := fc.message(f, e, e.Channel); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}
