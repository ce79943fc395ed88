package hub

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/handoff-health/handoff/internal/testutil"
)

// The conformance suite: every Backend must pass it, from one table.

func TestMain(m *testing.M) {
	// go-redis logs every failed dial; the outage tests cause them on purpose.
	redis.SetLogger(quietLogger{})
	code := m.Run()
	stopCluster()
	os.Exit(code)
}

type quietLogger struct{}

func (quietLogger) Printf(context.Context, string, ...any) {}

// backendOpts are the limits a test asks of a fresh backend.
type backendOpts struct {
	size int
	ttl  time.Duration
	// prefix is the Redis key prefix; nodes of one deployment share it.
	// Zero means one of the backend's own.
	prefix string
}

// testBackend is a fresh backend plus the test's levers on it.
type testBackend struct {
	Backend
	// pass lets d elapse for the history TTL.
	pass func(d time.Duration)
	// subscribed reports whether the node is subscribed to channel.
	subscribed func(channel string) bool
}

type backendFactory struct {
	name string
	open func(t testing.TB, o backendOpts) *testBackend
}

// backends is the conformance table; testing.Short keeps only memory and
// standalone Redis.
func backends() []backendFactory {
	all := []backendFactory{
		{"memory", openMemory},
		{"redis", func(t testing.TB, o backendOpts) *testBackend {
			return openRedis(t, newRedisClient(t, testutil.StartRedis(t).Addr), o)
		}},
		{"redis-cluster", func(t testing.TB, o backendOpts) *testBackend {
			return openRedis(t, clusterClient(t), o)
		}},
	}
	if testing.Short() {
		return all[:2]
	}
	return all
}

// testClock is an injectable clock for Memory's TTL.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) pass(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func openMemory(t testing.TB, o backendOpts) *testBackend {
	clock := &testClock{now: time.Now()}
	m := NewMemory(MemoryConfig{HistorySize: o.size, HistoryTTL: o.ttl, Now: clock.Now})
	t.Cleanup(func() { m.Close() })
	return &testBackend{
		Backend: m,
		pass:    clock.pass,
		subscribed: func(ch string) bool {
			m.mu.Lock()
			defer m.mu.Unlock()
			return m.subs[ch]
		},
	}
}

func newRedisClient(t testing.TB, addr string) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() { c.Close() })
	return c
}

// prefixes numbers the key prefixes of tests sharing a server.
var prefixes atomic.Int64

// openRedis returns a Redis backend under a key prefix of its own, whose
// TTL really elapses: pass sleeps.
func openRedis(t testing.TB, c redis.UniversalClient, o backendOpts) *testBackend {
	if o.prefix == "" {
		o.prefix = "t" + strconv.FormatInt(prefixes.Add(1), 10)
	}
	r, err := NewRedis(RedisConfig{Client: c, Prefix: o.prefix, HistorySize: o.size, HistoryTTL: o.ttl})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return &testBackend{
		Backend: r,
		pass:    func(d time.Duration) { time.Sleep(d) },
		subscribed: func(ch string) bool {
			n, err := c.PubSubNumSub(context.Background(), r.key(ch, "pub")).Result()
			return err != nil || n[r.key(ch, "pub")] > 0
		},
	}
}

// run runs b's delivery to h until the test ends.
func run(t testing.TB, b Backend, h Handler) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = b.Run(ctx, h)
	}()
	t.Cleanup(func() { cancel(); <-done })
}

// recorder is a Handler that keeps what it is given.
type recorder struct {
	mu      sync.Mutex
	events  []Event
	resyncs int
}

func (r *recorder) HandleEvent(ev Event) {
	r.mu.Lock()
	r.events = append(r.events, ev)
	r.mu.Unlock()
}

func (r *recorder) Resync() {
	r.mu.Lock()
	r.resyncs++
	r.mu.Unlock()
}

// of returns the events received for channel.
func (r *recorder) of(channel string) []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []Event
	for _, ev := range r.events {
		if ev.Channel == channel {
			out = append(out, ev)
		}
	}
	return out
}

// eventually polls cond until it holds or 10s pass.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func publishN(t testing.TB, b Backend, channel string, n int) []Event {
	t.Helper()
	var out []Event
	for i := 0; i < n; i++ {
		ev, err := b.Publish(context.Background(), channel, Publication{Type: "t", Data: json.RawMessage(fmt.Sprintf(`{"i":%d}`, i))})
		if err != nil {
			t.Fatalf("publish %d: %v", i, err)
		}
		out = append(out, ev)
	}
	return out
}

// offsets checks evs are one epoch's offsets from..to, and returns the epoch.
func offsets(t testing.TB, evs []Event, from, to uint64) string {
	t.Helper()
	if len(evs) != int(to-from+1) {
		t.Fatalf("got %d events, want offsets %d..%d: %v", len(evs), from, to, ids(evs))
	}
	for i, ev := range evs {
		if ev.Cursor.Offset != from+uint64(i) || ev.Cursor.Epoch != evs[0].Cursor.Epoch || ev.ID != ev.Cursor.String() {
			t.Fatalf("event %d: got %s, want offsets %d..%d in one epoch: %v", i, ev.ID, from, to, ids(evs))
		}
	}
	if len(evs) == 0 {
		return ""
	}
	return evs[0].Cursor.Epoch
}

func ids(evs []Event) []string {
	out := make([]string, len(evs))
	for i, ev := range evs {
		out[i] = ev.ID
	}
	return out
}

func TestBackendPublishAssignsDenseOffsets(t *testing.T) {
	t.Parallel()
	for _, bf := range backends() {
		t.Run(bf.name, func(t *testing.T) {
			t.Parallel()
			b := bf.open(t, backendOpts{})
			ctx := context.Background()
			if top, err := b.Top(ctx, "c"); err != nil || !top.IsZero() {
				t.Fatalf("Top of a new channel = %v, %v; want zero", top, err)
			}
			if evs, top, err := b.History(ctx, "c", Cursor{}); err != nil || len(evs) != 0 || !top.IsZero() {
				t.Fatalf("History of a new channel = %v, %v, %v", evs, top, err)
			}
			if _, _, err := b.History(ctx, "c", Cursor{Epoch: "abc", Offset: 1}); !errors.Is(err, ErrUnrecoverable) {
				t.Fatalf("History of a new channel from a cursor: %v, want ErrUnrecoverable", err)
			}
			evs := publishN(t, b, "c", 5)
			epoch := offsets(t, evs, 1, 5)
			if top, err := b.Top(ctx, "c"); err != nil || top != evs[4].Cursor {
				t.Fatalf("Top = %v, %v; want %v", top, err, evs[4].Cursor)
			}
			other := publishN(t, b, "d", 1)[0]
			if other.Cursor.Offset != 1 || other.Cursor.Epoch == epoch {
				t.Fatalf("another channel's first event is %s; want offset 1 in its own epoch", other.ID)
			}
		})
	}
}

func TestBackendEventRoundTrip(t *testing.T) {
	t.Parallel()
	for _, bf := range backends() {
		t.Run(bf.name, func(t *testing.T) {
			t.Parallel()
			b := bf.open(t, backendOpts{})
			ctx := context.Background()
			pubs := []Publication{
				{Type: "image.added", Data: json.RawMessage(`{"note":"a b\nc – ü","n":1}`)},
				{Type: "type with spaces 12 ", Data: json.RawMessage(`"12 x"`)},
				{Type: "no.data"},
			}
			for _, p := range pubs {
				if _, err := b.Publish(ctx, "session:x-1_2.3@a", p); err != nil {
					t.Fatal(err)
				}
			}
			evs, _, err := b.History(ctx, "session:x-1_2.3@a", Cursor{})
			if err != nil || len(evs) != len(pubs) {
				t.Fatalf("History = %v, %v", evs, err)
			}
			for i, ev := range evs {
				if ev.Channel != "session:x-1_2.3@a" || ev.Type != pubs[i].Type || string(ev.Data) != string(pubs[i].Data) ||
					time.Since(ev.TS) > time.Minute || ev.TS.Location() != time.UTC {
					t.Errorf("event %d = %+v, published %+v", i, ev, pubs[i])
				}
			}
			if evs[2].Data != nil {
				t.Errorf("empty data came back as %q, want nil (omitted in JSON)", evs[2].Data)
			}
		})
	}
}

func TestBackendHistory(t *testing.T) {
	t.Parallel()
	for _, bf := range backends() {
		t.Run(bf.name, func(t *testing.T) {
			t.Parallel()
			b := bf.open(t, backendOpts{size: 10})
			ctx := context.Background()
			pub := publishN(t, b, "c", 5)
			epoch, top := pub[0].Cursor.Epoch, pub[4].Cursor
			ok := []struct {
				since Cursor
				from  uint64
			}{
				{Cursor{}, 1},
				{Cursor{Epoch: epoch}, 1},
				{Cursor{Epoch: epoch, Offset: 2}, 3},
				{top, 6},
			}
			for _, c := range ok {
				evs, gotTop, err := b.History(ctx, "c", c.since)
				if err != nil || gotTop != top {
					t.Fatalf("History(%v) = top %v, %v; want top %v", c.since, gotTop, err, top)
				}
				offsets(t, evs, c.from, 5)
				for i, ev := range evs {
					if string(ev.Data) != string(pub[int(c.from)-1+i].Data) {
						t.Fatalf("History(%v)[%d] data %s, want %s", c.since, i, ev.Data, pub[int(c.from)-1+i].Data)
					}
				}
			}
			bad := []Cursor{
				{Epoch: epoch, Offset: 6},           // ahead of top
				{Epoch: "zzzzzzzzzzzzz", Offset: 2}, // another epoch
				{Offset: 3},                         // an offset without an epoch
			}
			for _, since := range bad {
				evs, gotTop, err := b.History(ctx, "c", since)
				if !errors.Is(err, ErrUnrecoverable) || gotTop != top || len(evs) != 0 {
					t.Errorf("History(%v) = %d events, top %v, %v; want ErrUnrecoverable, top %v", since, len(evs), gotTop, err, top)
				}
			}
		})
	}
}

func TestBackendTrimsToHistorySize(t *testing.T) {
	t.Parallel()
	for _, bf := range backends() {
		t.Run(bf.name, func(t *testing.T) {
			t.Parallel()
			b := bf.open(t, backendOpts{size: 3})
			ctx := context.Background()
			pub := publishN(t, b, "c", 7) // keeps 5, 6, 7
			epoch, top := pub[0].Cursor.Epoch, pub[6].Cursor
			for _, since := range []Cursor{{}, {Epoch: epoch}, {Epoch: epoch, Offset: 3}} {
				if _, gotTop, err := b.History(ctx, "c", since); !errors.Is(err, ErrUnrecoverable) || gotTop != top {
					t.Errorf("History(%v) after trimming = top %v, %v; want ErrUnrecoverable, top %v", since, gotTop, err, top)
				}
			}
			for since, from := range map[uint64]uint64{4: 5, 5: 6, 7: 8} {
				evs, _, err := b.History(ctx, "c", Cursor{Epoch: epoch, Offset: since})
				if err != nil {
					t.Fatalf("History(%d) = %v", since, err)
				}
				offsets(t, evs, from, 7)
			}
		})
	}
}

func TestBackendHistoryExpires(t *testing.T) {
	t.Parallel()
	for _, bf := range backends() {
		t.Run(bf.name, func(t *testing.T) {
			t.Parallel()
			// Redis really waits for its TTL: long enough not to expire
			// between the publishes of a loaded machine, short for the suite.
			const ttl = time.Second
			b := bf.open(t, backendOpts{ttl: ttl})
			ctx := context.Background()
			old := publishN(t, b, "c", 2)[1].Cursor
			b.pass(ttl + 200*time.Millisecond)

			if top, err := b.Top(ctx, "c"); err != nil || !top.IsZero() {
				t.Fatalf("Top after expiry = %v, %v; want zero", top, err)
			}
			if _, _, err := b.History(ctx, "c", old); !errors.Is(err, ErrUnrecoverable) {
				t.Fatalf("History(%v) after expiry: %v, want ErrUnrecoverable", old, err)
			}
			ev := publishN(t, b, "c", 1)[0]
			if ev.Cursor.Offset != 1 || ev.Cursor.Epoch == old.Epoch {
				t.Fatalf("first event after expiry is %s; want offset 1 of a new epoch (old %s)", ev.ID, old)
			}
			if _, top, err := b.History(ctx, "c", old); !errors.Is(err, ErrUnrecoverable) || top != ev.Cursor {
				t.Fatalf("History(old epoch) = top %v, %v; want ErrUnrecoverable, top %v", top, err, ev.Cursor)
			}
		})
	}
}

func TestBackendConcurrentPublishers(t *testing.T) {
	t.Parallel()
	for _, bf := range backends() {
		t.Run(bf.name, func(t *testing.T) {
			t.Parallel()
			b := bf.open(t, backendOpts{})
			rec := &recorder{}
			run(t, b, rec)
			ctx := context.Background()
			if err := b.Subscribe(ctx, "c"); err != nil {
				t.Fatal(err)
			}
			const publishers, each = 4, 50
			var wg sync.WaitGroup
			seen := make(chan Event, publishers*each)
			for p := 0; p < publishers; p++ {
				wg.Go(func() {
					for i := 0; i < each; i++ {
						ev, err := b.Publish(ctx, "c", Publication{Type: "t"})
						if err != nil {
							t.Error(err)
							return
						}
						seen <- ev
					}
				})
			}
			wg.Wait()
			close(seen)
			got := make(map[uint64]bool)
			for ev := range seen {
				if got[ev.Cursor.Offset] {
					t.Fatalf("offset %d assigned twice", ev.Cursor.Offset)
				}
				got[ev.Cursor.Offset] = true
			}
			for off := uint64(1); off <= publishers*each; off++ {
				if !got[off] {
					t.Fatalf("offset %d never assigned", off)
				}
			}
			eventually(t, "every event is delivered live", func() bool { return len(rec.of("c")) >= publishers*each })
			offsets(t, rec.of("c"), 1, publishers*each)
		})
	}
}

func TestBackendUnsubscribeStopsDelivery(t *testing.T) {
	t.Parallel()
	for _, bf := range backends() {
		t.Run(bf.name, func(t *testing.T) {
			t.Parallel()
			b := bf.open(t, backendOpts{})
			rec := &recorder{}
			run(t, b, rec)
			ctx := context.Background()
			publishN(t, b, "never", 1) // no node subscribed: nothing delivered
			if err := b.Subscribe(ctx, "gone"); err != nil {
				t.Fatal(err)
			}
			if err := b.Unsubscribe(ctx, "gone"); err != nil {
				t.Fatal(err)
			}
			// Subscribing after unsubscribing orders the two on the node's link.
			if err := b.Subscribe(ctx, "kept"); err != nil {
				t.Fatal(err)
			}
			publishN(t, b, "gone", 1)
			publishN(t, b, "kept", 1)
			eventually(t, "the subscribed channel's event arrives", func() bool { return len(rec.of("kept")) == 1 })
			if n := len(rec.of("gone")) + len(rec.of("never")); n != 0 {
				t.Fatalf("%d events delivered for channels the node is not subscribed to", n)
			}
			if !b.subscribed("kept") || b.subscribed("gone") {
				t.Fatal("subscription state does not match Subscribe/Unsubscribe")
			}
		})
	}
}
