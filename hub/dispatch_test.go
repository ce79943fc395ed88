package hub

import (
	"context"
	"sync/atomic"
	"testing"
)

// countingBackend counts History reads.
type countingBackend struct {
	*Memory
	reads atomic.Int64
}

func (c *countingBackend) History(ctx context.Context, ch string, since Cursor) ([]Event, Cursor, error) {
	c.reads.Add(1)
	return c.Memory.History(ctx, ch, since)
}

// After a reconnect every subscriber of a channel is re-checked against
// history; subscribers at the same position share one read, and each still
// gets every missed event exactly once.
func TestResyncSharesHistoryReads(t *testing.T) {
	ctx := context.Background()
	mem := NewMemory(MemoryConfig{})
	defer mem.Close()
	b := &countingBackend{Memory: mem}
	h := New(b) // Run is not started: live delivery is "down"
	const subs = 10
	got := make([][]string, subs)
	for i := range subs {
		if _, err := h.Subscribe(ctx, "session:x", nil, func(d Delivery) bool {
			if d.Kind == KindEvent {
				got[i] = append(got[i], d.Event.ID)
			}
			return true
		}); err != nil {
			t.Fatal(err)
		}
	}
	for range 3 {
		if _, err := h.Publish(ctx, "session:x", Publication{Type: "t"}); err != nil {
			t.Fatal(err)
		}
	}
	b.reads.Store(0)
	(*hubHandler)(h).Resync()
	if n := b.reads.Load(); n != 1 {
		t.Errorf("Resync made %d history reads for %d subscribers at one position, want 1", n, subs)
	}
	for i, ids := range got {
		if len(ids) != 3 {
			t.Errorf("subscriber %d got %v, want the 3 missed events once each", i, ids)
		}
	}
}
