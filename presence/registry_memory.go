package presence

import (
	"context"
	"strconv"
	"sync"
	"time"
)

// MemoryConfig configures the one-node registry.
type MemoryConfig struct {
	// Grace is how long a detached connection's members stay before their
	// synthesized LEAVE. Zero means DefaultGrace.
	Grace time.Duration
	// HistorySize is how many events a channel's presence history keeps.
	// Zero means DefaultHistorySize.
	HistorySize int
	// HistoryTTL is how long an event stays in presence history. Zero means
	// DefaultHistoryTTL.
	HistoryTTL time.Duration
	// MaxDataBytes bounds a member's data. Zero means MaxDataBytes.
	MaxDataBytes int
	// LostTTL is how long a connection removed for being gone too long is
	// remembered for Claim. Zero means DefaultLostTTL.
	LostTTL time.Duration
	// SweepInterval is how often Grace deadlines are checked. Zero means
	// one second.
	SweepInterval time.Duration
	// Now is the clock, for tests. Nil means time.Now.
	Now func() time.Time
}

func (c *MemoryConfig) defaults() {
	c.Grace = cmpOr(c.Grace, DefaultGrace)
	c.HistorySize = cmpOr(c.HistorySize, DefaultHistorySize)
	c.HistoryTTL = cmpOr(c.HistoryTTL, DefaultHistoryTTL)
	c.MaxDataBytes = cmpOr(c.MaxDataBytes, MaxDataBytes)
	c.LostTTL = cmpOr(c.LostTTL, DefaultLostTTL)
	c.SweepInterval = cmpOr(c.SweepInterval, defaultMemorySweep)
	if c.Now == nil {
		c.Now = time.Now
	}
}

// cmpOr returns v, or def when v is zero or negative.
func cmpOr[T int | time.Duration](v, def T) T {
	if v <= 0 {
		return def
	}
	return v
}

// Memory is the registry of a single node: state lives in process memory
// and is lost when the process ends, with the connections it describes.
type Memory struct {
	cfg MemoryConfig
	fan *fanout

	// mu guards everything below. Apply queues its event on fan while
	// holding it, so a channel's events reach subscribers in apply order:
	// Memory.mu → fanout.mu, never the other way round.
	mu       sync.Mutex
	channels map[string]*memChannel
	conns    map[string]*memConn
	lost     lostSet
	synth    uint64 // numbers synthesized LEAVE ids

	stop chan struct{}
	done chan struct{}
	once sync.Once
}

var _ Registry = (*Memory)(nil)

// memberKey identifies a member on a channel (spec RTP2d).
type memberKey struct{ conn, client string }

type memChannel struct {
	members map[memberKey]Member
	history []Event // oldest first, at most HistorySize
}

type memConn struct {
	channels      map[string]struct{}
	detachedUntil time.Time // zero while live
}

// NewMemory returns a memory registry and starts its Grace sweeper; Stop
// ends it.
func NewMemory(cfg MemoryConfig) *Memory {
	cfg.defaults()
	m := &Memory{
		cfg: cfg, fan: newFanout(),
		channels: map[string]*memChannel{}, conns: map[string]*memConn{},
		stop: make(chan struct{}), done: make(chan struct{}),
	}
	go m.run()
	return m
}

// Apply implements Registry.
func (m *Memory) Apply(_ context.Context, c Change) (Event, bool, error) {
	if err := c.validate(m.cfg.MaxDataBytes); err != nil {
		return Event{}, false, err
	}
	m.mu.Lock()
	ev, ok := m.applyLocked(c)
	m.mu.Unlock()
	if ok {
		m.fan.drain(c.Channel)
	}
	return ev, ok, nil
}

func (m *Memory) applyLocked(c Change) (Event, bool) {
	key := memberKey{c.ConnectionID, c.ClientID}
	ch := m.channels[c.Channel]
	old, present := Member{}, false
	if ch != nil {
		old, present = ch.members[key]
	}
	if c.Action == Leave && !present {
		return Event{}, false
	}
	if ch == nil {
		ch = &memChannel{members: map[memberKey]Member{}}
		m.channels[c.Channel] = ch
	}
	mem := Member{
		Channel: c.Channel, ClientID: c.ClientID, ConnectionID: c.ConnectionID,
		ID: c.ID, Data: c.Data, Encoding: c.Encoding, Timestamp: m.cfg.Now(),
	}
	if c.Action == Leave {
		if len(mem.Data) == 0 { // a LEAVE without data reports the member's last
			mem.Data, mem.Encoding = old.Data, old.Encoding
		}
		delete(ch.members, key)
		m.forgetLocked(c.ConnectionID, c.Channel)
	} else {
		ch.members[key] = mem
		conn := m.conns[c.ConnectionID]
		if conn == nil {
			conn = &memConn{channels: map[string]struct{}{}}
			m.conns[c.ConnectionID] = conn
		}
		conn.channels[c.Channel] = struct{}{}
	}
	ev := Event{Action: c.Action, Member: mem}
	m.recordLocked(ch, ev)
	return ev, true
}

// forgetLocked drops channel from the connection's channels once the
// connection has no member left there.
func (m *Memory) forgetLocked(connID, channel string) {
	conn := m.conns[connID]
	if conn == nil {
		return
	}
	for k := range m.channels[channel].members {
		if k.conn == connID {
			return
		}
	}
	delete(conn.channels, channel)
	if len(conn.channels) == 0 {
		delete(m.conns, connID)
	}
}

// recordLocked keeps ev in the channel's history and queues it for the
// channel's subscribers.
func (m *Memory) recordLocked(ch *memChannel, ev Event) {
	if len(ch.history) >= m.cfg.HistorySize {
		n := len(ch.history) - m.cfg.HistorySize + 1
		ch.history = append(ch.history[:0], ch.history[n:]...)
	}
	ch.history = append(ch.history, ev)
	m.fan.enqueue(ev)
}

// Members implements Registry.
func (m *Memory) Members(_ context.Context, channel string) ([]Member, error) {
	if err := checkChannel(channel); err != nil {
		return nil, err
	}
	m.mu.Lock()
	out := []Member{} // never nil: an empty channel lists as [], not null
	if ch := m.channels[channel]; ch != nil {
		for _, mem := range ch.members {
			out = append(out, mem)
		}
	}
	m.mu.Unlock()
	sortMembers(out)
	return out, nil
}

// History implements Registry.
func (m *Memory) History(_ context.Context, channel string, q HistoryQuery) ([]Event, error) {
	if err := checkChannel(channel); err != nil {
		return nil, err
	}
	q, err := q.normalize()
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	var kept []Event
	if ch := m.channels[channel]; ch != nil {
		kept = make([]Event, len(ch.history))
		for i, ev := range ch.history {
			kept[len(kept)-1-i] = ev
		}
	}
	m.mu.Unlock()
	return selectHistory(kept, q, m.cfg.Now(), m.cfg.HistoryTTL), nil
}

// Subscribe implements Registry.
func (m *Memory) Subscribe(channel string, fn func(Event)) func() {
	return m.fan.subscribe(channel, fn)
}

// CloseConnection implements Registry.
func (m *Memory) CloseConnection(_ context.Context, connID string) error {
	m.removeConnection(connID, false)
	return nil
}

// removeConnection removes every member of the connection with a
// synthesized LEAVE; lost records it for Claim.
func (m *Memory) removeConnection(connID string, lost bool) {
	m.mu.Lock()
	conn := m.conns[connID]
	if conn == nil {
		m.mu.Unlock()
		return
	}
	delete(m.conns, connID)
	now := m.cfg.Now()
	var touched []string
	for name := range conn.channels {
		ch := m.channels[name]
		for k, mem := range ch.members {
			if k.conn != connID {
				continue
			}
			delete(ch.members, k)
			m.synth++
			mem.ID = synthID(connID, strconv.FormatUint(m.synth, 10))
			mem.Timestamp = now
			m.recordLocked(ch, Event{Action: Leave, Member: mem, Synthesized: true})
		}
		touched = append(touched, name)
	}
	if lost {
		m.lost.add(connID, now, m.cfg.LostTTL)
	}
	m.mu.Unlock()
	for _, name := range touched {
		m.fan.drain(name)
	}
}

// synthID is the id of a LEAVE the registry made: it does not start with
// the connectionId, so clients order it by timestamp (spec RTP2b1).
func synthID(connID, n string) string { return "synth:" + connID + ":" + n }

// DetachConnection implements Registry.
func (m *Memory) DetachConnection(_ context.Context, connID string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if conn := m.conns[connID]; conn != nil && conn.detachedUntil.IsZero() {
		conn.detachedUntil = m.cfg.Now().Add(m.cfg.Grace)
	}
	return nil
}

// Claim implements Registry.
func (m *Memory) Claim(_ context.Context, connID string) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if conn := m.conns[connID]; conn != nil {
		conn.detachedUntil = time.Time{}
	}
	return m.lost.take(connID, m.cfg.Now()), nil
}

// Stop implements Registry.
func (m *Memory) Stop() {
	m.once.Do(func() { close(m.stop) })
	<-m.done
}

func (m *Memory) run() {
	defer close(m.done)
	t := time.NewTicker(m.cfg.SweepInterval)
	defer t.Stop()
	for {
		select {
		case <-m.stop:
			return
		case <-t.C:
			m.sweep()
		}
	}
}

// sweep removes the members of connections whose Grace ended, and frees
// channels with neither members nor live history.
func (m *Memory) sweep() {
	now := m.cfg.Now()
	var expired []string
	m.mu.Lock()
	for id, conn := range m.conns {
		if !conn.detachedUntil.IsZero() && !now.Before(conn.detachedUntil) {
			expired = append(expired, id)
		}
	}
	oldest := now.Add(-m.cfg.HistoryTTL)
	for name, ch := range m.channels {
		if len(ch.members) == 0 && (len(ch.history) == 0 || ch.history[len(ch.history)-1].Timestamp.Before(oldest)) {
			delete(m.channels, name)
		}
	}
	m.lost.prune(now)
	m.mu.Unlock()
	for _, id := range expired {
		m.removeConnection(id, true)
	}
}
