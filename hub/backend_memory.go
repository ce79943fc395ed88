package hub

import (
	"context"
	"sync"
	"time"
)

// MemoryConfig configures the in-process backend.
type MemoryConfig struct {
	// HistorySize is the number of events kept per channel. Zero means
	// DefaultHistorySize.
	HistorySize int
	// HistoryTTL is how long a channel's history lives after its last
	// publish. Zero means DefaultHistoryTTL.
	HistoryTTL time.Duration
	// Shards is the number of delivery goroutines; a channel always maps to
	// the same one, which keeps its events in order. Zero means
	// defaultShards (4).
	Shards int
	// Dedupe bounds the message ids each channel remembers (dedupe.go).
	// The zero value means Ably's window and DefaultDedupeIDs.
	Dedupe DedupeConfig
	// Now is the clock, for tests. Nil means time.Now.
	Now func() time.Time
}

// Memory is the embedded single-node backend: histories live in process
// memory and "other nodes" do not exist. It is the default for `make run`.
type Memory struct {
	cfg MemoryConfig

	// shards split the channels by name, each under its own lock, so
	// publishes to different channels do not queue behind one mutex (with
	// many concurrent HTTP publishes on 2 cores, one lock held by a
	// descheduled goroutine stalled every other publisher). A channel
	// always maps to the same shard; Publish holds its lock while pushing
	// to delivery, so the channel's queue order equals its offset order.
	shards [memoryLockShards]memShard

	delivery *delivery
	closed   chan struct{}
	once     sync.Once
}

var _ Backend = (*Memory)(nil)

// memoryLockShards is the number of independently locked parts of a
// Memory backend's channels.
const memoryLockShards = 64

// memShard is one lock's channels and subscriptions.
type memShard struct {
	mu       sync.Mutex
	channels map[string]*memChannel
	subs     map[string]bool
}

// shard returns the part of m that holds name (FNV-1a of the name).
func (m *Memory) shard(name string) *memShard {
	h := uint32(2166136261)
	for i := 0; i < len(name); i++ {
		h ^= uint32(name[i])
		h *= 16777619
	}
	return &m.shards[h%memoryLockShards]
}

type memChannel struct {
	epoch   string
	top     uint64
	ring    eventRing
	expires time.Time
	ids     recentIDs
}

// eventRing holds the newest cap(buf) events, as records
// (memory_record.go), without copying on append.
type eventRing struct {
	buf   [][]byte
	start int // index of the oldest event
	n     int
}

func (r *eventRing) push(ev *Event, size int) {
	rec := encodeRecord(ev)
	// Until the ring is full it never wraps: start stays 0 and len(buf) == n.
	if r.n < size {
		r.buf = append(r.buf, rec)
		r.n++
		return
	}
	r.buf[r.start] = rec
	r.start = (r.start + 1) % len(r.buf)
}

// at returns the record at index i (0 = oldest).
func (r *eventRing) at(i int) []byte { return r.buf[(r.start+i)%len(r.buf)] }

// from decodes the events from index i (0 = oldest) to the newest; the
// oldest held event is at offset oldest of channel's epoch.
func (r *eventRing) from(i int, channel string, epoch string, oldest uint64) []Event {
	out := make([]Event, 0, r.n-i)
	for ; i < r.n; i++ {
		out = append(out, decodeRecord(r.buf[(r.start+i)%len(r.buf)], channel, Cursor{Epoch: epoch, Offset: oldest + uint64(i)}))
	}
	return out
}

// NewMemory returns a memory backend.
func NewMemory(cfg MemoryConfig) *Memory {
	if cfg.HistorySize <= 0 {
		cfg.HistorySize = DefaultHistorySize
	}
	if cfg.HistoryTTL <= 0 {
		cfg.HistoryTTL = DefaultHistoryTTL
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	cfg.Dedupe = cfg.Dedupe.withDefaults()
	m := &Memory{
		cfg:      cfg,
		delivery: newDelivery(cfg.Shards),
		closed:   make(chan struct{}),
	}
	for i := range m.shards {
		m.shards[i].channels = make(map[string]*memChannel)
		m.shards[i].subs = make(map[string]bool)
	}
	return m
}

// channel returns the live history of name, dropping it if expired.
// Called with sh.mu held.
func (sh *memShard) channel(name string, now time.Time) *memChannel {
	c := sh.channels[name]
	if c != nil && now.After(c.expires) {
		delete(sh.channels, name)
		return nil
	}
	return c
}

// Publish appends and enqueues the event for delivery in one critical
// section, so queue order equals offset order.
func (m *Memory) Publish(ctx context.Context, name string, p Publication) (Event, error) {
	select {
	case <-m.closed:
		return Event{}, ErrUnavailable
	default:
	}
	now := m.cfg.Now()
	sh := m.shard(name)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	c := sh.channel(name, now)
	if c == nil {
		c = &memChannel{epoch: NewEpoch()}
		sh.channels[name] = c
	}
	if p.MsgID != "" {
		if ev, ok := c.ids.lookup(p.MsgID, now, m.cfg.Dedupe); ok {
			return c.duplicate(ev, p), nil
		}
	}
	c.top++
	cur := Cursor{Epoch: c.epoch, Offset: c.top}
	ev := Event{ID: cur.String(), Channel: name, Type: p.Type, Data: p.Data, TS: now.UTC(), Origin: p.Origin, Cursor: cur}
	c.ring.push(&ev, m.cfg.HistorySize)
	c.expires = now.Add(m.cfg.HistoryTTL)
	if p.MsgID != "" {
		c.ids.add(ev, now, m.cfg.Dedupe)
	}
	if sh.subs[name] {
		m.delivery.push(ev)
	}
	return ev, nil
}

// duplicate is the answer to a publish of an id already published as ev
// (kept without its data): ev with the data history still holds, or else
// the data the retry brought.
func (c *memChannel) duplicate(ev Event, p Publication) Event {
	ev.Data = p.Data
	oldest := c.top - uint64(c.ring.n) + 1
	if ev.Cursor.Epoch == c.epoch && ev.Cursor.Offset >= oldest && ev.Cursor.Offset <= c.top {
		ev.Data = decodeRecord(c.ring.at(int(ev.Cursor.Offset-oldest)), ev.Channel, ev.Cursor).Data
	}
	ev.Duplicate = true
	return ev
}

// History implements Backend.
func (m *Memory) History(ctx context.Context, name string, since Cursor) ([]Event, Cursor, error) {
	sh := m.shard(name)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	c := sh.channel(name, m.cfg.Now())
	if c == nil {
		if since.IsZero() {
			return nil, Cursor{}, nil
		}
		return nil, Cursor{}, ErrUnrecoverable
	}
	top := Cursor{Epoch: c.epoch, Offset: c.top}
	oldest := c.top - uint64(c.ring.n) + 1
	switch {
	case since.Epoch != "" && since.Epoch != c.epoch,
		since.Epoch == "" && since.Offset != 0,
		since.Offset > c.top,
		since.Offset+1 < oldest:
		return nil, top, ErrUnrecoverable
	}
	return c.ring.from(int(since.Offset+1-oldest), name, c.epoch, oldest), top, nil
}

// Top implements Backend.
func (m *Memory) Top(ctx context.Context, name string) (Cursor, error) {
	sh := m.shard(name)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if c := sh.channel(name, m.cfg.Now()); c != nil {
		return Cursor{Epoch: c.epoch, Offset: c.top}, nil
	}
	return Cursor{}, nil
}

// Subscribe implements Backend; it takes effect immediately.
func (m *Memory) Subscribe(ctx context.Context, name string) error {
	sh := m.shard(name)
	sh.mu.Lock()
	sh.subs[name] = true
	sh.mu.Unlock()
	return nil
}

// Unsubscribe implements Backend.
func (m *Memory) Unsubscribe(ctx context.Context, name string) error {
	sh := m.shard(name)
	sh.mu.Lock()
	delete(sh.subs, name)
	sh.mu.Unlock()
	return nil
}

// Run starts live delivery and a sweeper that frees expired histories,
// and waits until ctx ends or Close is called.
func (m *Memory) Run(ctx context.Context, h Handler) error {
	var wg sync.WaitGroup
	wg.Go(func() { m.delivery.run(ctx, m.closed, h) })
	t := time.NewTicker(memorySweepInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			wg.Wait()
			return ctx.Err()
		case <-m.closed:
			wg.Wait()
			return nil
		case <-t.C:
			m.sweep()
		}
	}
}

// sweep frees the memory of expired histories nobody has touched.
func (m *Memory) sweep() {
	now := m.cfg.Now()
	for i := range m.shards {
		sh := &m.shards[i]
		sh.mu.Lock()
		for name := range sh.channels {
			sh.channel(name, now)
		}
		sh.mu.Unlock()
	}
}

// Ping implements Backend; memory is always reachable until closed.
func (m *Memory) Ping(ctx context.Context) error {
	select {
	case <-m.closed:
		return ErrUnavailable
	default:
		return nil
	}
}

// Close stops delivery. Events still queued are not delivered, as with a
// node that shuts down; they remain in history for clients that resume.
func (m *Memory) Close() error {
	m.once.Do(func() { close(m.closed) })
	return nil
}
