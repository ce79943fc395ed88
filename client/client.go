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
	// sock is the connected socket, or nil between connections.
	sock *socket
}

// subState is what the client remembers of one channel across sockets.
type subState struct {
	// cursor is the position after the last delivered event (or where the
	// server said the stream continues); "" means live-only.
	cursor string
}

// New returns a client; call Subscribe for the channels and Run to connect.
func New(cfg Config) (*Client, error) {
	if cfg.URL == "" || cfg.Token == nil {
		return nil, errors.New("realtime client: URL and Token are required")
	}
	cfg = cfg.withDefaults()
	return &Client{cfg: cfg, events: make(chan Event, cfg.EventBuffer), subs: make(map[string]*subState)}, nil
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
	c.mu.Lock()
	if c.subs[channel] != nil {
		c.mu.Unlock()
		return ErrAlreadySubscribed
	}
	c.subs[channel] = &subState{cursor: since}
	sock := c.sock
	c.mu.Unlock()
	if sock != nil {
		// A failed write kills the socket; the reconnect resubscribes.
		_ = sock.subscribe(channel, since)
	}
	return nil
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
