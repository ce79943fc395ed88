package realtime

import (
	"context"
	"math/rand/v2"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/handoff-health/handoff/client"
	"github.com/handoff-health/handoff/hub"
	"github.com/handoff-health/handoff/internal/auth"
	"github.com/handoff-health/handoff/internal/testutil"
)

// TestReplayAcrossDrops publishes 1,000 events at a steady pace while the
// socket is cut 50 times at random moments, alternately from the server
// side and the client side. The Go client must see every event exactly
// once, in order, with no resync.
func TestReplayAcrossDrops(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			testReplayAcrossDrops(t, b.hub(t))
		})
	}
}

func testReplayAcrossDrops(t *testing.T, h *hub.Hub) {
	const events, drops, channel = 1000, 50, "session:replay"
	v := newVerifier(t)
	n := startNode(t, h, v, Config{})
	tap := &connTap{}
	cl := newClient(t, n.url, v, tap.httpClient())
	if err := cl.Subscribe(channel, "0"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = cl.Run(ctx) }()

	var published []hub.Event
	pubDone := make(chan struct{})
	go func() {
		defer close(pubDone)
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for i := range events {
			<-tick.C
			ev, err := h.Publish(context.Background(), channel, hub.Publication{Type: "image.added", Data: []byte(`{"n":` + itoa(i) + `}`)})
			if err != nil {
				t.Errorf("publish %d: %v", i, err)
				return
			}
			published = append(published, ev)
		}
	}()
	dropsDone := make(chan int)
	go func() {
		done := 0
		for done < drops {
			time.Sleep(time.Duration(5+rand.IntN(50)) * time.Millisecond)
			var ok bool
			if done%2 == 0 {
				ok = n.dropOne()
			} else {
				ok = tap.dropCurrent()
			}
			if ok {
				done++
			}
		}
		dropsDone <- done
	}()

	got, resyncs, connects := collect(t, cl, events, 30*time.Second)
	<-pubDone
	if d := <-dropsDone; d != drops {
		t.Fatalf("only %d drops", d)
	}
	if resyncs != 0 {
		t.Errorf("%d resyncs, want none: history covered every gap", resyncs)
	}
	if connects < drops/2 {
		t.Errorf("only %d connections: the drops did not cut live sockets", connects)
	}
	t.Logf("%d events over %d connections", len(got), connects)
	assertSameEvents(t, got, published)
}

// collect reads the client until want events arrived, counting resyncs and
// connections on the way.
func collect(t *testing.T, cl *client.Client, want int, limit time.Duration) (got []client.Event, resyncs, connects int) {
	t.Helper()
	deadline := time.After(limit)
	for len(got) < want {
		select {
		case ev := <-cl.Events():
			switch ev.Kind {
			case client.KindEvent:
				got = append(got, ev)
			case client.KindResync:
				resyncs++
			case client.KindConnected:
				connects++
			case client.KindError:
				t.Fatalf("client error event: %v", ev.Err)
			}
		case <-deadline:
			t.Fatalf("received %d of %d events", len(got), want)
		}
	}
	return got, resyncs, connects
}

func assertSameEvents(t *testing.T, got []client.Event, want []hub.Event) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d events, want %d", len(got), len(want))
	}
	type seen struct{ ID, Type, Data string }
	for i := range want {
		testutil.Equal(t, "event "+itoa(i),
			seen{ID: want[i].ID, Type: want[i].Type, Data: string(want[i].Data)},
			seen{ID: got[i].ID, Type: got[i].Type, Data: string(got[i].Data)})
	}
}

// newClient returns a realtime client with fast reconnects and fresh tokens.
func newClient(t testing.TB, url string, v *auth.Verifier, hc *http.Client) *client.Client {
	t.Helper()
	cl, err := client.New(client.Config{
		URL:        url,
		Token:      func(context.Context) (string, error) { return issue(t, v, "f", "p", time.Hour), nil },
		HTTPClient: hc,
		MinBackoff: 2 * time.Millisecond,
		MaxBackoff: 20 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

// dropOne cuts one live socket from the server side, without a close frame.
func (n *node) dropOne() bool {
	n.srv.mu.Lock()
	defer n.srv.mu.Unlock()
	for c := range n.srv.conns {
		if !c.closing.Load() {
			_ = c.ws.CloseNow()
			return true
		}
	}
	return false
}

// connTap remembers the client's current TCP connection so a test can
// cut it from the client side.
type connTap struct {
	mu  sync.Mutex
	cur net.Conn
}

func (ct *connTap) httpClient() *http.Client {
	d := &net.Dialer{}
	return &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := d.DialContext(ctx, network, addr)
			if err == nil {
				ct.mu.Lock()
				ct.cur = c
				ct.mu.Unlock()
			}
			return c, err
		},
	}}
}

func (ct *connTap) dropCurrent() bool {
	ct.mu.Lock()
	defer ct.mu.Unlock()
	if ct.cur == nil {
		return false
	}
	_ = ct.cur.Close()
	ct.cur = nil
	return true
}
