package client

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// session is one socket of the client.
type session struct {
	ws *websocket.Conn
	// lastSeen is when the server last sent anything (frame or ping), in
	// UnixNano; the watchdog reads it.
	lastSeen atomic.Int64
	dead     atomic.Bool
}

// wireFrame is any server→client frame (docs/protocol.md).
type wireFrame struct {
	Type      string     `json:"type"`
	Heartbeat int64      `json:"heartbeat"`
	Channel   string     `json:"channel"`
	Recovered *bool      `json:"recovered"`
	Cursor    string     `json:"cursor"`
	Code      string     `json:"code"`
	Message   string     `json:"message"`
	Event     *wireEvent `json:"event"`
}

type wireEvent struct {
	ID      string          `json:"id"`
	Channel string          `json:"channel"`
	Type    string          `json:"type"`
	Data    json.RawMessage `json:"data"`
	TS      time.Time       `json:"ts"`
}

// connect runs one socket from dial to close. connected reports whether
// the server accepted it (sent "connected"); err is why it ended.
func (c *Client) connect(ctx context.Context) (connected bool, err error) {
	token, err := c.cfg.Token(ctx)
	if err != nil {
		return false, fmt.Errorf("realtime client: getting a token: %w", err)
	}
	s := &session{}
	s.seen()
	ws, _, err := websocket.Dial(ctx, c.cfg.URL, &websocket.DialOptions{
		HTTPClient: c.cfg.HTTPClient,
		HTTPHeader: http.Header{"Authorization": {"Bearer " + token}},
		OnPingReceived: func(context.Context, []byte) bool {
			s.seen()
			return true
		},
	})
	if err != nil {
		return false, fmt.Errorf("realtime client: dial: %w", err)
	}
	defer ws.CloseNow()
	// Reads use their own context: ending ctx should close the socket
	// with a proper 1000, not drop it mid-read as coder/websocket does when
	// a read's context ends.
	stop := context.AfterFunc(ctx, func() { _ = ws.Close(websocket.StatusNormalClosure, "client closed") })
	defer stop()
	ws.SetReadLimit(readLimit)
	s.ws = ws

	hello, err := s.read()
	if err != nil {
		return false, err
	}
	if hello.Type != "connected" {
		return false, fmt.Errorf("realtime client: expected a connected frame, got %q", hello.Type)
	}
	done := make(chan struct{})
	defer close(done)
	if hello.Heartbeat > 0 {
		go s.watchdog(deadServerBeats*time.Duration(hello.Heartbeat)*time.Millisecond, done)
	}
	go c.refreshToken(ctx, s, token, done)

	c.attach(ctx, s)
	defer c.detach(s)
	for {
		f, err := s.read()
		if err != nil {
			return true, err
		}
		if err := c.handle(ctx, f); err != nil {
			return true, err
		}
	}
}

// attach makes s the current session and subscribes every channel with
// its cursor. The snapshot and c.sess change under one lock, so a
// concurrent Subscribe is sent exactly once: by itself or by the snapshot.
func (c *Client) attach(ctx context.Context, s *session) {
	c.mu.Lock()
	c.sess = s
	resume := make(map[string]string, len(c.subs))
	for ch, st := range c.subs {
		resume[ch] = st.cursor
	}
	c.mu.Unlock()
	c.emit(ctx, Event{Kind: KindConnected})
	for ch, since := range resume {
		if s.subscribe(ch, since) != nil {
			return // the socket is gone; the read loop reports why
		}
	}
}

func (c *Client) detach(s *session) {
	c.mu.Lock()
	if c.sess == s {
		c.sess = nil
	}
	c.mu.Unlock()
}

// handle applies one server frame: it advances the channel's cursor
// before delivering, so a reconnect resumes right after what was handed
// over. A non-nil error ends the socket.
func (c *Client) handle(ctx context.Context, f wireFrame) error {
	var ev Event
	switch f.Type {
	case "event":
		if f.Event == nil || !c.advance(f.Event.Channel, f.Event.ID) {
			return nil
		}
		ev = Event{Kind: KindEvent, Channel: f.Event.Channel, ID: f.Event.ID, Type: f.Event.Type, Data: f.Event.Data, TS: f.Event.TS}
	case "subscribed", "resync":
		if !c.advance(f.Channel, f.Cursor) {
			return nil
		}
		ev = Event{Kind: KindSubscribed, Channel: f.Channel, ID: f.Cursor}
		if f.Type == "resync" || f.Recovered != nil && !*f.Recovered {
			ev.Kind = KindResync
		}
	case "error":
		se := &ServerError{Code: f.Code, Message: f.Message}
		switch {
		case f.Code == "unavailable":
			return se // the backend is down: reconnect with backoff, resubscribe all
		case f.Code == "already_subscribed", f.Code == "not_subscribed":
			return nil
		case f.Channel != "":
			c.mu.Lock()
			delete(c.subs, f.Channel)
			c.mu.Unlock()
		}
		ev = Event{Kind: KindError, Channel: f.Channel, Err: se}
	default:
		return nil // pong, authenticated, and types from newer servers
	}
	if !c.emit(ctx, ev) {
		return ctx.Err()
	}
	return nil
}

// advance moves channel's cursor to pos; false means the channel is no
// longer subscribed and the frame is dropped.
func (c *Client) advance(channel, pos string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := c.subs[channel]
	if st == nil {
		return false
	}
	st.cursor = pos
	return true
}

// read returns the next frame; a close from the server becomes a
// *CloseError, a silence beyond the heartbeat window ErrDeadServer.
func (s *session) read() (wireFrame, error) {
	_, b, err := s.ws.Read(context.Background())
	if err != nil {
		var ce websocket.CloseError
		switch {
		case errors.As(err, &ce):
			return wireFrame{}, &CloseError{Code: int(ce.Code), Reason: ce.Reason}
		case s.dead.Load():
			return wireFrame{}, ErrDeadServer
		}
		return wireFrame{}, fmt.Errorf("realtime client: read: %w", err)
	}
	s.seen()
	var f wireFrame
	if err := json.Unmarshal(b, &f); err != nil {
		return wireFrame{}, fmt.Errorf("realtime client: undecodable frame: %w", err)
	}
	return f, nil
}

func (s *session) seen() { s.lastSeen.Store(time.Now().UnixNano()) }

func (s *session) subscribe(channel, since string) error {
	f := map[string]string{"type": "subscribe", "channel": channel}
	if since != "" {
		f["since"] = since
	}
	return s.send(f)
}

func (s *session) send(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), writeTimeout)
	defer cancel()
	return s.ws.Write(ctx, websocket.MessageText, b)
}

// watchdog drops the socket when the server has been silent (no frame, no
// ping) for longer than window, which a half-open TCP connection would
// otherwise hide forever.
func (s *session) watchdog(window time.Duration, done <-chan struct{}) {
	t := time.NewTicker(window / 4)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-t.C:
			if time.Since(time.Unix(0, s.lastSeen.Load())) > window {
				s.dead.Store(true)
				_ = s.ws.CloseNow()
				return
			}
		}
	}
}

// refreshToken sends a fresh token in an auth frame when four fifths of
// the current one's lifetime has passed, so a long-lived socket is not
// closed with 4009. It stops if the provider fails or hands back a token
// that does not live longer; the socket then expires and reconnects.
func (c *Client) refreshToken(ctx context.Context, s *session, token string, done <-chan struct{}) {
	exp, ok := jwtExpiry(token)
	for ok {
		wait := time.Until(exp) * 4 / 5
		if wait < 100*time.Millisecond {
			return // too late to bother: let it expire and reconnect
		}
		t := time.NewTimer(wait)
		select {
		case <-done:
			t.Stop()
			return
		case <-t.C:
		}
		fresh, err := c.cfg.Token(ctx)
		if err != nil {
			return
		}
		next, ok2 := jwtExpiry(fresh)
		if !ok2 || !next.After(exp) || s.send(map[string]string{"type": "auth", "token": fresh}) != nil {
			return
		}
		exp = next
	}
}

// jwtExpiry reads the exp claim of a JWT without verifying it: the client
// only needs to know when to refresh; the server does the verifying.
func jwtExpiry(token string) (time.Time, bool) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return time.Time{}, false
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return time.Time{}, false
	}
	var claims struct {
		Exp int64 `json:"exp"`
	}
	if json.Unmarshal(payload, &claims) != nil || claims.Exp == 0 {
		return time.Time{}, false
	}
	return time.Unix(claims.Exp, 0), true
}
