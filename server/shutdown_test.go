package server_test

import (
	"errors"
	"net/http"
	"testing"

	"github.com/handoff-health/handoff/client"
	"github.com/handoff-health/handoff/internal/testutil"
)

// TestGracefulShutdown: when Serve's context ends, a connected socket is
// closed with 1001 (so the client resumes on another node), Serve returns
// nil, and the node accepts nothing more.
func TestGracefulShutdown(t *testing.T) {
	t.Parallel()
	n := startNode(t, devConfig(t))
	jwt := n.devToken()
	s := n.createSession(jwt, "enc-shutdown")
	c := n.realtime(t, jwt)
	if err := c.Subscribe(s.Channel, ""); err != nil {
		t.Fatal(err)
	}
	testutil.Next(t, c, client.KindSubscribed)

	stopped := make(chan error, 1)
	go func() { stopped <- n.stop() }()
	ev := testutil.Next(t, c, client.KindDisconnected)
	if !errors.Is(ev.Err, client.ErrGoingAway) {
		t.Fatalf("disconnected with %v, want ErrGoingAway", ev.Err)
	}
	var ce *client.CloseError
	if !errors.As(ev.Err, &ce) {
		t.Fatalf("disconnected with %v, want a *client.CloseError", ev.Err)
	}
	testutil.Equal(t, "close code", 1001, ce.Code)
	if err := <-stopped; err != nil {
		t.Fatalf("Serve returned %v", err)
	}
	if _, err := http.Get(n.url + "/healthz"); err == nil {
		t.Fatal("the node still accepts requests")
	}
}
