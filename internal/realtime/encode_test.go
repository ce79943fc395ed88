package realtime

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/handoff-health/handoff/hub"
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
	if err := json.Unmarshal(first, &f); err != nil || f.Type != frameEvent || f.Event.ID != "abc-1" || string(f.Event.Data) != `{"k":1}` {
		t.Fatalf("frame %s decodes to %+v (%v)", first, f, err)
	}
	// Far more events than slots: every lookup still gets its own frame.
	for i := range 3 * frameCacheSlots {
		e := ev
		e.ID = "abc-" + itoa(i)
		b, _ := fc.event(e)
		var got frame
		if json.Unmarshal(b, &got) != nil || got.Event.ID != e.ID {
			t.Fatalf("lookup of %s returned %s", e.ID, b)
		}
	}
}
