package realtime

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/handoff-health/handoff/internal/auth"
	"github.com/handoff-health/handoff/internal/httpx"
	"github.com/handoff-health/handoff/internal/testutil"
	"github.com/handoff-health/handoff/protocol"
)

func TestSubscribeReceiveUnsubscribe(t *testing.T) {
	t.Parallel()
	v := newVerifier(t)
	n := startNode(t, memoryHub(t), v, Config{})
	r := dialRaw(t, n.url, bearer(issue(t, v, "fac1", "gp1", time.Hour)))

	hello := r.next()
	if hello.ConnectionID == "" {
		t.Error("connected frame has no connectionId")
	}
	testutil.Equal(t, "connected frame",
		frame{Type: protocol.FrameConnected, Heartbeat: DefaultHeartbeatInterval.Milliseconds()},
		frame{Type: hello.Type, Heartbeat: hello.Heartbeat})
	r.send(map[string]any{"type": "subscribe", "id": 7, "channel": "session:a"})
	testutil.Equal(t, "subscribed frame", frame{
		Type: protocol.FrameSubscribed, Ref: json.RawMessage("7"), Channel: "session:a", Recovered: new(true), Cursor: "0",
	}, r.next())
	published := publish(t, n.hub, "session:a", "image.added", 3)
	for i, want := range published {
		testutil.Equal(t, "event frame "+itoa(i), eventFrameOf(want), r.next())
	}
	r.send(map[string]any{"type": "ping", "id": "p1"})
	testutil.Equal(t, "pong", frame{Type: protocol.FramePong, Ref: json.RawMessage(`"p1"`)}, r.next())
	r.send(map[string]any{"type": "unsubscribe", "id": "u", "channel": "session:a"})
	testutil.Equal(t, "unsubscribed frame",
		frame{Type: protocol.FrameUnsubscribed, Ref: json.RawMessage(`"u"`), Channel: "session:a"}, r.next())
	publish(t, n.hub, "session:a", "image.added", 1)
	r.send(map[string]any{"type": "ping"})
	testutil.Equal(t, "frame after unsubscribe (only the pong)", frame{Type: protocol.FramePong}, r.next())
}

func TestResumeFromCursor(t *testing.T) {
	t.Parallel()
	v := newVerifier(t)
	n := startNode(t, memoryHub(t), v, Config{})
	evs := publish(t, n.hub, "session:r", "image.added", 5)
	tok := issue(t, v, "f", "p", time.Hour)

	r := connect(t, n.url, tok)
	r.send(map[string]any{"type": "subscribe", "channel": "session:r", "since": evs[1].ID})
	testutil.Equal(t, "subscribed frame (recovered from since)", frame{
		Type: protocol.FrameSubscribed, Channel: "session:r", Recovered: new(true), Cursor: evs[1].ID,
	}, r.next())
	for _, want := range evs[2:] {
		testutil.Equal(t, "replayed event", eventFrameOf(want), r.next())
	}

	// A cursor from another epoch cannot be replayed: recovered:false with
	// the channel's position, never a silent skip.
	r2 := connect(t, n.url, tok)
	r2.send(map[string]any{"type": "subscribe", "channel": "session:r", "since": "zzzzzzzzzzzzz-3"})
	testutil.Equal(t, "subscribed frame (not recovered)", frame{
		Type: protocol.FrameSubscribed, Channel: "session:r", Recovered: new(false), Cursor: evs[4].ID,
	}, r2.next())
}

func TestAuthMethods(t *testing.T) {
	t.Parallel()
	v := newVerifier(t)
	n := startNode(t, memoryHub(t), v, Config{})
	tok := issue(t, v, "f", "p", time.Hour)

	t.Run("query parameter", func(t *testing.T) {
		r := dialRaw(t, n.url+"?access_token="+tok, nil)
		testutil.Equal(t, "frame type (want connected)", protocol.FrameConnected, r.next().Type)
	})
	t.Run("first frame", func(t *testing.T) {
		r := dialRaw(t, n.url, nil)
		r.send(map[string]any{"type": "auth", "token": tok})
		testutil.Equal(t, "frame type (want connected)", protocol.FrameConnected, r.next().Type)
	})
	t.Run("re-auth before expiry", func(t *testing.T) {
		r := connect(t, n.url, issue(t, v, "f", "p", 2*time.Second))
		r.send(map[string]any{"type": "auth", "id": 1, "token": issue(t, v, "f", "p", time.Hour)})
		f := r.next()
		testutil.Equal(t, "reply to re-auth",
			frame{Type: protocol.FrameAuthenticated, Ref: json.RawMessage("1")},
			frame{Type: f.Type, Ref: f.Ref})
		// The socket outlives the first token: still answering after it
		// expired (a 2 s token has expired 2.5 s later, whatever the clock).
		time.Sleep(2500 * time.Millisecond)
		r.send(map[string]any{"type": "ping"})
		testutil.Equal(t, "frame type (want pong)", protocol.FramePong, r.next().Type)
	})
}

func TestTokenExpiryClosesWith4009(t *testing.T) {
	t.Parallel()
	v := newVerifier(t)
	n := startNode(t, memoryHub(t), v, Config{})
	// exp is whole seconds, so a 1 s token may have only milliseconds
	// left when issued and expire before the connected frame; 2 s leaves
	// at least one.
	r := connect(t, n.url, issue(t, v, "f", "p", 2*time.Second))
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
	testutil.Equal(t, "refusal", frame{
		Type: protocol.FrameError, Ref: json.RawMessage("1"), Channel: "session:theirs",
		Code: protocol.CodeNotFound, Message: "session not found",
	}, r.next())
	r.send(map[string]any{"type": "subscribe", "id": 2, "channel": "session:mine"})
	testutil.Equal(t, "frame type (want subscribed)", protocol.FrameSubscribed, r.next().Type)
}

// TestAuthorizeOutageIsUnavailable: an authorizer that could not decide
// (its store is down) refuses with "unavailable", which clients retry;
// only an answer it did give is "forbidden".
func TestAuthorizeOutageIsUnavailable(t *testing.T) {
	t.Parallel()
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	errs := map[string]error{
		"session:declared": httpx.Unavailable(errors.New("session store down")),
		"session:network":  fmt.Errorf("session: look up x: %w", refused),
		"session:refused":  errors.New("capture: channel is not a capture session channel"),
	}
	v := newVerifier(t)
	n := startNode(t, memoryHub(t), v, Config{
		Authorize: func(ctx context.Context, c auth.Claims, channel string) error { return errs[channel] },
	})
	r := connect(t, n.url, issue(t, v, "f", "p", time.Hour))
	for i, tc := range []struct {
		channel string
		code    protocol.ErrorCode
	}{
		{"session:declared", protocol.CodeUnavailable},
		{"session:network", protocol.CodeUnavailable},
		{"session:refused", protocol.CodeForbidden},
	} {
		r.send(map[string]any{"type": "subscribe", "id": i, "channel": tc.channel})
		f := r.next()
		testutil.Equal(t, "frame type for "+tc.channel, protocol.FrameError, f.Type)
		testutil.Equal(t, "error code for "+tc.channel, tc.code, f.Code)
		if strings.Contains(f.Message, "store down") || strings.Contains(f.Message, "refused") {
			t.Errorf("error frame for %s shows its cause: %q", tc.channel, f.Message)
		}
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

	testutil.Eventually(t, "the silent socket is dropped", func() bool {
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
