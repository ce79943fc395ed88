package server_test

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/ably/ably-go/ably"

	"github.com/handoff-health/handoff/client"
	"github.com/handoff-health/handoff/internal/testutil"
)

// TestAblyRealtimeOnNode: through the node's whole edge, the real ably-go
// realtime client (msgpack, its default) connects to the Ably socket at
// "/", receives what the REST API and a realtime publish put on a session
// channel, the desktop's native socket sees the same events, a plain
// GET / is still a 404, and stopping the node sends DISCONNECTED.
func TestAblyRealtimeOnNode(t *testing.T) {
	t.Parallel()
	n := startNode(t, devConfig(t))
	jwt := n.devToken()
	s := n.createSession(jwt, "enc-ably-rt")
	desktop := n.realtime(t, jwt)
	if err := desktop.Subscribe(s.Channel, ""); err != nil {
		t.Fatal(err)
	}
	testutil.Next(t, desktop, client.KindSubscribed)

	rt, err := ably.NewRealtime(ably.WithKey(apiKeys), ably.WithEndpoint("127.0.0.1"), ably.WithPort(n.port),
		ably.WithTLS(false), ably.WithInsecureAllowBasicAuthWithoutTLS(), ably.WithLogLevel(ably.LogNone))
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	var mu sync.Mutex
	var names []string
	ch := rt.Channels.Get(s.Channel)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := ch.SubscribeAll(ctx, func(m *ably.Message) {
		mu.Lock()
		names = append(names, m.Name)
		mu.Unlock()
	}); err != nil {
		t.Fatal(err)
	}
	if err := ch.Publish(ctx, "integrator.rt", map[string]any{"k": 1}); err != nil {
		t.Fatal(err)
	}
	if err := n.ablyREST(t, apiKeys).Channels.Get(s.Channel).Publish(ctx, "integrator.rest", "x"); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, "both messages on the Ably socket", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(names) == 2
	})
	testutil.Equal(t, "names", []string{"integrator.rt", "integrator.rest"}, names)
	testutil.Equal(t, "desktop sees the realtime publish", "integrator.rt", testutil.NextEvent(t, desktop, s.Channel).Type)

	resp, err := http.Get(n.url + "/")
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	testutil.Equal(t, "plain GET /", http.StatusNotFound, resp.StatusCode)

	disconnected := make(chan struct{}, 1)
	rt.Connection.On(ably.ConnectionEventDisconnected, func(ably.ConnectionStateChange) {
		select {
		case disconnected <- struct{}{}:
		default:
		}
	})
	if err := n.stop(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-disconnected:
	case <-ctx.Done():
		t.Fatal("no DISCONNECTED when the node stopped")
	}
}
