package hub

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/handoff-health/handoff/internal/testutil"
)

// collector is a Sink that keeps its deliveries. With limit > 0 it
// refuses every delivery after the first limit, like a full send queue.
type collector struct {
	mu       sync.Mutex
	ds       []Delivery
	limit    int
	attempts int
}

func (c *collector) sink(d Delivery) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.attempts++
	if c.limit > 0 && len(c.ds) >= c.limit {
		return false
	}
	c.ds = append(c.ds, d)
	return true
}

func (c *collector) deliveries() []Delivery {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Delivery(nil), c.ds...)
}

func (c *collector) events() []Event {
	var out []Event
	for _, d := range c.deliveries() {
		if d.Kind == KindEvent {
			out = append(out, d.Event)
		}
	}
	return out
}

func (c *collector) tries() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.attempts
}

// runHub runs h's live delivery until the test ends.
func runHub(t testing.TB, h *Hub) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = h.Run(ctx)
	}()
	t.Cleanup(func() { cancel(); <-done })
}

func subscribe(t testing.TB, h *Hub, channel string, since *Cursor, c *collector) *Subscription {
	t.Helper()
	sub, err := h.Subscribe(context.Background(), channel, since, c.sink)
	if err != nil {
		t.Fatalf("Subscribe(%s): %v", channel, err)
	}
	return sub
}

func openHub(t testing.TB, bf backendFactory, o backendOpts) (*Hub, *testBackend) {
	b := bf.open(t, o)
	h := New(b)
	runHub(t, h)
	return h, b
}

func TestHubSubscribeWithoutSinceGetsOnlyNewEvents(t *testing.T) {
	t.Parallel()
	for _, bf := range hubBackends() {
		t.Run(bf.name, func(t *testing.T) {
			t.Parallel()
			h, b := openHub(t, bf, backendOpts{})
			old := publishN(t, b, "c", 3)
			c := &collector{}
			subscribe(t, h, "c", nil, c)
			testutil.Equal(t, "first delivery",
				Delivery{Kind: KindSubscribed, Channel: "c", Position: old[2].Cursor, Recovered: true}, c.deliveries()[0])
			publishN(t, b, "c", 2)
			testutil.Eventually(t, "new events arrive", func() bool { return len(c.events()) == 2 })
			offsets(t, c.events(), 4, 5)
		})
	}
}

// TestHubReplayRacesLivePublishes subscribes with cursors while a
// publisher runs: each subscriber gets every event after its cursor once,
// in order, whether it came by replay or live.
func TestHubReplayRacesLivePublishes(t *testing.T) {
	t.Parallel()
	for _, bf := range hubBackends() {
		t.Run(bf.name, func(t *testing.T) {
			t.Parallel()
			h, b := openHub(t, bf, backendOpts{})
			ctx := context.Background()
			epoch := publishN(t, b, "c", 20)[0].Cursor.Epoch
			const total = 320
			var top atomic.Uint64
			top.Store(20)
			done := make(chan struct{})
			go func() {
				defer close(done)
				for top.Load() < total {
					ev, err := h.Publish(ctx, "c", Publication{Type: "t"})
					if err != nil {
						t.Error(err)
						return
					}
					top.Store(ev.Cursor.Offset)
					time.Sleep(100 * time.Microsecond)
				}
			}()
			type subscriber struct {
				c    *collector
				from uint64
			}
			var subs []subscriber
			for i := 0; i < 8; i++ {
				// Cursors from the start, from the past, and from the newest event.
				since := Cursor{Epoch: epoch, Offset: top.Load()}
				switch i % 3 {
				case 0:
					since = Cursor{}
				case 1:
					since.Offset -= min(since.Offset, 15)
				}
				c := &collector{}
				subscribe(t, h, "c", &since, c)
				subs = append(subs, subscriber{c, since.Offset + 1})
				time.Sleep(2 * time.Millisecond)
			}
			<-done
			for i, s := range subs {
				testutil.Eventually(t, "every subscriber reaches the top", func() bool {
					evs := s.c.events()
					return len(evs) > 0 && evs[len(evs)-1].Cursor.Offset == total
				})
				first := s.c.deliveries()[0]
				testutil.Equal(t, fmt.Sprintf("subscriber %d: kind of the first delivery", i), KindSubscribed, first.Kind)
				testutil.Equal(t, fmt.Sprintf("subscriber %d: first delivery recovered", i), true, first.Recovered)
				offsets(t, s.c.events(), s.from, total)
			}
		})
	}
}

func TestHubUnrecoverableCursors(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		ttl  time.Duration
		// since picks the cursor from the channel's epoch (top is 5; 3 kept).
		since func(epoch string) Cursor
		// recovered is whether replay is possible; from where events resume.
		recovered bool
	}{
		{"recent", 0, func(e string) Cursor { return Cursor{Epoch: e, Offset: 3} }, true},
		{"trimmed", 0, func(e string) Cursor { return Cursor{Epoch: e, Offset: 1} }, false},
		{"foreign epoch", 0, func(string) Cursor { return Cursor{Epoch: "zzzzzzzzzzzzz", Offset: 3} }, false},
		{"ahead of top", 0, func(e string) Cursor { return Cursor{Epoch: e, Offset: 9} }, false},
		{"expired", time.Second, func(e string) Cursor { return Cursor{Epoch: e, Offset: 5} }, false},
	}
	for _, bf := range hubBackends() {
		for _, tc := range cases {
			t.Run(bf.name+"/"+tc.name, func(t *testing.T) {
				t.Parallel()
				h, b := openHub(t, bf, backendOpts{size: 3, ttl: tc.ttl})
				pub := publishN(t, b, "c", 5)
				want := pub[4].Cursor
				if tc.ttl > 0 {
					b.pass(tc.ttl + 200*time.Millisecond)
					want = Cursor{}
				}
				since := tc.since(pub[0].Cursor.Epoch)
				c := &collector{}
				subscribe(t, h, "c", &since, c)
				testutil.Equal(t, "first delivery",
					Delivery{Kind: KindSubscribed, Channel: "c", Position: want, Recovered: tc.recovered}, c.deliveries()[0])
				// Live delivery continues from the position given.
				next := publishN(t, b, "c", 1)[0]
				testutil.Eventually(t, "the next event arrives", func() bool {
					evs := c.events()
					return len(evs) > 0 && evs[len(evs)-1].ID == next.ID
				})
				from := since.Offset + 1
				if !tc.recovered {
					from = want.Offset + 1
				}
				offsets(t, c.events(), from, next.Cursor.Offset)
			})
		}
	}
}

func TestHubDropsSlowConsumer(t *testing.T) {
	t.Parallel()
	for _, bf := range hubBackends() {
		t.Run(bf.name, func(t *testing.T) {
			t.Parallel()
			h, b := openHub(t, bf, backendOpts{})
			slow := &collector{limit: 3} // KindSubscribed and two events
			sub := subscribe(t, h, "c", nil, slow)
			publishN(t, b, "c", 5)
			testutil.Eventually(t, "the slow consumer is refused", func() bool { return slow.tries() == 4 })
			testutil.Eventually(t, "the backend unsubscribes", func() bool { return !b.subscribed("c") })
			publishN(t, b, "c", 1)
			sub.Unsubscribe()
			sub.Unsubscribe()
			testutil.Equal(t, "deliveries offered to a dropped subscriber", 4, slow.tries())
			// The channel can be subscribed again after the drop.
			if _, err := h.Subscribe(context.Background(), "c", nil, (&collector{}).sink); err != nil {
				t.Fatalf("Subscribe after a drop: %v", err)
			}
			// A sink that cannot take even the first delivery is refused.
			full := func(Delivery) bool { return false }
			if _, err := h.Subscribe(context.Background(), "d", nil, full); !errors.Is(err, ErrSlowConsumer) {
				t.Fatalf("Subscribe with a full sink: %v, want ErrSlowConsumer", err)
			}
			testutil.Eventually(t, "the refused channel is unsubscribed", func() bool { return !b.subscribed("d") })
		})
	}
}

func TestHubUnsubscribesBackendAfterLastSubscriber(t *testing.T) {
	t.Parallel()
	for _, bf := range hubBackends() {
		t.Run(bf.name, func(t *testing.T) {
			t.Parallel()
			h, b := openHub(t, bf, backendOpts{})
			one, two := &collector{}, &collector{}
			s1 := subscribe(t, h, "c", nil, one)
			s2 := subscribe(t, h, "c", nil, two)
			s1.Unsubscribe()
			if !b.subscribed("c") {
				t.Fatal("backend unsubscribed while a subscriber remains")
			}
			publishN(t, b, "c", 1)
			testutil.Eventually(t, "the remaining subscriber gets events", func() bool { return len(two.events()) == 1 })
			s2.Unsubscribe()
			testutil.Eventually(t, "the backend unsubscribes", func() bool { return !b.subscribed("c") })
			testutil.Equal(t, "events of an unsubscribed sink", 0, len(one.events()))
			// The channel can be taken up again.
			three := &collector{}
			subscribe(t, h, "c", nil, three)
			publishN(t, b, "c", 1)
			testutil.Eventually(t, "a new subscriber gets events", func() bool { return len(three.events()) == 1 })
			offsets(t, three.events(), 2, 2)
		})
	}
}
