package hub

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/handoff-health/handoff/internal/testutil"
)

// The conformance suite: every Backend must pass it, from one table. The
// memory rows run everywhere; the Redis and Redis Cluster rows are added by
// backend_redis_integration_test.go under the integration tag.

func TestMain(m *testing.M) {
	// go-redis logs every failed dial; the outage tests cause them on purpose.
	redis.SetLogger(quietLogger{})
	testutil.VerifyNoLeaks(m, goleak.Cleanup(func(code int) {
		for _, f := range teardown {
			f()
		}
		os.Exit(code)
	}))
}

// teardown runs after every test of the package (and the leak check), for
// servers that tests share.
var teardown []func()

type quietLogger struct{}

func (quietLogger) Printf(context.Context, string, ...any) {}

// backendOpts are the limits a test asks of a fresh backend.
type backendOpts struct {
	size int
	ttl  time.Duration
	// prefix is the Redis key prefix; nodes of one deployment share it.
	// Zero means one of the backend's own.
	prefix string
	// dedupe bounds the remembered message ids; zero means the defaults.
	dedupe DedupeConfig
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
	// cluster marks the Redis Cluster rows: slow to start, so hub tests
	// and -short leave them out.
	cluster bool
}

// backendTable is the conformance table; the integration build adds rows.
var backendTable = []backendFactory{{name: "memory", open: openMemory}}

// backends returns the rows a conformance test runs; testing.Short keeps
// out the cluster.
func backends() []backendFactory {
	if !testing.Short() {
		return backendTable
	}
	return hubBackends()
}

// hubBackends are the backends hub tests run on: memory and, with the
// integration tag, one standalone Redis.
func hubBackends() []backendFactory {
	var out []backendFactory
	for _, bf := range backendTable {
		if !bf.cluster {
			out = append(out, bf)
		}
	}
	return out
}

func openMemory(t testing.TB, o backendOpts) *testBackend {
	clock := testutil.NewClock()
	m := NewMemory(MemoryConfig{HistorySize: o.size, HistoryTTL: o.ttl, Dedupe: o.dedupe, Now: clock.Now})
	t.Cleanup(func() { m.Close() })
	return &testBackend{
		Backend: m,
		pass:    clock.Advance,
		subscribed: func(ch string) bool {
			sh := m.shard(ch)
			sh.mu.Lock()
			defer sh.mu.Unlock()
			return sh.subs[ch]
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
	if len(evs) == 0 {
		testutil.Equal(t, "number of events", int(to-from+1), 0)
		return ""
	}
	epoch := evs[0].Cursor.Epoch
	var want []string
	for off := from; off <= to; off++ {
		want = append(want, Cursor{Epoch: epoch, Offset: off}.String())
	}
	testutil.Equal(t, fmt.Sprintf("event ids (offsets %d..%d of epoch %s)", from, to, epoch), want, ids(evs))
	var cursors []string
	for _, ev := range evs {
		cursors = append(cursors, ev.Cursor.String())
	}
	testutil.Equal(t, "event cursors (the ids parsed)", want, cursors)
	return epoch
}

func ids(evs []Event) []string {
	out := make([]string, len(evs))
	for i, ev := range evs {
		out[i] = ev.ID
	}
	return out
}

// historyResult is a History call's outcome, for one comparison.
type historyResult struct {
	IDs []string
	Top Cursor
	Err error
}

// readHistory calls b.History and returns what it gave as a historyResult.
func readHistory(b Backend, channel string, since Cursor) historyResult {
	evs, top, err := b.History(context.Background(), channel, since)
	return historyResult{IDs: ids(evs), Top: top, Err: err}
}

// equateErrors compares errors with errors.Is, and nil slices with empty.
var equateErrors = cmp.Options{cmpopts.EquateErrors(), cmpopts.EquateEmpty()}

// noErr fails the test when err is not nil, saying what failed.
func noErr(t testing.TB, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// topOf returns b's Top of channel, failing the test on an error.
func topOf(t testing.TB, b Backend, channel string) Cursor {
	t.Helper()
	top, err := b.Top(context.Background(), channel)
	noErr(t, "Top("+channel+")", err)
	return top
}

func TestBackendPublishAssignsDenseOffsets(t *testing.T) {
	t.Parallel()
	for _, bf := range backends() {
		t.Run(bf.name, func(t *testing.T) {
			t.Parallel()
			b := bf.open(t, backendOpts{})
			testutil.Equal(t, "Top of a new channel", Cursor{}, topOf(t, b, "c"))
			testutil.Equal(t, "History of a new channel", historyResult{}, readHistory(b, "c", Cursor{}), equateErrors)
			testutil.Equal(t, "History of a new channel from a cursor",
				historyResult{Err: ErrUnrecoverable}, readHistory(b, "c", Cursor{Epoch: "abc", Offset: 1}), equateErrors)
			evs := publishN(t, b, "c", 5)
			epoch := offsets(t, evs, 1, 5)
			testutil.Equal(t, "Top after 5 publishes", evs[4].Cursor, topOf(t, b, "c"))
			other := publishN(t, b, "d", 1)[0]
			testutil.Equal(t, "offset of another channel's first event", uint64(1), other.Cursor.Offset)
			if other.Cursor.Epoch == epoch {
				t.Fatalf("another channel's first event %s shares the epoch of channel c", other.ID)
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
			const channel = "session:x-1_2.3@a"
			pubs := []Publication{
				{Type: "image.added", Data: json.RawMessage(`{"note":"a b\nc – ü","n":1}`)},
				{Type: "type with spaces 12 ", Data: json.RawMessage(`"12 x"`)},
				{Type: "no.data"},
			}
			for _, p := range pubs {
				_, err := b.Publish(ctx, channel, p)
				noErr(t, "Publish", err)
			}
			evs, _, err := b.History(ctx, channel, Cursor{})
			noErr(t, "History", err)
			testutil.Equal(t, "number of events in history", len(pubs), len(evs))
			type roundTrip struct {
				Channel, Type, Data string
				UTC                 bool
			}
			for i, ev := range evs {
				want := roundTrip{Channel: channel, Type: pubs[i].Type, Data: string(pubs[i].Data), UTC: true}
				got := roundTrip{Channel: ev.Channel, Type: ev.Type, Data: string(ev.Data), UTC: ev.TS.Location() == time.UTC}
				testutil.Check(t, fmt.Sprintf("event %d", i), want, got)
				if age := time.Since(ev.TS); age > time.Minute {
					t.Errorf("event %d: TS %v is %v old, want the publish time", i, ev.TS, age)
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
				evs, gotTop, err := b.History(context.Background(), "c", c.since)
				noErr(t, fmt.Sprintf("History(%v)", c.since), err)
				testutil.Equal(t, fmt.Sprintf("History(%v) top", c.since), top, gotTop)
				offsets(t, evs, c.from, 5)
				for i, ev := range evs {
					testutil.Equal(t, fmt.Sprintf("History(%v)[%d] data", c.since, i),
						string(pub[int(c.from)-1+i].Data), string(ev.Data))
				}
			}
			bad := []Cursor{
				{Epoch: epoch, Offset: 6},           // ahead of top
				{Epoch: "zzzzzzzzzzzzz", Offset: 2}, // another epoch
				{Offset: 3},                         // an offset without an epoch
			}
			for _, since := range bad {
				testutil.Check(t, fmt.Sprintf("History(%v)", since),
					historyResult{Top: top, Err: ErrUnrecoverable}, readHistory(b, "c", since), equateErrors)
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
				testutil.Check(t, fmt.Sprintf("History(%v) after trimming", since),
					historyResult{Top: top, Err: ErrUnrecoverable}, readHistory(b, "c", since), equateErrors)
			}
			for since, from := range map[uint64]uint64{4: 5, 5: 6, 7: 8} {
				evs, _, err := b.History(ctx, "c", Cursor{Epoch: epoch, Offset: since})
				noErr(t, fmt.Sprintf("History(%d)", since), err)
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
			old := publishN(t, b, "c", 2)[1].Cursor
			b.pass(ttl + 200*time.Millisecond)

			testutil.Equal(t, "Top after expiry", Cursor{}, topOf(t, b, "c"))
			testutil.Equal(t, fmt.Sprintf("History(%v) after expiry", old),
				historyResult{Err: ErrUnrecoverable}, readHistory(b, "c", old), equateErrors)
			ev := publishN(t, b, "c", 1)[0]
			testutil.Equal(t, "offset of the first event after expiry", uint64(1), ev.Cursor.Offset)
			if ev.Cursor.Epoch == old.Epoch {
				t.Fatalf("first event after expiry is %s, in the expired epoch (old %s)", ev.ID, old)
			}
			testutil.Equal(t, "History(old epoch) after a new publish",
				historyResult{Top: ev.Cursor, Err: ErrUnrecoverable}, readHistory(b, "c", old), equateErrors)
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
			noErr(t, "Subscribe", b.Subscribe(ctx, "c"))
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
			testutil.Eventually(t, "every event is delivered live", func() bool { return len(rec.of("c")) >= publishers*each })
			offsets(t, rec.of("c"), 1, publishers*each)
		})
	}
}

// TestBackendManyPublishersManyChannels: many concurrent publishers on
// several channels (on Redis, batched into shared script calls) lose
// nothing and duplicate nothing; each channel's offsets are dense; each
// publisher's events keep its order on every channel; and history, live
// delivery and what Publish returned agree event for event.
func TestBackendManyPublishersManyChannels(t *testing.T) {
	t.Parallel()
	for _, bf := range backends() {
		t.Run(bf.name, func(t *testing.T) {
			t.Parallel()
			const publishers, each, nch = 32, 40, 6
			b := bf.open(t, backendOpts{size: publishers * each})
			rec := &recorder{}
			run(t, b, rec)
			ctx := context.Background()
			chans := make([]string, nch)
			for i := range chans {
				chans[i] = fmt.Sprintf("many-%d", i)
				noErr(t, "Subscribe", b.Subscribe(ctx, chans[i]))
			}
			type sent struct {
				p, i int
				ev   Event
			}
			results := make([][]sent, publishers)
			var wg sync.WaitGroup
			for p := range publishers {
				wg.Go(func() {
					for i := range each {
						ch := chans[(p+i)%nch]
						data := json.RawMessage(fmt.Sprintf(`{"p":%d,"i":%d}`, p, i))
						ev, err := b.Publish(ctx, ch, Publication{Type: "t", Data: data})
						if err != nil {
							t.Errorf("publisher %d event %d: %v", p, i, err)
							return
						}
						if ev.Channel != ch || string(ev.Data) != string(data) {
							t.Errorf("publisher %d event %d came back as %s %s", p, i, ev.Channel, ev.Data)
						}
						results[p] = append(results[p], sent{p, i, ev})
					}
				})
			}
			wg.Wait()
			if t.Failed() {
				return
			}
			byID := make(map[string]sent)
			perChannel := make(map[string]int)
			for _, rs := range results {
				last := make(map[string]uint64) // channel -> this publisher's last offset
				for _, r := range rs {
					if prev, dup := byID[r.ev.ID]; dup {
						t.Fatalf("%s assigned to publisher %d event %d and %d event %d", r.ev.ID, prev.p, prev.i, r.p, r.i)
					}
					byID[r.ev.ID] = r
					if r.ev.Cursor.Offset <= last[r.ev.Channel] {
						t.Errorf("publisher %d event %d got offset %d on %s after %d", r.p, r.i, r.ev.Cursor.Offset, r.ev.Channel, last[r.ev.Channel])
					}
					last[r.ev.Channel] = r.ev.Cursor.Offset
					perChannel[r.ev.Channel]++
				}
			}
			for _, ch := range chans {
				n := perChannel[ch]
				hist, _, err := b.History(ctx, ch, Cursor{})
				noErr(t, "History", err)
				offsets(t, hist, 1, uint64(n))
				for _, ev := range hist {
					r, ok := byID[ev.ID]
					if !ok || r.ev.Channel != ch || string(r.ev.Data) != string(ev.Data) {
						t.Fatalf("%s in %s's history is %s, which no publisher was given", ev.ID, ch, ev.Data)
					}
				}
				testutil.Eventually(t, "every event of "+ch+" is delivered live", func() bool { return len(rec.of(ch)) >= n })
				testutil.Equal(t, "live events of "+ch+" (the history's, in order, once each)", ids(hist), ids(rec.of(ch)))
			}
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
			noErr(t, "Subscribe(gone)", b.Subscribe(ctx, "gone"))
			noErr(t, "Unsubscribe(gone)", b.Unsubscribe(ctx, "gone"))
			// Subscribing after unsubscribing orders the two on the node's link.
			noErr(t, "Subscribe(kept)", b.Subscribe(ctx, "kept"))
			publishN(t, b, "gone", 1)
			publishN(t, b, "kept", 1)
			testutil.Eventually(t, "the subscribed channel's event arrives", func() bool { return len(rec.of("kept")) == 1 })
			testutil.Equal(t, "events delivered for channels the node is not subscribed to",
				0, len(rec.of("gone"))+len(rec.of("never")))
			testutil.Equal(t, "subscription state",
				map[string]bool{"kept": true, "gone": false},
				map[string]bool{"kept": b.subscribed("kept"), "gone": b.subscribed("gone")})
		})
	}
}
