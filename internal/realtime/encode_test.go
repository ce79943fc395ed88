package realtime

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/handoff-health/handoff/hub"
	"github.com/handoff-health/handoff/internal/testutil"
)

// TestFrameCacheEncodesOnce: fanning one event out returns the same bytes
// for every subscriber (one encode, shared), and a slot collision never
// returns another event's frame.
func TestFrameCacheEncodesOnce(t *testing.T) {
	// Not parallel: AllocsPerRun needs the process to itself.
	fc := newFrameCache()
	ev := hub.Event{ID: "abc-1", Channel: "session:a", Type: "image.added", Data: json.RawMessage(`{"k":1}`), TS: time.Unix(0, 0).UTC()}
	first, err := fc.event(ev)
	if err != nil {
		t.Fatal(err)
	}
	if allocs := testing.AllocsPerRun(100, func() { _, _ = fc.event(ev) }); allocs != 0 {
		t.Fatalf("a cached frame costs %v allocations per subscriber, want 0", allocs)
	}
	again, _ := fc.event(ev)
	if &first[0] != &again[0] {
		t.Fatal("second lookup re-encoded the event")
	}
	var f frame
	if err := json.Unmarshal(first, &f); err != nil {
		t.Fatalf("frame %s does not decode: %v", first, err)
	}
	testutil.Equal(t, "cached frame", eventFrameOf(ev), f)
	// Far more events than slots: every lookup still gets its own frame.
	for i := range 3 * frameCacheSlots {
		e := ev
		e.ID = "abc-" + itoa(i)
		b, _ := fc.event(e)
		var got frame
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatalf("lookup of %s returned undecodable %s: %v", e.ID, b, err)
		}
		testutil.Equal(t, "event id of lookup "+e.ID, e.ID, got.Event.ID)
	}
}

// TestFrameCacheReissuedPosition: a position handed out twice (a backend
// that lost data and reused a cursor) never serves the first event's frame
// for the second: the publish time is part of the key.
func TestFrameCacheReissuedPosition(t *testing.T) {
	t.Parallel()
	fc := newFrameCache()
	old := hub.Event{ID: "abc-35", Channel: "session:a", Type: "image.added", Data: json.RawMessage(`{"seq":34}`), TS: time.Unix(100, 0).UTC()}
	if _, err := fc.event(old); err != nil {
		t.Fatal(err)
	}
	reissued := old
	reissued.Data, reissued.TS = json.RawMessage(`{"seq":99}`), time.Unix(105, 0).UTC()
	b, err := fc.event(reissued)
	if err != nil {
		t.Fatal(err)
	}
	var got frame
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatalf("frame %s does not decode: %v", b, err)
	}
	testutil.Equal(t, "frame of the reissued position", eventFrameOf(reissued), got)
}

// TestEventFrameIsProtocol: the hot path encodes event frames from the
// hub.Event, not from protocol.ServerFrame; this keeps the two shapes
// equal, field for field, so clients decoding protocol.ServerFrame miss
// nothing the server sends, with and without an origin. An event without
// one encodes as before origins existed.
func TestEventFrameIsProtocol(t *testing.T) {
	t.Parallel()
	plain := hub.Event{ID: "abc-7", Channel: "session:a", Type: "image.added", Data: json.RawMessage(`{"k":[1,2]}`), TS: time.Unix(1700000000, 123456789).UTC()}
	withOrigin := plain
	withOrigin.Origin = hub.Origin{MsgID: "hK3x9aQ2Lm:5:0", ClientID: "desk-42", ConnectionID: "hK3x9aQ2Lm"}
	for name, ev := range map[string]hub.Event{"plain": plain, "with origin": withOrigin} {
		b, err := newFrameCache().event(ev)
		if err != nil {
			t.Fatal(err)
		}
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		var f frame
		if err := dec.Decode(&f); err != nil {
			t.Fatalf("%s event frame %s is not a protocol.ServerFrame: %v", name, b, err)
		}
		testutil.Equal(t, name+" decoded event frame", eventFrameOf(ev), f)
		again, err := json.Marshal(f)
		if err != nil {
			t.Fatal(err)
		}
		testutil.Equal(t, name+" event frame re-encoded from protocol.ServerFrame", string(b), string(again))
	}
	b, _ := newFrameCache().event(plain)
	testutil.Equal(t, "frame of an event without origin",
		`{"type":"event","event":{"id":"abc-7","channel":"session:a","type":"image.added","data":{"k":[1,2]},"ts":"2023-11-14T22:13:20.123456789Z"}}`, string(b))
}
