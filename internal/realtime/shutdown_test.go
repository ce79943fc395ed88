package realtime

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/handoff-health/handoff/client"
)

// TestShutdownGoesAway shuts a node down under a raw socket and a Go
// client: both see 1001, the node refuses new sockets, and the Go client
// resumes on the other node (same hub) without losing an event.
func TestShutdownGoesAway(t *testing.T) {
	t.Parallel()
	const channel = "session:shutdown"
	v := newVerifier(t)
	h := memoryHub(t)
	a := startNode(t, h, v, Config{})
	b := startNode(t, h, v, Config{})
	tok := issue(t, v, "f", "p", time.Hour)

	r := connect(t, a.url, tok)
	lb := &balancer{}
	lb.point(a)
	cl := newClient(t, a.url, v, lb.httpClient())
	if err := cl.Subscribe(channel, ""); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = cl.Run(ctx) }()
	waitForKind(t, cl, client.KindSubscribed)
	first := publish(t, h, channel, "image.added", 5)
	got, _, _ := collect(t, cl, 5, 10*time.Second)
	assertSameEvents(t, got, first)

	lb.point(b)
	rawEnd := make(chan error, 1)
	go func() { // the raw socket answers the close handshake while Shutdown waits
		for {
			if _, err := r.read(10 * time.Second); err != nil {
				rawEnd <- err
				return
			}
		}
	}()
	sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer scancel()
	if err := a.srv.Shutdown(sctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if code := websocket.CloseStatus(<-rawEnd); code != websocket.StatusGoingAway {
		t.Fatalf("raw socket closed with %d, want 1001", code)
	}
	if ev := waitForKind(t, cl, client.KindDisconnected); !errors.Is(ev.Err, client.ErrGoingAway) {
		t.Fatalf("client disconnected with %v, want ErrGoingAway", ev.Err)
	}

	// Published while the client moves: it must still get them all.
	second := publish(t, h, channel, "image.added", 5)
	waitForKind(t, cl, client.KindConnected)
	got, resyncs, _ := collect(t, cl, 5, 10*time.Second)
	assertSameEvents(t, got, second)
	if resyncs != 0 {
		t.Errorf("%d resyncs", resyncs)
	}

	resp, err := http.Get(a.http.URL + Path)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("after Shutdown: status %d, want 503", resp.StatusCode)
	}
}
