package hub

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/handoff-health/handoff/internal/testutil"
)

// The dedupe rows of the backend conformance suite (dedupe.go).

// sameEvent is what a duplicate must repeat of the first publish.
type sameEvent struct {
	ID, Type, Data string
	TS             time.Time
	Origin         Origin
}

func sameOf(ev Event) sameEvent {
	return sameEvent{ID: ev.ID, Type: ev.Type, Data: string(ev.Data), TS: ev.TS, Origin: ev.Origin}
}

func withID(typ, data, id string) Publication {
	return Publication{Type: typ, Data: json.RawMessage(data), Origin: Origin{MsgID: id, ClientID: "c1"}}
}

func TestBackendDedupesMessageIDs(t *testing.T) {
	t.Parallel()
	for _, bf := range backends() {
		t.Run(bf.name, func(t *testing.T) {
			t.Parallel()
			b := bf.open(t, backendOpts{})
			rec := &recorder{}
			run(t, b, rec)
			ctx := context.Background()
			noErr(t, "Subscribe", b.Subscribe(ctx, "c"))

			first, err := b.Publish(ctx, "c", withID("a", `{"n":1}`, "base:0"))
			noErr(t, "first Publish", err)
			testutil.Equal(t, "first publish is a duplicate", false, first.Duplicate)
			again, err := b.Publish(ctx, "c", withID("b", `{"n":2}`, "base:0"))
			noErr(t, "second Publish", err)
			testutil.Equal(t, "repeat is a duplicate", true, again.Duplicate)
			testutil.Check(t, "the repeat's event", sameOf(first), sameOf(again))

			other, err := b.Publish(ctx, "c", withID("a", `{"n":3}`, "base:1"))
			noErr(t, "Publish of another id", err)
			testutil.Equal(t, "offset of another id", uint64(2), other.Cursor.Offset)
			elsewhere, err := b.Publish(ctx, "d", withID("a", `{"n":1}`, "base:0"))
			noErr(t, "Publish of the id on another channel", err)
			testutil.Equal(t, "the id on another channel is a duplicate", false, elsewhere.Duplicate)
			for i := range 2 {
				ev, err := b.Publish(ctx, "c", Publication{Type: "a", Data: json.RawMessage(`{"n":1}`)})
				noErr(t, "Publish without id", err)
				testutil.Equal(t, fmt.Sprintf("publish %d without id is a duplicate", i), false, ev.Duplicate)
			}

			evs, _, err := b.History(ctx, "c", Cursor{})
			noErr(t, "History", err)
			offsets(t, evs, 1, 4)
			testutil.Check(t, "history's first event", sameOf(first), sameOf(evs[0]))
			testutil.Eventually(t, "the live events arrive", func() bool { return len(rec.of("c")) >= 4 })
			offsets(t, rec.of("c"), 1, 4)
		})
	}
}

func TestBackendDedupeWindowAndBound(t *testing.T) {
	t.Parallel()
	for _, bf := range backends() {
		t.Run(bf.name, func(t *testing.T) {
			t.Parallel()
			// Redis really waits for the window: short for the suite, long
			// enough for the publishes of a loaded machine to fall in it.
			const window = time.Second
			b := bf.open(t, backendOpts{dedupe: DedupeConfig{Window: window, MaxIDs: 3}})
			ctx := context.Background()
			publish := func(id string) Event {
				t.Helper()
				ev, err := b.Publish(ctx, "c", withID("a", `1`, id))
				noErr(t, "Publish "+id, err)
				return ev
			}
			for _, id := range []string{"1", "2", "3", "4"} {
				publish(id)
			}
			testutil.Equal(t, "id 1 after three newer ids (bound 3) is a duplicate", false, publish("1").Duplicate)
			testutil.Equal(t, "id 4, within the bound, is a duplicate", true, publish("4").Duplicate)
			b.pass(window + 200*time.Millisecond)
			testutil.Equal(t, "id 4 after the window is a duplicate", false, publish("4").Duplicate)
			testutil.Equal(t, "id 4 right after is a duplicate", true, publish("4").Duplicate)
		})
	}
}

// A duplicate whose original left history (trimmed) still has the
// original's id, time and type; its data is the retry's.
func TestBackendDedupeAfterTrim(t *testing.T) {
	t.Parallel()
	for _, bf := range backends() {
		t.Run(bf.name, func(t *testing.T) {
			t.Parallel()
			b := bf.open(t, backendOpts{size: 2})
			ctx := context.Background()
			first, err := b.Publish(ctx, "c", withID("a", `"orig"`, "x"))
			noErr(t, "Publish", err)
			publishN(t, b, "c", 2)
			again, err := b.Publish(ctx, "c", withID("a", `"orig"`, "x"))
			noErr(t, "Publish again", err)
			testutil.Equal(t, "repeat after trim is a duplicate", true, again.Duplicate)
			testutil.Check(t, "the repeat's event", sameOf(first), sameOf(again))
			testutil.Equal(t, "top after the repeat", uint64(3), topOf(t, b, "c").Offset)
		})
	}
}

// Concurrent publishes of one id (a retry racing its original, on Redis
// often in one batch) store it once, and all of them get that event.
func TestBackendDedupeConcurrent(t *testing.T) {
	t.Parallel()
	for _, bf := range backends() {
		t.Run(bf.name, func(t *testing.T) {
			t.Parallel()
			b := bf.open(t, backendOpts{})
			ctx := context.Background()
			const n = 16
			evs := make([]Event, n)
			var wg sync.WaitGroup
			for i := range n {
				wg.Go(func() {
					ev, err := b.Publish(ctx, "c", withID("a", fmt.Sprint(i), "same"))
					if err != nil {
						t.Error(err)
					}
					evs[i] = ev
				})
			}
			wg.Wait()
			stored := 0
			for i, ev := range evs {
				if !ev.Duplicate {
					stored++
				}
				testutil.Check(t, fmt.Sprintf("event of publish %d", i), sameOf(evs[0]), sameOf(ev))
			}
			testutil.Equal(t, "publishes that stored the id", 1, stored)
			testutil.Equal(t, "top", uint64(1), topOf(t, b, "c").Offset)
		})
	}
}
