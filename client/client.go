// Package client is the Go client of handoff's native realtime protocol
// (package protocol; docs/protocol.md explains it). It keeps one socket
// open, reconnects with jittered exponential backoff (internal/backoff),
// and resubscribes every channel from the cursor of the last event it
// delivered, so a caller sees each event once, in order, across
// reconnects, or an explicit KindResync when that is impossible.
//
//	c, _ := client.New(client.Config{URL: "wss://host/realtime", Token: fetchJWT})
//	c.Subscribe("session:abc", "")
//	go c.Run(ctx)
//	for ev := range c.Events() { … }
package client

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"sync/atomic"

	"github.com/handoff-health/handoff/internal/backoff"
	"github.com/handoff-health/handoff/protocol"
)

// Client is a reconnecting realtime client. Its methods are safe for
// concurrent use.
type Client struct {
	cfg     Config
	events  chan Event
	running atomic.Bool

	mu   sync.Mutex
	subs map[string]*subState
	// present is the data of each channel this client is present on; every
	// new socket (a new connectionId) enters them again.
	present map[string]json.RawMessage
	// sock is the connected socket, or nil between connections.
	sock *socket
}

// subState is what the client remembers of one channel across sockets.
type subState struct {
	// cursor is the position after the last delivered event (or where the
	// server said the stream continues); "" means live-only.
	cursor string
	// presence: the channel's members and presence changes are delivered
	// too (Members on KindSubscribed, then KindPresence).
	presence bool
}

// New returns a client; call Subscribe for the channels and Run to connect.
func New(cfg Config) (*Client, error) {
	if cfg.URL == "" || cfg.Token == nil {
		return nil, errors.New("realtime client: URL and Token are required")
	}
	cfg = cfg.withDefaults()
	return &Client{cfg: cfg, events: make(chan Event, cfg.EventBuffer), subs: make(map[string]*subState),
		present: make(map[string]json.RawMessage)}, nil
}

// Events returns the channel the client delivers on. It is closed when
// Run returns.
func (c *Client) Events() <-chan Event { return c.events }

// ErrAlreadySubscribed is returned by Subscribe for a channel it has.
var ErrAlreadySubscribed = errors.New("realtime client: already subscribed")

// Subscribe adds channel. since is a cursor from an earlier event to
// resume after, "0" for the whole retained history, or "" for live events
// only. It takes effect on the current socket, if any, and on every
// reconnect.
func (c *Client) Subscribe(channel, since string) error {
	return c.subscribe(channel, &subState{cursor: since})
}

// SubscribeWithPresence is Subscribe that also follows the channel's
// presence: every KindSubscribed carries the channel's Members, and each
// change after it arrives as a KindPresence.
func (c *Client) SubscribeWithPresence(channel, since string) error {
	return c.subscribe(channel, &subState{cursor: since, presence: true})
}

func (c *Client) subscribe(channel string, st *subState) error {
	c.mu.Lock()
	if c.subs[channel] != nil {
		c.mu.Unlock()
		return ErrAlreadySubscribed
	}
	c.subs[channel] = st
	sock := c.sock
	c.mu.Unlock()
	if sock != nil {
		// A failed write kills the socket; the reconnect resubscribes.
		_ = sock.subscribe(channel, *st)
	}
	return nil
}

// EnterPresence makes this client a member of channel's presence with data
// (any JSON value, or nil), now and on every reconnect, until
// LeavePresence. A refusal arrives as a KindError for the channel.
func (c *Client) EnterPresence(channel string, data json.RawMessage) {
	c.mu.Lock()
	c.present[channel] = data
	sock := c.sock
	c.mu.Unlock()
	if sock != nil {
		_ = sock.presence(channel, protocol.PresenceEnter, data)
	}
}

// LeavePresence ends this client's membership of channel.
func (c *Client) LeavePresence(channel string) {
	c.mu.Lock()
	_, had := c.present[channel]
	delete(c.present, channel)
	sock := c.sock
	c.mu.Unlock()
	if had && sock != nil {
		_ = sock.presence(channel, protocol.PresenceLeave, nil)
	}
}

// Unsubscribe drops channel; nothing more is delivered for it.
func (c *Client) Unsubscribe(channel string) {
	c.mu.Lock()
	_, had := c.subs[channel]
	delete(c.subs, channel)
	sock := c.sock
	c.mu.Unlock()
	if had && sock != nil {
		_ = sock.send(protocol.ClientFrame{Type: protocol.OpUnsubscribe, Channel: channel})
	}
}

// Cursor returns the position the client would resume channel from.
func (c *Client) Cursor(channel string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s := c.subs[channel]; s != nil {
		return s.cursor
	}
	return ""
}

// Run connects and keeps reconnecting until ctx ends, the server refuses
// the client for good (ErrForbidden), or MaxAuthFailures attempts in a row
// are refused for their token. It closes Events when it returns. Run may
// be called once.
func (c *Client) Run(ctx context.Context) error {
	if !c.running.CompareAndSwap(false, true) {
		return errors.New("realtime client: Run called twice")
	}
	defer close(c.events)
	attempt, authFailures := 0, 0
	for {
		connected, err := c.connect(ctx)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		c.emit(ctx, Event{Kind: KindDisconnected, Err: err})
		var refused *ServerError
		if connected && !errors.As(err, &refused) {
			// A socket that worked earns a quick reconnect; one whose
			// subscriptions fail (backend down) keeps backing off.
			attempt, authFailures = 0, 0
		}
		switch {
		case errors.Is(err, ErrForbidden):
			return err
		case errors.Is(err, ErrUnauthorized), errors.Is(err, ErrTokenExpired) && !connected:
			if authFailures++; authFailures >= c.cfg.MaxAuthFailures {
				return err
			}
		}
		// Equal jitter (see internal/backoff): a fleet of clients cut off
		// at once does not return at once, yet none retries in a tight loop.
		if !backoff.Sleep(ctx, c.cfg.backoff().Delay(attempt)) {
			return ctx.Err()
		}
		attempt++
	}
}

// emit delivers ev unless ctx ends first.
func (c *Client) emit(ctx context.Context, ev Event) bool {
	select {
	case c.events <- ev:
		return true
	case <-ctx.Done():
		return false
	}
}
