package hub

import (
	"context"
	"errors"
	"hash/maphash"
	"sync"
	"time"
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
// transport queues the delivery and returns. It is called with the
// channel's lock held, so it must not call back into the hub. Returning
// false means the subscriber cannot keep up; the hub then drops the
// subscription and the transport is expected to close the connection
// (slow consumer).
type Sink func(Delivery) bool

// Hub fans events out to local subscribers and keeps each subscriber's
// stream gap-free and duplicate-free by tracking its position.
type Hub struct {
	backend Backend

	hooks PublishHooks

	// life serialises backend Subscribe/Unsubscribe calls of one channel
	// (see acquire). It is the one lock held across backend I/O, by design:
	// a Subscribe and an Unsubscribe of one channel must reach the backend
	// in the order the hub decided them. It is striped by channel name, so
	// other channels do not queue behind a Redis round trip; only the
	// first Subscribe and the retirement of channels on its stripe wait
	// for it, never delivery or repair.
	life     [lifeStripes]sync.Mutex
	lifeSeed maphash.Seed
	// mu guards channels and every channel's refs.
	mu       sync.Mutex
	channels map[string]*channel

	repairs repairGroup

	// republish keeps the events Announce could not publish (republish.go).
	republish republisher
}

// channel is a channel with at least one local subscriber.
type channel struct {
	name string
	// mu serialises what reaches this channel's sinks (subscribe, live
	// dispatch, repair), so every subscriber sees one ordered stream. It
	// guards subs, the state of each subscription in subs, and the repair
	// fields below. It is never held across a backend call: reads happen
	// unlocked and their result is applied under mu (see repair.go).
	mu   sync.Mutex
	subs map[*Subscription]struct{}
	// repairing is true while repair passes run for this channel, on a
	// repair goroutine or inside Resync; at most one runs at a time.
	repairing bool
	// retry is the pending repair attempt after a failed read, and
	// retries counts failed reads in a row (for the backoff).
	retry   *time.Timer
	retries int
	// refs counts subscriptions holding the channel (guarded by Hub.mu).
	refs int
}

// subState is where a subscription stands against the channel's stream.
type subState uint8

const (
	// subLive: the subscriber takes live events as they arrive.
	subLive subState = iota
	// subStarting: Subscribe is reading the start position and replay.
	subStarting
	// subBehind: live delivery skipped events (or may have, after a
	// Resync); the next repair pass reads history for it.
	subBehind
	// subReading: a repair pass is reading history for it.
	subReading
	// subRetrying: its read failed; it waits for the retry timer.
	subRetrying
)

// Subscription is one subscriber's interest in one channel.
type Subscription struct {
	hub     *Hub
	channel *channel
	sink    Sink
	// The fields below are guarded by channel.mu. pos is the cursor of
	// the last event handed to sink.
	pos   Cursor
	state subState
	// backlog holds, in order, the live events that arrived while the
	// subscriber was not live; lost says some were dropped (maxBacklog, or
	// a Resync) and must come from a history read that starts later.
	backlog []Event
	lost    bool
	closed  bool
}

// New returns a hub over backend. Call Run to start live delivery.
func New(backend Backend) *Hub {
	h := &Hub{backend: backend, channels: make(map[string]*channel), lifeSeed: maphash.MakeSeed()}
	h.repairs.ctx, h.repairs.cancel = context.WithCancel(context.Background())
	h.republish.wake = make(chan struct{}, 1)
	return h
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

// Run delivers the backend's live events and republishes the events
// Announce kept, until ctx ends. When it returns, repairs and republishing
// have stopped too.
func (h *Hub) Run(ctx context.Context) error {
	defer h.repairs.stop()
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		h.runRepublisher(ctx)
	}()
	defer func() { cancel(); <-done }()
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
// a caller that retries may publish the event twice, unless p has a MsgID:
// a publication with one is stored once per channel within the dedupe
// window, and a repeat returns the first event with Duplicate set
// (dedupe.go).
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
	if err == nil && !ev.Duplicate && h.hooks.After != nil {
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
	sub := &Subscription{hub: h, channel: ch, sink: sink, state: subStarting}
	// Registered before the read, so every live event is in the read's
	// result or in the backlog, or both (start skips the duplicates).
	ch.mu.Lock()
	ch.subs[sub] = struct{}{}
	ch.mu.Unlock()

	r, err := h.readStart(ctx, name, since)

	ch.mu.Lock()
	defer ch.mu.Unlock()
	if err == nil {
		err = sub.start(r)
	}
	if err != nil {
		if !sub.closed { // a refused delivery has released it already
			h.release(ch, sub)
		}
		return nil, err
	}
	return sub, nil
}

// startRead is what a new subscription learns before its first delivery.
type startRead struct {
	from      Cursor  // the position replay continues from
	evs       []Event // the replay, after from
	top       Cursor  // the channel's newest event
	recovered bool    // whether the requested replay was possible
}

// readStart reads a new subscription's position and replay. It runs
// without locks: live events meanwhile wait in the subscription's backlog.
func (h *Hub) readStart(ctx context.Context, name string, since *Cursor) (startRead, error) {
	if since == nil {
		top, err := h.backend.Top(ctx, name)
		return startRead{from: top, top: top, recovered: true}, err
	}
	evs, top, from, err := h.readAfter(ctx, name, *since)
	switch {
	case err == nil:
		return startRead{from: *since, evs: evs, top: top, recovered: true}, nil
	case from != nil: // a new epoch, whole in history: all of it, not recovered
		return startRead{from: *from, evs: evs, top: top}, nil
	case errors.Is(err, ErrUnrecoverable):
		return startRead{from: top, top: top}, nil
	}
	return startRead{}, err
}

// start sends a new subscription's KindSubscribed delivery and replay,
// then the live events that arrived meanwhile. Called with channel.mu held.
func (s *Subscription) start(r startRead) error {
	s.pos = r.from
	if !s.sink(Delivery{Kind: KindSubscribed, Channel: s.channel.name, Position: r.top, Recovered: r.recovered}) ||
		!s.deliverAll(r.evs) {
		return ErrSlowConsumer
	}
	s.drain()
	switch {
	case s.closed: // the sink refused an event that arrived during the read
		return ErrSlowConsumer
	case s.state == subBehind:
		s.hub.startRepair(s.channel)
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
		sub.backlog = nil
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
