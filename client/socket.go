package client

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/handoff-health/handoff/protocol"
)

// socket is one WebSocket connection of the client; the Client outlives
// many of them.
type socket struct {
	ws *websocket.Conn
	// lastSeen is when the server last sent anything (frame or ping), in
	// UnixNano; the watchdog reads it.
	lastSeen atomic.Int64
	dead     atomic.Bool
}

// connect runs one socket from dial to close. connected reports whether
// the server accepted it (sent protocol.FrameConnected); err is why it ended.
func (c *Client) connect(ctx context.Context) (connected bool, err error) {
	token, err := c.cfg.Token(ctx)
	if err != nil {
		return false, fmt.Errorf("realtime client: getting a token: %w", err)
	}
	s := &socket{}
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
	stop := context.AfterFunc(ctx, func() {
		_ = ws.Close(websocket.StatusCode(protocol.CloseNormal), "client closed")
	})
	defer stop()
	ws.SetReadLimit(readLimit)
	s.ws = ws

	hello, err := s.read()
	if err != nil {
		return false, err
	}
	if hello.Type != protocol.FrameConnected {
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

// attach makes s the current socket and subscribes every channel with
// its cursor. The snapshot and c.sock change under one lock, so a
// concurrent Subscribe is sent exactly once: by itself or by the snapshot.
func (c *Client) attach(ctx context.Context, s *socket) {
	c.mu.Lock()
	c.sock = s
	resume := make(map[string]subState, len(c.subs))
	for ch, st := range c.subs {
		resume[ch] = *st
	}
	present := maps.Clone(c.present)
	c.mu.Unlock()
	c.emit(ctx, Event{Kind: KindConnected})
	for ch, st := range resume {
		if s.subscribe(ch, st) != nil {
			return // the socket is gone; the read loop reports why
		}
	}
	// A new socket is a new connectionId: enter again.
	for ch, data := range present {
		if s.presence(ch, protocol.PresenceEnter, data) != nil {
			return
		}
	}
}

func (c *Client) detach(s *socket) {
	c.mu.Lock()
	if c.sock == s {
		c.sock = nil
	}
	c.mu.Unlock()
}

// handle applies one server frame: it advances the channel's cursor
// before delivering, so a reconnect resumes right after what was handed
// over. A non-nil error ends the socket.
func (c *Client) handle(ctx context.Context, f protocol.ServerFrame) error {
	var ev Event
	switch f.Type {
	case protocol.FrameEvent:
		if f.Event == nil || !c.advance(f.Event.Channel, f.Event.ID) {
			return nil
		}
		e := f.Event
		ev = Event{Kind: KindEvent, Channel: e.Channel, ID: e.ID, Type: e.Type, Data: e.Data, TS: e.TS,
			MsgID: e.MsgID, ClientID: e.ClientID, ConnectionID: e.ConnectionID}
	case protocol.FrameSubscribed, protocol.FrameResync:
		if !c.advance(f.Channel, f.Cursor) {
			return nil
		}
		ev = Event{Kind: KindSubscribed, Channel: f.Channel, ID: f.Cursor, Members: f.Presence}
		if f.Type == protocol.FrameResync || f.Recovered != nil && !*f.Recovered {
			ev.Kind = KindResync
		}
	case protocol.FramePresence:
		if f.Member == nil || !c.subscribed(f.Channel) {
			return nil
		}
		m := f.Member
		ev = Event{Kind: KindPresence, Channel: f.Channel, Type: string(f.Action), Data: m.Data, TS: m.TS,
			ClientID: m.ClientID, ConnectionID: m.ConnectionID}
	case protocol.FrameError:
		se := &ServerError{Code: string(f.Code), Message: f.Message}
		switch {
		case f.Code == protocol.CodeUnavailable:
			return se // the backend is down: reconnect with backoff, resubscribe all
		case f.Code == protocol.CodeAlreadySubscribed, f.Code == protocol.CodeNotSubscribed:
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

// subscribed reports whether channel is still subscribed.
func (c *Client) subscribed(channel string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.subs[channel] != nil
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
func (s *socket) read() (protocol.ServerFrame, error) {
	_, b, err := s.ws.Read(context.Background())
	if err != nil {
		var ce websocket.CloseError
		switch {
		case errors.As(err, &ce):
			return protocol.ServerFrame{}, &CloseError{Code: int(ce.Code), Reason: ce.Reason}
		case s.dead.Load():
			return protocol.ServerFrame{}, ErrDeadServer
		}
		return protocol.ServerFrame{}, fmt.Errorf("realtime client: read: %w", err)
	}
	s.seen()
	var f protocol.ServerFrame
	if err := json.Unmarshal(b, &f); err != nil {
		return protocol.ServerFrame{}, fmt.Errorf("realtime client: undecodable frame: %w", err)
	}
	return f, nil
}

func (s *socket) seen() { s.lastSeen.Store(time.Now().UnixNano()) }

func (s *socket) subscribe(channel string, st subState) error {
	return s.send(protocol.ClientFrame{Type: protocol.OpSubscribe, Channel: channel, Since: st.cursor, Presence: st.presence})
}

func (s *socket) presence(channel string, action protocol.PresenceAction, data json.RawMessage) error {
	return s.send(protocol.ClientFrame{Type: protocol.OpPresence, Channel: channel, Action: action, Data: data})
}

func (s *socket) send(f protocol.ClientFrame) error {
	b, err := json.Marshal(f)
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
func (s *socket) watchdog(window time.Duration, done <-chan struct{}) {
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
func (c *Client) refreshToken(ctx context.Context, s *socket, token string, done <-chan struct{}) {
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
		if !ok2 || !next.After(exp) || s.send(protocol.ClientFrame{Type: protocol.OpAuth, Token: fresh}) != nil {
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
