// Package hub is handoff's transport-agnostic realtime core: named channels
// with bounded, replayable history and local fan-out. Transports (the
// native WebSocket, the Ably bridge) subscribe through it; the capture API
// publishes through it. Storage and cross-node delivery belong to a Backend
// (memory or Redis).
package hub

import (
	"context"
	"errors"
	"hash/maphash"
	"sync"
)

// DeliveryKind says what a Delivery carries.
type DeliveryKind int

const (
	// KindSubscribed is the first delivery of every subscription: its
	// Position and whether the requested replay was possible (Recovered).
	KindSubscribed DeliveryKind = iota
	// KindEvent carries one event, in channel order, never twice.
	KindEvent
	// KindResync says live delivery lost events that history can no longer
	// supply (Recovered is false): the subscriber must refetch its state.
	// Position is where the stream continues from.
	KindResync
)

// Delivery is what a subscription hands to its Sink.
type Delivery struct {
	Kind      DeliveryKind
	Channel   string
	Event     Event  // KindEvent
	Position  Cursor // KindSubscribed, KindResync
	Recovered bool   // KindSubscribed
}

// Sink receives a subscription's deliveries in order. It must not block: a
// transport queues the delivery and returns. Returning false means the
// subscriber cannot keep up; the hub then drops the subscription and the
// transport is expected to close the connection (slow consumer).
type Sink func(Delivery) bool

// Hub fans events out to local subscribers and keeps each subscriber's
// stream gap-free and duplicate-free by tracking its position.
type Hub struct {
	backend Backend

	hooks PublishHooks

	// life serialises backend Subscribe/Unsubscribe calls of one channel
	// (see acquire). It is striped by channel name: a Subscribe waits for a
	// Redis round trip, and other channels must not queue behind it.
	life     [lifeStripes]sync.Mutex
	lifeSeed maphash.Seed
	mu       sync.Mutex
	channels map[string]*channel
}

// channel is a channel with at least one local subscriber.
type channel struct {
	name string
	// mu serialises replay, live dispatch and repair for this channel, so
	// every subscriber sees one ordered stream.
	mu   sync.Mutex
	subs map[*Subscription]struct{}
	// refs counts subscriptions holding the channel (guarded by Hub.mu).
	refs int
}

// Subscription is one subscriber's interest in one channel.
type Subscription struct {
	hub     *Hub
	channel *channel
	sink    Sink
	// pos is the cursor of the last event handed to sink. It and the
	// flags below are guarded by channel.mu.
	pos             Cursor
	closed          bool
	repairScheduled bool
}

// New returns a hub over backend. Call Run to start live delivery.
func New(backend Backend) *Hub {
	return &Hub{backend: backend, channels: make(map[string]*channel), lifeSeed: maphash.MakeSeed()}
}

// History returns, in order, the events of channel after since and the
// channel's current top position, with Backend.History's semantics:
// ErrUnrecoverable (with the top) when since can no longer be replayed.
func (h *Hub) History(ctx context.Context, channel string, since Cursor) ([]Event, Cursor, error) {
	return h.backend.History(ctx, channel, since)
}

// Top returns the position of channel's newest event, or the zero cursor
// for a channel with no history.
func (h *Hub) Top(ctx context.Context, channel string) (Cursor, error) {
	return h.backend.Top(ctx, channel)
}

// Ping reports whether the hub's backend is reachable (for /readyz).
func (h *Hub) Ping(ctx context.Context) error { return h.backend.Ping(ctx) }

// Run delivers the backend's live events until ctx ends.
func (h *Hub) Run(ctx context.Context) error {
	return h.backend.Run(ctx, (*hubHandler)(h))
}

// PublishHooks observe every publish made through this hub. The Ably
// bridge uses them: Before durably marks the channel as having events to
// mirror before the event exists, so a crash between the two cannot lose
// one; After wakes the bridge without polling.
type PublishHooks struct {
	// Before runs before the backend publish; an error aborts the publish.
	Before func(ctx context.Context, channel string) error
	// After runs after a successful publish. It must not block.
	After func(ev Event)
}

// SetPublishHooks installs hooks. Call before the hub is used.
func (h *Hub) SetPublishHooks(hooks PublishHooks) { h.hooks = hooks }

// Publish validates p and appends it to channel through the backend. The
// returned event has been stored. An error usually means it was not; but
// when the link to Redis fails after the script was sent, the outcome is
// unknown and the event may exist. Subscribers never see a gap either way;
// a caller that retries may publish the event twice.
func (h *Hub) Publish(ctx context.Context, channel string, p Publication) (Event, error) {
	if err := p.validate(channel); err != nil {
		return Event{}, err
	}
	if h.hooks.Before != nil {
		if err := h.hooks.Before(ctx, channel); err != nil {
			return Event{}, err
		}
	}
	ev, err := h.backend.Publish(ctx, channel, p)
	if err == nil && h.hooks.After != nil {
		h.hooks.After(ev)
	}
	return ev, err
}

// Subscribe starts a subscription to channel. The sink first gets a
// KindSubscribed delivery; then, when since is non-nil, every event after
// since in order (or Recovered=false if that is impossible); then live
// events, with no gap and no duplicate between replay and live.
func (h *Hub) Subscribe(ctx context.Context, name string, since *Cursor, sink Sink) (*Subscription, error) {
	if !ValidChannel(name) {
		return nil, ErrBadChannel
	}
	ch, err := h.acquire(ctx, name)
	if err != nil {
		return nil, err
	}
	sub := &Subscription{hub: h, channel: ch, sink: sink}

	ch.mu.Lock()
	defer ch.mu.Unlock()
	if err := sub.start(ctx, since); err != nil {
		if !sub.closed { // a refused delivery has released it already
			h.release(ch, sub)
		}
		return nil, err
	}
	ch.subs[sub] = struct{}{}
	return sub, nil
}

// start positions a new subscription and sends its KindSubscribed delivery
// and replay. Called with channel.mu held, so no live event interleaves.
func (s *Subscription) start(ctx context.Context, since *Cursor) error {
	name := s.channel.name
	if since == nil {
		top, err := s.hub.backend.Top(ctx, name)
		if err != nil {
			return err
		}
		s.pos = top
		if !s.sink(Delivery{Kind: KindSubscribed, Channel: name, Position: top, Recovered: true}) {
			return ErrSlowConsumer
		}
		return nil
	}
	evs, top, err := s.hub.backend.History(ctx, name, *since)
	recovered := err == nil
	if err != nil && !errors.Is(err, ErrUnrecoverable) {
		return err
	}
	s.pos = *since
	if !recovered {
		s.pos = top
	}
	if !s.sink(Delivery{Kind: KindSubscribed, Channel: name, Position: top, Recovered: recovered}) || !s.deliverAll(evs) {
		return ErrSlowConsumer
	}
	return nil
}

// ErrSlowConsumer is returned by Subscribe when the sink refused a delivery.
var ErrSlowConsumer = errors.New("hub: subscriber cannot keep up")

// Unsubscribe ends the subscription; the sink gets nothing more. Safe to call twice.
func (s *Subscription) Unsubscribe() {
	s.channel.mu.Lock()
	if s.closed {
		s.channel.mu.Unlock()
		return
	}
	s.hub.release(s.channel, s)
	s.channel.mu.Unlock()
}

// Channel returns the subscribed channel's name.
func (s *Subscription) Channel() string { return s.channel.name }

// lifeStripes is the number of lifecycle locks; 64 keeps collisions
// between channels subscribing at once rare at a few bytes each.
const lifeStripes = 64

// lifeLock returns the lifecycle lock of a channel name.
func (h *Hub) lifeLock(name string) *sync.Mutex {
	return &h.life[maphash.String(h.lifeSeed, name)%lifeStripes]
}

// acquire returns the local channel, subscribing the backend on first use.
// Every acquire is paired with one release.
func (h *Hub) acquire(ctx context.Context, name string) (*channel, error) {
	h.mu.Lock()
	if ch, ok := h.channels[name]; ok {
		// Entries in the map are always subscribed on the backend.
		ch.refs++
		h.mu.Unlock()
		return ch, nil
	}
	h.mu.Unlock()

	// Slow path: lifecycle changes are serialised so a backend Subscribe
	// and Unsubscribe of one channel can never pass each other.
	life := h.lifeLock(name)
	life.Lock()
	defer life.Unlock()
	h.mu.Lock()
	if ch, ok := h.channels[name]; ok {
		ch.refs++
		h.mu.Unlock()
		return ch, nil
	}
	h.mu.Unlock()
	if err := h.backend.Subscribe(ctx, name); err != nil {
		return nil, err
	}
	ch := &channel{name: name, subs: make(map[*Subscription]struct{}), refs: 1}
	h.mu.Lock()
	h.channels[name] = ch
	h.mu.Unlock()
	return ch, nil
}

// release drops one reference to ch (and sub from it, if given) and
// unsubscribes the backend when the last local subscriber is gone.
func (h *Hub) release(ch *channel, sub *Subscription) {
	if sub != nil {
		// Callers hold ch.mu when passing sub; the map write is safe.
		delete(ch.subs, sub)
		sub.closed = true
	}
	h.mu.Lock()
	ch.refs--
	last := ch.refs == 0
	h.mu.Unlock()
	if !last {
		return
	}
	go h.retire(ch)
}

// retire unsubscribes the backend from an unused channel. It runs on its
// own goroutine because release may be called with ch.mu held.
func (h *Hub) retire(ch *channel) {
	life := h.lifeLock(ch.name)
	life.Lock()
	defer life.Unlock()
	h.mu.Lock()
	if ch.refs > 0 || h.channels[ch.name] != ch {
		h.mu.Unlock()
		return
	}
	delete(h.channels, ch.name)
	h.mu.Unlock()
	// Best effort: a failed unsubscribe only costs unused deliveries,
	// which dispatch ignores for channels without local subscribers.
	_ = h.backend.Unsubscribe(context.Background(), ch.name)
}
