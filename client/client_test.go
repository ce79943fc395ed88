package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/rs/zerolog"

	"github.com/handoff-health/handoff/client"
	"github.com/handoff-health/handoff/hub"
	"github.com/handoff-health/handoff/internal/auth"
	"github.com/handoff-health/handoff/internal/realtime"
	"github.com/handoff-health/handoff/internal/testutil"
	"github.com/handoff-health/handoff/protocol"
)

var secret = []byte("0123456789abcdef0123456789abcdef")

// server is a real realtime server on a memory hub.
type server struct {
	hub *hub.Hub
	v   *auth.Verifier
	url string
}

func startServer(t *testing.T, cfg realtime.Config) *server {
	t.Helper()
	v, err := auth.NewVerifier(secret)
	if err != nil {
		t.Fatal(err)
	}
	b := hub.NewMemory(hub.MemoryConfig{})
	h := hub.New(b)
	ctx, cancel := context.WithCancel(context.Background())
	go func() { _ = h.Run(ctx) }()
	rt := realtime.New(h, v, cfg, zerolog.Nop())
	hs := httptest.NewServer(rt)
	t.Cleanup(func() {
		sctx, scancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer scancel()
		_ = rt.Shutdown(sctx)
		hs.Close()
		cancel()
		_ = b.Close()
	})
	return &server{hub: h, v: v, url: "ws" + strings.TrimPrefix(hs.URL, "http") + realtime.Path}
}

func (s *server) token(t *testing.T, fac string, ttl time.Duration) string {
	tok, err := s.v.Issue(auth.Claims{Facility: fac, Provider: "gp", Expires: time.Now().Add(ttl)})
	if err != nil {
		t.Error(err)
	}
	return tok
}

func newClient(t *testing.T, url string, token func(context.Context) (string, error)) *client.Client {
	t.Helper()
	c, err := client.New(client.Config{URL: url, Token: token, MinBackoff: time.Millisecond, MaxBackoff: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// run starts c.Run and returns a channel with its result.
func run(t *testing.T, c *client.Client) <-chan error {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	return done
}

func TestEventsAndUnsubscribe(t *testing.T) {
	t.Parallel()
	s := startServer(t, realtime.Config{})
	c := newClient(t, s.url, func(context.Context) (string, error) { return s.token(t, "f", time.Hour), nil })
	if err := c.Subscribe("session:a", ""); err != nil {
		t.Fatal(err)
	}
	if err := c.Subscribe("session:a", ""); !errors.Is(err, client.ErrAlreadySubscribed) {
		t.Fatalf("second Subscribe: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	sub := testutil.Next(t, c, client.KindSubscribed)
	testutil.Equal(t, "subscribed event", client.Event{Kind: client.KindSubscribed, Channel: "session:a", ID: "0"}, sub)
	ev, err := s.hub.Publish(context.Background(), "session:a", hub.Publication{Type: "image.added", Data: []byte(`{"k":1}`)})
	if err != nil {
		t.Fatal(err)
	}
	testutil.Equal(t, "published event", client.Event{
		Kind: client.KindEvent, Channel: "session:a", ID: ev.ID, Type: "image.added", Data: json.RawMessage(`{"k":1}`), TS: ev.TS,
	}, testutil.Next(t, c, client.KindEvent))
	testutil.Equal(t, "cursor after the event", ev.ID, c.Cursor("session:a"))

	// Subscribing while connected takes effect at once.
	if err := c.Subscribe("session:b", "0"); err != nil {
		t.Fatal(err)
	}
	testutil.Next(t, c, client.KindSubscribed)
	c.Unsubscribe("session:a")
	if _, err := s.hub.Publish(context.Background(), "session:a", hub.Publication{Type: "x"}); err != nil {
		t.Fatal(err)
	}
	// An event an Ably client published says who did.
	origin := hub.Origin{MsgID: "hK3x9aQ2Lm:5:0", ClientID: "desk-42", ConnectionID: "hK3x9aQ2Lm"}
	ev2, _ := s.hub.Publish(context.Background(), "session:b", hub.Publication{Type: "y", Origin: origin})
	got := testutil.Next(t, c, client.KindEvent)
	type seen struct{ Channel, ID, MsgID, ClientID, ConnectionID string }
	testutil.Equal(t, "first event after unsubscribe", seen{"session:b", ev2.ID, origin.MsgID, origin.ClientID, origin.ConnectionID},
		seen{got.Channel, got.ID, got.MsgID, got.ClientID, got.ConnectionID})

	// Cancelling Run closes the socket and the Events channel.
	cancel()
	for range c.Events() {
	}
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Run = %v, want context.Canceled", err)
	}
}

func TestRefusedChannelIsReportedAndDropped(t *testing.T) {
	t.Parallel()
	s := startServer(t, realtime.Config{Authorize: func(_ context.Context, _ auth.Claims, ch string) error {
		if ch == "session:secret" {
			return errors.New("nope")
		}
		return nil
	}})
	c := newClient(t, s.url, func(context.Context) (string, error) { return s.token(t, "f", time.Hour), nil })
	_ = c.Subscribe("session:secret", "")
	run(t, c)
	ev := testutil.Next(t, c, client.KindError)
	testutil.Equal(t, "error event channel", "session:secret", ev.Channel)
	var se *client.ServerError
	if !errors.As(ev.Err, &se) {
		t.Fatalf("error event carries %v, want a *client.ServerError", ev.Err)
	}
	testutil.Equal(t, "server error code", string(protocol.CodeForbidden), se.Code)
	if err := c.Subscribe("session:secret", ""); err != nil {
		t.Fatalf("channel not dropped after refusal: %v", err)
	}
}

func TestAuthFailuresAreNotRetriedForever(t *testing.T) {
	t.Parallel()
	s := startServer(t, realtime.Config{})
	forger, _ := auth.NewVerifier([]byte("another-secret-another-secret-xx"))
	cases := []struct {
		name  string
		token func() string
		want  error
	}{
		{"forged", func() string {
			tok, _ := forger.Issue(auth.Claims{Facility: "f", Provider: "p", Expires: time.Now().Add(time.Hour)})
			return tok
		}, client.ErrUnauthorized},
		{"expired", func() string { return s.token(t, "f", -time.Hour) }, client.ErrTokenExpired},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var calls atomic.Int32
			c := newClient(t, s.url, func(context.Context) (string, error) { calls.Add(1); return tc.token(), nil })
			select {
			case err := <-run(t, c):
				if !errors.Is(err, tc.want) {
					t.Fatalf("Run = %v, want %v", err, tc.want)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("Run kept retrying")
			}
			if n := calls.Load(); n != 3 {
				t.Fatalf("%d attempts, want 3", n)
			}
		})
	}
}

// TestTokenRefresh: the client re-authenticates before its short token
// expires, so the socket stays up; a refreshed token for someone else
// is forbidden and stops the client.
func TestTokenRefresh(t *testing.T) {
	t.Parallel()
	s := startServer(t, realtime.Config{})
	var calls atomic.Int32
	c := newClient(t, s.url, func(context.Context) (string, error) {
		n := calls.Add(1)
		if n <= 3 {
			return s.token(t, "f", 2*time.Second), nil
		}
		return s.token(t, "someone-else", time.Hour), nil
	})
	done := run(t, c)
	testutil.Next(t, c, client.KindConnected)
	select {
	case err := <-done:
		if !errors.Is(err, client.ErrForbidden) {
			t.Fatalf("Run = %v, want ErrForbidden", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("client never refreshed into the other identity")
	}
	connects := 1
	for ev := range c.Events() {
		if ev.Kind == client.KindConnected {
			connects++
		}
	}
	testutil.Check(t, "connections (refreshes should have kept one socket)", 1, connects)
	if n := calls.Load(); n < 4 {
		t.Errorf("%d token calls, want at least 4: the client did not refresh", n)
	}
}

// TestDeadServerIsDropped runs a server that says hello and then goes
// silent: no frames, no pings. The client must give up on it after two
// heartbeats and reconnect.
func TestDeadServerIsDropped(t *testing.T) {
	t.Parallel()
	var accepts atomic.Int32
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer ws.CloseNow()
		accepts.Add(1)
		hello, _ := json.Marshal(protocol.ServerFrame{Type: protocol.FrameConnected, ConnectionID: "x", Heartbeat: 100})
		_ = ws.Write(r.Context(), websocket.MessageText, hello)
		for {
			if _, _, err := ws.Read(context.Background()); err != nil {
				return
			}
		}
	}))
	t.Cleanup(hs.Close)
	c := newClient(t, "ws"+strings.TrimPrefix(hs.URL, "http"), func(context.Context) (string, error) { return "t", nil })
	run(t, c)
	ev := testutil.Next(t, c, client.KindDisconnected)
	if !errors.Is(ev.Err, client.ErrDeadServer) {
		t.Fatalf("disconnected with %v, want ErrDeadServer", ev.Err)
	}
	testutil.Next(t, c, client.KindConnected)
	if accepts.Load() < 2 {
		t.Fatal("no reconnect")
	}
}

func TestCloseErrors(t *testing.T) {
	t.Parallel()
	for code, want := range map[protocol.CloseCode]error{
		protocol.CloseUnauthorized: client.ErrUnauthorized, protocol.CloseForbidden: client.ErrForbidden,
		protocol.CloseSlowConsumer: client.ErrSlowConsumer, protocol.CloseTokenExpired: client.ErrTokenExpired,
		protocol.CloseGoingAway: client.ErrGoingAway, protocol.CloseBadRequest: client.ErrBadRequest,
		protocol.CloseTooBig: client.ErrTooBig,
	} {
		if err := error(&client.CloseError{Code: int(code)}); !errors.Is(err, want) {
			t.Errorf("close %d does not map to %v", code, want)
		}
	}
	if errors.Unwrap(&client.CloseError{Code: int(protocol.CloseNormal)}) != nil {
		t.Error("1000 maps to an error kind")
	}
}
