//go:build integration

package hub

import (
	"bytes"
	"context"
	"net"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/handoff-health/handoff/internal/testutil"
)

// stallProxy is a TCP proxy in front of a redis-server that holds every
// request containing marker (and whatever follows it on that connection)
// until release: a Redis that stops answering one channel's reads while
// the rest of its traffic flows.
type stallProxy struct {
	addr    string
	target  string
	marker  []byte
	ln      net.Listener
	held    atomic.Int64 // requests held now
	release chan struct{}
	once    sync.Once

	mu    sync.Mutex
	conns []net.Conn
	wg    sync.WaitGroup
}

// startStallProxy listens on a free loopback port and forwards to target
// until the test ends.
func startStallProxy(t testing.TB, target, marker string) *stallProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &stallProxy{addr: ln.Addr().String(), target: target, marker: []byte(marker), ln: ln, release: make(chan struct{})}
	p.wg.Go(p.accept)
	t.Cleanup(p.close)
	return p
}

func (p *stallProxy) accept() {
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return // closed
		}
		server, err := net.Dial("tcp", p.target)
		if err != nil {
			client.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, client, server)
		p.mu.Unlock()
		// When one direction ends, closing both ends the other.
		p.wg.Go(func() {
			p.forward(client, server, false)
			client.Close()
			server.Close()
		})
		p.wg.Go(func() {
			p.forward(server, client, true)
			client.Close()
			server.Close()
		})
	}
}

// forward copies src to dst; requests (client to server) that contain the
// marker wait for release first.
func (p *stallProxy) forward(dst, src net.Conn, requests bool) {
	buf := make([]byte, 32<<10)
	var tail []byte // the end of the previous read, for a marker split across reads
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if requests {
				seen := append(tail, buf[:n]...)
				if bytes.Contains(seen, p.marker) {
					p.hold()
				}
				tail = append(tail[:0], seen[max(0, len(seen)-len(p.marker)+1):]...)
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (p *stallProxy) hold() {
	p.held.Add(1)
	defer p.held.Add(-1)
	<-p.release
}

// unblock lets every held and later request through.
func (p *stallProxy) unblock() { p.once.Do(func() { close(p.release) }) }

func (p *stallProxy) close() {
	p.unblock()
	p.ln.Close()
	p.mu.Lock()
	for _, c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

// watchedBackend counts the History calls of one channel that have not
// returned yet: "the slow read is still blocked", observed directly.
type watchedBackend struct {
	Backend
	channel  string
	inflight atomic.Int64
}

func (w *watchedBackend) History(ctx context.Context, ch string, since Cursor) ([]Event, Cursor, error) {
	if ch == w.channel {
		w.inflight.Add(1)
		defer w.inflight.Add(-1)
	}
	return w.Backend.History(ctx, ch, since)
}

// publishUnannounced stores an event in channel's history as Publish does,
// but announces it on a PubSub channel nobody reads: every node misses it
// live, as when a message is lost.
func publishUnannounced(t testing.TB, r *Redis, channel string) Event {
	t.Helper()
	res, err := r.publish(context.Background(), channel, r.key(channel, "nowhere"), Publication{Type: "t"})
	noErr(t, "publish.lua", err)
	ev, _, err := parseEvent(channel, res)
	noErr(t, "parse the stored event", err)
	return ev
}

// TestSlowRedisReadStallsOnlyItsChannel: a node whose Redis stops
// answering one channel's history reads (a stalled proxy) keeps delivering
// every other channel's live events, on the same delivery shard, while that
// read is still blocked; and once it returns, the stuck channel's
// subscribers get everything in order, each event once. The slow read
// comes from gap repair or from a Subscribe with a cursor.
func TestSlowRedisReadStallsOnlyItsChannel(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		// stall makes the node read slow's history, through the proxy
		// that holds it, and returns what to check once it is released.
		stall func(t *testing.T, h *Hub, publisher *testBackend, live *collector) (after func())
		// liveWhileStalled is how many events slow's existing subscriber
		// has while the read is held.
		liveWhileStalled int
	}{
		{
			name: "gap repair",
			stall: func(t *testing.T, h *Hub, publisher *testBackend, live *collector) func() {
				publishUnannounced(t, publisher.Backend.(*Redis), "slow") // offset 1, missed live
				publishN(t, publisher, "slow", 1)                         // offset 2 shows the gap
				return func() {}
			},
			liveWhileStalled: 0, // held back until it has offset 1
		},
		{
			name: "subscribe with a cursor",
			stall: func(t *testing.T, h *Hub, publisher *testBackend, live *collector) func() {
				publishN(t, publisher, "slow", 2)
				testutil.Eventually(t, "slow's live subscriber has the first events", func() bool { return len(live.events()) == 2 })
				late := &collector{}
				done := make(chan error, 1)
				go func() {
					_, err := h.Subscribe(context.Background(), "slow", &Cursor{}, late.sink)
					done <- err
				}()
				return func() {
					noErr(t, "Subscribe with a cursor", <-done)
					testutil.Eventually(t, "the new subscriber catches up", func() bool { return len(late.events()) == 4 })
					offsets(t, late.events(), 1, 4)
				}
			},
			liveWhileStalled: 4, // its own live events flow while the new subscriber reads
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := testutil.StartRedis(t)
			// Only history reads of "slow" name its stream key.
			proxy := startStallProxy(t, srv.Addr, "{slow}:stream")
			// No read timeout: the held read stays blocked until released,
			// however long the rest takes on a loaded machine.
			c := redis.NewClient(&redis.Options{Addr: proxy.addr, ReadTimeout: -1})
			t.Cleanup(func() { c.Close() })
			r, err := NewRedis(RedisConfig{Client: c, Shards: 1}) // every channel on one delivery goroutine
			noErr(t, "NewRedis", err)
			t.Cleanup(func() { r.Close() })
			watched := &watchedBackend{Backend: r, channel: "slow"}
			h := New(watched)
			runHub(t, h)
			t.Cleanup(proxy.unblock) // runs first: Run waits for the held repair
			publisher := openRedis(t, newRedisClient(t, srv.Addr), backendOpts{prefix: "handoff"})

			live, fast := &collector{}, &collector{}
			subscribe(t, h, "slow", nil, live)
			subscribe(t, h, "fast", nil, fast)

			after := tc.stall(t, h, publisher, live)
			testutil.Eventually(t, "slow's history read is held by the proxy", func() bool {
				return proxy.held.Load() == 1 && watched.inflight.Load() == 1
			})
			publishN(t, publisher, "slow", 2)
			publishN(t, publisher, "fast", 5)
			testutil.Eventually(t, "fast's events arrive", func() bool { return len(fast.events()) == 5 })
			testutil.Eventually(t, "slow's live subscriber has what it may have", func() bool {
				return len(live.events()) >= tc.liveWhileStalled
			})
			// The point: all of that happened while slow's read was blocked.
			testutil.Equal(t, "slow's history reads not returned once fast's events arrived", int64(1), watched.inflight.Load())
			testutil.Equal(t, "slow's live subscriber's events while its read is held", tc.liveWhileStalled, len(live.events()))
			offsets(t, fast.events(), 1, 5)

			proxy.unblock()
			testutil.Eventually(t, "slow's live subscriber has every event", func() bool { return len(live.events()) == 4 })
			offsets(t, live.events(), 1, 4)
			after()
		})
	}
}
