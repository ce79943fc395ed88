package hub

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/handoff-health/handoff/internal/testutil"
)

// failingBackend fails the next fails publishes. With stored set, a failed
// publish still stores the event first, like a Redis link that breaks after
// the script ran (an unknown outcome).
type failingBackend struct {
	Backend
	mu     sync.Mutex
	fails  int
	stored bool
}

func (f *failingBackend) Publish(ctx context.Context, channel string, p Publication) (Event, error) {
	f.mu.Lock()
	fail := f.fails > 0
	if fail {
		f.fails--
	}
	f.mu.Unlock()
	if !fail {
		return f.Backend.Publish(ctx, channel, p)
	}
	if f.stored {
		_, _ = f.Backend.Publish(ctx, channel, p)
	}
	return Event{}, errors.New("redis: connection reset")
}

func TestAnnounceRepublishesUntilInHistory(t *testing.T) {
	for _, tc := range []struct {
		name   string
		stored bool
	}{{"not stored", false}, {"unknown outcome, stored", true}} {
		t.Run(tc.name, func(t *testing.T) {
			b := &failingBackend{Backend: NewMemory(MemoryConfig{}), fails: 3, stored: tc.stored}
			h := New(b)
			runHub(t, h)
			c := &collector{}
			subscribe(t, h, "session:a", nil, c)

			_, err := h.Announce(context.Background(), "session:a", Publication{Type: "image.added", Data: []byte(`{"n":1}`)})
			if !errors.Is(err, ErrQueued) || !errors.Is(err, ErrUnavailable) {
				t.Fatalf("Announce error = %v, want ErrQueued", err)
			}
			// A later event of the channel queues behind the kept one.
			if _, err := h.Announce(context.Background(), "session:a", Publication{Type: "image.removed", Data: []byte(`{"n":1}`)}); !errors.Is(err, ErrQueued) {
				t.Fatalf("second Announce error = %v, want ErrQueued", err)
			}
			testutil.Eventually(t, "both events delivered", func() bool { return len(c.events()) >= 2 && h.Pending() == 0 })
			evs := c.events()
			testutil.Equal(t, "events", 2, len(evs))
			testutil.Equal(t, "first type", "image.added", evs[0].Type)
			testutil.Equal(t, "second type", "image.removed", evs[1].Type)
		})
	}
}

func TestAnnouncePublishesAtOnceWhenHealthy(t *testing.T) {
	h := New(NewMemory(MemoryConfig{}))
	runHub(t, h)
	ev, err := h.Announce(context.Background(), "session:a", Publication{Type: "t", Data: []byte(`{}`)})
	if err != nil {
		t.Fatalf("Announce: %v", err)
	}
	testutil.Equal(t, "offset", uint64(1), ev.Cursor.Offset)
	if _, err := h.Announce(context.Background(), "[bad channel", Publication{Type: "t"}); !errors.Is(err, ErrBadChannel) {
		t.Fatalf("bad channel: %v", err)
	}
	testutil.Equal(t, "pending", 0, h.Pending())
}

// TestAnnounceRepublishesLookAlike: an identical event published long
// before is not taken for the kept one; the kept one is still published.
func TestAnnounceRepublishesLookAlike(t *testing.T) {
	clock := testutil.NewClock()
	clock.Advance(-time.Hour)
	b := &failingBackend{Backend: NewMemory(MemoryConfig{Now: clock.Now})}
	h := New(b)
	runHub(t, h)
	p := Publication{Type: "session.updated", Data: []byte(`{"status":"open"}`)}
	if _, err := h.Announce(context.Background(), "session:a", p); err != nil {
		t.Fatalf("first Announce: %v", err)
	}
	clock.Advance(time.Hour)
	b.mu.Lock()
	b.fails = 1
	b.mu.Unlock()
	if _, err := h.Announce(context.Background(), "session:a", p); !errors.Is(err, ErrQueued) {
		t.Fatalf("second Announce error = %v, want ErrQueued", err)
	}
	testutil.Eventually(t, "the kept event republished", func() bool { return h.Pending() == 0 })
	evs, _, err := h.History(context.Background(), "session:a", Cursor{})
	if err != nil {
		t.Fatal(err)
	}
	testutil.Equal(t, "events in history", 2, len(evs))
}
