package hub

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/handoff-health/handoff/internal/testutil"
)

// gatedBackend is a Memory backend that counts History reads, and can
// hold the replies of one channel's reads at a gate or fail reads, as a
// slow or unreachable Redis would. A held read has already taken its
// snapshot of history: what is published meanwhile is not in its reply.
type gatedBackend struct {
	*Memory
	reads atomic.Int64 // every History call
	// slow is the channel whose replies wait until gate is closed;
	// waiting counts those waiting now.
	slow    string
	gate    chan struct{}
	waiting atomic.Int64
	// failures is how many more History calls fail with ErrUnavailable.
	failures atomic.Int64
}

func newGatedBackend(t testing.TB, slow string) *gatedBackend {
	// Room for TestRepairBacklogOverflowRereads: more than maxBacklog.
	mem := NewMemory(MemoryConfig{HistorySize: 2 * maxBacklog})
	t.Cleanup(func() { mem.Close() })
	b := &gatedBackend{Memory: mem, slow: slow, gate: make(chan struct{})}
	t.Cleanup(b.open)
	return b
}

// open lets every held and later read of the slow channel through.
func (b *gatedBackend) open() {
	select {
	case <-b.gate:
	default:
		close(b.gate)
	}
}

func (b *gatedBackend) History(ctx context.Context, ch string, since Cursor) ([]Event, Cursor, error) {
	b.reads.Add(1)
	if b.failures.Add(-1) >= 0 {
		return nil, Cursor{}, fmt.Errorf("test: %w", ErrUnavailable)
	}
	evs, top, err := b.Memory.History(ctx, ch, since)
	if ch == b.slow {
		b.waiting.Add(1)
		<-b.gate
		b.waiting.Add(-1)
	}
	return evs, top, err
}

// eventIDs returns the ids of a collector's events.
func eventIDs(c *collector) []string { return ids(c.events()) }

// After a reconnect every subscriber of a channel is re-checked against
// history; subscribers at the same position share one read, and each still
// gets every missed event exactly once.
func TestResyncSharesHistoryReads(t *testing.T) {
	ctx := context.Background()
	b := newGatedBackend(t, "")
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
	missed := publishN(t, b, "session:x", 3)
	b.reads.Store(0)
	(*hubHandler)(h).Resync()
	testutil.Check(t, fmt.Sprintf("history reads of Resync for %d subscribers at one position", subs), int64(1), b.reads.Load())
	for i, gotIDs := range got {
		testutil.Check(t, fmt.Sprintf("subscriber %d's events (the missed ones, once each)", i), ids(missed), gotIDs)
	}
}

// TestRepairDoesNotHoldUpLiveDelivery: while a gap on one channel waits for
// a slow history read, HandleEvent returns at once, other channels'
// events are delivered, and the channel's own live events wait for the
// repair and then follow it in order, each once.
func TestRepairDoesNotHoldUpLiveDelivery(t *testing.T) {
	b := newGatedBackend(t, "slow")
	h := New(b) // the test calls HandleEvent itself, as a delivery goroutine would
	slow, fast := &collector{}, &collector{}
	subscribe(t, h, "slow", nil, slow)
	subscribe(t, h, "fast", nil, fast)
	hh := (*hubHandler)(h)

	missed := publishN(t, b, "slow", 3)
	hh.HandleEvent(missed[2]) // shows a gap: 1 and 2 were not delivered live
	testutil.Eventually(t, "the repair read waits at the gate", func() bool { return b.waiting.Load() == 1 })

	for _, ev := range publishN(t, b, "fast", 3) {
		hh.HandleEvent(ev)
	}
	testutil.Equal(t, "fast channel's events while the slow read is held", 3, len(fast.events()))
	later := publishN(t, b, "slow", 2)
	for _, ev := range later {
		hh.HandleEvent(ev)
	}
	testutil.Equal(t, "slow reads still held", int64(1), b.waiting.Load())
	testutil.Equal(t, "slow channel's events before its repair", 0, len(slow.events()))

	b.open()
	testutil.Eventually(t, "the slow subscriber catches up", func() bool { return len(slow.events()) >= 5 })
	testutil.Eventually(t, "the repair ends", func() bool { return !repairing(h, "slow") })
	offsets(t, slow.events(), 1, 5)
}

// TestSubscribeReadsWithoutBlockingLiveDelivery: a Subscribe with a cursor
// whose history read is slow does not hold up the channel's live events
// for its other subscribers; the new subscriber gets replay and the events
// that arrived meanwhile, in order, each once.
func TestSubscribeReadsWithoutBlockingLiveDelivery(t *testing.T) {
	b := newGatedBackend(t, "slow")
	h := New(b)
	hh := (*hubHandler)(h)
	old := publishN(t, b, "slow", 2)
	live := &collector{}
	subscribe(t, h, "slow", nil, live)

	late := &collector{}
	subscribed := make(chan error, 1)
	go func() {
		_, err := h.Subscribe(context.Background(), "slow", &Cursor{}, late.sink)
		subscribed <- err
	}()
	testutil.Eventually(t, "the new subscriber's read waits at the gate", func() bool { return b.waiting.Load() == 1 })
	meanwhile := publishN(t, b, "slow", 3)
	for _, ev := range meanwhile {
		hh.HandleEvent(ev)
	}
	testutil.Equal(t, "live subscriber's events while the new one reads", ids(meanwhile), eventIDs(live))
	testutil.Equal(t, "new subscriber's deliveries before its read returns", 0, len(late.deliveries()))

	b.open()
	noErr(t, "Subscribe", <-subscribed)
	testutil.Equal(t, "new subscriber's first delivery",
		Delivery{Kind: KindSubscribed, Channel: "slow", Position: old[1].Cursor, Recovered: true}, late.deliveries()[0])
	offsets(t, late.events(), 1, 5)
	testutil.Equal(t, "new subscriber's events (replay, then what came meanwhile)", ids(append(old, meanwhile...)), eventIDs(late))
}

// TestRepairBacklogOverflowRereads: a subscriber catching up drops a
// backlog beyond maxBacklog and reads the dropped events from history
// instead, still in order and each once.
func TestRepairBacklogOverflowRereads(t *testing.T) {
	b := newGatedBackend(t, "slow")
	h := New(b)
	hh := (*hubHandler)(h)
	sub := &collector{}
	subscribe(t, h, "slow", nil, sub)
	first := publishN(t, b, "slow", 2)
	hh.HandleEvent(first[1])
	testutil.Eventually(t, "the repair read waits at the gate", func() bool { return b.waiting.Load() == 1 })
	const more = maxBacklog + 10
	for _, ev := range publishN(t, b, "slow", more) {
		hh.HandleEvent(ev)
	}
	b.open()
	testutil.Eventually(t, "the subscriber catches up", func() bool { return len(sub.events()) >= 2+more })
	testutil.Eventually(t, "the repair ends", func() bool { return !repairing(h, "slow") })
	offsets(t, sub.events(), 1, 2+more)
	if n := b.reads.Load(); n < 2 {
		t.Errorf("%d history reads; an overflowed backlog must be read again", n)
	}
}

// TestRepairRetriesWhileUnavailable: a repair whose read fails keeps the
// subscriber's position and retries on a timer, with no live event to
// prompt it.
func TestRepairRetriesWhileUnavailable(t *testing.T) {
	b := newGatedBackend(t, "")
	h := New(b)
	sub := &collector{}
	subscribe(t, h, "quiet", nil, sub)
	missed := publishN(t, b, "quiet", 2)
	b.failures.Store(1)
	(*hubHandler)(h).HandleEvent(missed[1])
	testutil.Eventually(t, "the retry delivers the missed events", func() bool { return len(sub.events()) == 2 })
	offsets(t, sub.events(), 1, 2)
	testutil.Equal(t, "history reads (one failed, one retried)", int64(2), b.reads.Load())
}

// repairing reports whether repair passes run for the named channel.
func repairing(h *Hub, name string) bool {
	h.mu.Lock()
	ch := h.channels[name]
	h.mu.Unlock()
	ch.mu.Lock()
	defer ch.mu.Unlock()
	return ch.repairing
}
