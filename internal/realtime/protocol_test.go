package realtime

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/handoff-health/handoff/internal/auth"
	"github.com/handoff-health/handoff/internal/httpx"
)

func TestSubscribeReceiveUnsubscribe(t *testing.T) {
	t.Parallel()
	v := newVerifier(t)
	n := startNode(t, memoryHub(t), v, Config{})
	r := dialRaw(t, n.url, bearer(issue(t, v, "fac1", "gp1", time.Hour)))

	hello := r.next()
	if hello.Type != frameConnected || hello.ConnectionID == "" || hello.Heartbeat != DefaultHeartbeatInterval.Milliseconds() {
		t.Fatalf("connected frame = %+v", hello)
	}
	r.send(map[string]any{"type": "subscribe", "id": 7, "channel": "session:a"})
	sub := r.next()
	if sub.Type != frameSubscribed || string(sub.Ref) != "7" || sub.Channel != "session:a" || sub.Recovered == nil || !*sub.Recovered || sub.Cursor != "0" {
		t.Fatalf("subscribed frame = %+v", sub)
	}
	published := publish(t, n.hub, "session:a", "image.added", 3)
	for i, want := range published {
		f := r.next()
		if f.Type != frameEvent || f.Event == nil {
			t.Fatalf("frame %d = %+v, want event", i, f)
		}
		got := *f.Event
		if got.ID != want.ID || got.Channel != "session:a" || got.Type != "image.added" ||
			string(got.Data) != string(want.Data) || !got.TS.Equal(want.TS) {
			t.Fatalf("event %d = %+v, want %+v", i, got, want)
		}
	}
	r.send(map[string]any{"type": "ping", "id": "p1"})
	if f := r.next(); f.Type != framePong || string(f.Ref) != `"p1"` {
		t.Fatalf("pong = %+v", f)
	}
	r.send(map[string]any{"type": "unsubscribe", "id": "u", "channel": "session:a"})
	if f := r.next(); f.Type != frameUnsubscribed || f.Channel != "session:a" || string(f.Ref) != `"u"` {
		t.Fatalf("unsubscribed = %+v", f)
	}
	publish(t, n.hub, "session:a", "image.added", 1)
	r.send(map[string]any{"type": "ping"})
	if f := r.next(); f.Type != framePong {
		t.Fatalf("after unsubscribe got %+v, want only the pong", f)
	}
}

func TestResumeFromCursor(t *testing.T) {
	t.Parallel()
	v := newVerifier(t)
	n := startNode(t, memoryHub(t), v, Config{})
	evs := publish(t, n.hub, "session:r", "image.added", 5)
	tok := issue(t, v, "f", "p", time.Hour)

	r := connect(t, n.url, tok)
	r.send(map[string]any{"type": "subscribe", "channel": "session:r", "since": evs[1].ID})
	if f := r.next(); f.Type != frameSubscribed || !*f.Recovered || f.Cursor != evs[1].ID {
		t.Fatalf("subscribed = %+v, want recovered from %s", f, evs[1].ID)
	}
	for _, want := range evs[2:] {
		if f := r.next(); f.Event == nil || f.Event.ID != want.ID {
			t.Fatalf("replay got %+v, want %s", f, want.ID)
		}
	}

	// A cursor from another epoch cannot be replayed: recovered:false with
	// the channel's position, never a silent skip.
	r2 := connect(t, n.url, tok)
	r2.send(map[string]any{"type": "subscribe", "channel": "session:r", "since": "zzzzzzzzzzzzz-3"})
	if f := r2.next(); f.Type != frameSubscribed || *f.Recovered || f.Cursor != evs[4].ID {
		t.Fatalf("subscribed = %+v, want recovered:false at %s", f, evs[4].ID)
	}
}

func TestAuthMethods(t *testing.T) {
	t.Parallel()
	v := newVerifier(t)
	n := startNode(t, memoryHub(t), v, Config{})
	tok := issue(t, v, "f", "p", time.Hour)

	t.Run("query parameter", func(t *testing.T) {
		r := dialRaw(t, n.url+"?access_token="+tok, nil)
		if f := r.next(); f.Type != frameConnected {
			t.Fatalf("got %+v", f)
		}
	})
	t.Run("first frame", func(t *testing.T) {
		r := dialRaw(t, n.url, nil)
		r.send(map[string]any{"type": "auth", "token": tok})
		if f := r.next(); f.Type != frameConnected {
			t.Fatalf("got %+v", f)
		}
	})
	t.Run("re-auth before expiry", func(t *testing.T) {
		r := connect(t, n.url, issue(t, v, "f", "p", 2*time.Second))
		r.send(map[string]any{"type": "auth", "id": 1, "token": issue(t, v, "f", "p", time.Hour)})
		if f := r.next(); f.Type != frameAuthenticated || string(f.Ref) != "1" {
			t.Fatalf("got %+v", f)
		}
		// The socket outlives the first token: still answering after it
		// expired (a 2 s token has expired 2.5 s later, whatever the clock).
		time.Sleep(2500 * time.Millisecond)
		r.send(map[string]any{"type": "ping"})
		if f := r.next(); f.Type != framePong {
			t.Fatalf("got %+v", f)
		}
	})
}

func TestTokenExpiryClosesWith4009(t *testing.T) {
	t.Parallel()
	v := newVerifier(t)
	n := startNode(t, memoryHub(t), v, Config{})
	r := connect(t, n.url, issue(t, v, "f", "p", time.Second))
	r.expectClose(CloseTokenExpired)
}

func TestReauthAsSomeoneElseIsForbidden(t *testing.T) {
	t.Parallel()
	v := newVerifier(t)
	n := startNode(t, memoryHub(t), v, Config{})
	r := connect(t, n.url, issue(t, v, "f", "p", time.Hour))
	r.send(map[string]any{"type": "auth", "token": issue(t, v, "other-facility", "p", time.Hour)})
	r.expectClose(CloseForbidden)
}

func TestAuthorizeHook(t *testing.T) {
	t.Parallel()
	v := newVerifier(t)
	n := startNode(t, memoryHub(t), v, Config{
		Authorize: func(ctx context.Context, c auth.Claims, channel string) error {
			if channel == "session:"+c.Facility {
				return nil
			}
			return httpx.Errorf(http.StatusNotFound, "not_found", "session not found")
		},
	})
	r := connect(t, n.url, issue(t, v, "mine", "p", time.Hour))
	r.send(map[string]any{"type": "subscribe", "id": 1, "channel": "session:theirs"})
	if f := r.next(); f.Type != frameErrorType || f.Code != "not_found" || f.Channel != "session:theirs" || string(f.Ref) != "1" {
		t.Fatalf("got %+v", f)
	}
	r.send(map[string]any{"type": "subscribe", "id": 2, "channel": "session:mine"})
	if f := r.next(); f.Type != frameSubscribed {
		t.Fatalf("got %+v", f)
	}
}

// TestDeadPeerIsDropped: a client that stops reading never answers the
// server's pings, so after one heartbeat timeout its socket is dropped,
// while a client that keeps reading stays connected through many beats.
func TestDeadPeerIsDropped(t *testing.T) {
	t.Parallel()
	v := newVerifier(t)
	n := startNode(t, memoryHub(t), v, Config{HeartbeatInterval: 20 * time.Millisecond, HeartbeatTimeout: 200 * time.Millisecond})
	tok := issue(t, v, "f", "p", time.Hour)
	alive := connect(t, n.url, tok)
	readErr := make(chan error, 1)
	go func() { // reading makes coder/websocket answer pings
		_, err := alive.read(time.Hour)
		readErr <- err
	}()
	connect(t, n.url, tok) // reads its connected frame, then nothing more

	waitFor(t, "the silent socket to be dropped", func() bool {
		return metricValue(t, n.srv.metrics.closes.WithLabelValues("1006")) == 1
	})
	time.Sleep(100 * time.Millisecond) // several more beats for the live one
	if got := countConns(n); got != 1 {
		t.Fatalf("%d sockets open, want only the one answering pings", got)
	}
	select {
	case err := <-readErr:
		t.Fatalf("live socket ended: %v", err)
	default:
	}
}
