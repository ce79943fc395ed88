package ablyrt

import (
	"context"
	"sync"
	"time"

	"github.com/handoff-health/handoff/ablyproto"
)

// Outcome is how a client ProtocolMessage was answered: the serials of
// its messages (ACK) or an error (NACK).
type Outcome struct {
	Serials []string             `json:"s,omitempty"`
	Error   *ablyproto.ErrorInfo `json:"e,omitempty"`
}

// ConnStore keeps what resuming a connection needs, for any node that
// shares it: which connections are resumable, which transport holds each
// (by the nonce of the connectionKey it issued last), and the outcome of
// each msgSerial they published, so a resend after a resume is answered
// again and never published twice.
//
// The holder is how a node learns of a transport another node holds: a
// key whose nonce is not the holder's was superseded, and a recover of a
// connection a live transport holds elsewhere would put two clients on one
// connection id.
type ConnStore interface {
	// Hold makes connID resumable for ttl from now and records holder, the
	// key nonce of the transport that holds it from now on.
	Hold(ctx context.Context, connID, holder string, ttl time.Duration) error
	// Refresh extends connID's ttl if holder still holds it (or nothing is
	// recorded for it any more, e.g. after a store restart: holder then
	// holds it again) and reports whether it does; another holder means a
	// transport elsewhere took the connection over.
	Refresh(ctx context.Context, connID, holder string, ttl time.Duration) (bool, error)
	// Release keeps connID resumable for ttl with no holder, when its
	// transport ends without a CLOSE; a no-op if another holder took it.
	Release(ctx context.Context, connID, holder string, ttl time.Duration) error
	// Holder reports whether connID is resumable and which transport holds
	// it ("" for none).
	Holder(ctx context.Context, connID string) (holder string, alive bool, err error)
	// Outcome returns the recorded answer to msgSerial on connID.
	Outcome(ctx context.Context, connID string, msgSerial int64) (Outcome, bool, error)
	// Record remembers the answer to msgSerial on connID for ttl.
	Record(ctx context.Context, connID string, msgSerial int64, o Outcome, ttl time.Duration) error
	// Forget drops connID: the client closed it.
	Forget(ctx context.Context, connID string) error
}

// maxOutcomes bounds the outcomes kept per connection: the SDKs resend at
// most what was in flight, far fewer.
const maxOutcomes = 1000

// MemoryStore is a ConnStore for one node.
type MemoryStore struct {
	now func() time.Time

	mu    sync.Mutex
	conns map[string]*memConn
	swept time.Time
}

type memConn struct {
	expires  time.Time
	holder   string
	outcomes map[int64]Outcome
	order    []int64
}

// NewMemoryStore returns an empty store on clock now (nil: time.Now).
func NewMemoryStore(now func() time.Time) *MemoryStore {
	if now == nil {
		now = time.Now
	}
	return &MemoryStore{now: now, conns: make(map[string]*memConn)}
}

func (m *MemoryStore) get(connID string, create bool) *memConn {
	now := m.now()
	if now.Sub(m.swept) > time.Minute {
		m.swept = now
		for id, c := range m.conns {
			if now.After(c.expires) {
				delete(m.conns, id)
			}
		}
	}
	c := m.conns[connID]
	if c != nil && now.After(c.expires) {
		delete(m.conns, connID)
		c = nil
	}
	if c == nil && create {
		c = &memConn{} // outcomes made on the first Record: most connections only subscribe
		m.conns[connID] = c
	}
	return c
}

// Hold implements ConnStore.
func (m *MemoryStore) Hold(_ context.Context, connID, holder string, ttl time.Duration) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := m.get(connID, true)
	c.expires, c.holder = m.now().Add(ttl), holder
	return nil
}

// Refresh implements ConnStore.
func (m *MemoryStore) Refresh(_ context.Context, connID, holder string, ttl time.Duration) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := m.get(connID, true)
	if c.holder != "" && c.holder != holder {
		return false, nil
	}
	c.expires, c.holder = m.now().Add(ttl), holder
	return true, nil
}

// Release implements ConnStore.
func (m *MemoryStore) Release(_ context.Context, connID, holder string, ttl time.Duration) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := m.get(connID, true)
	if c.holder != "" && c.holder != holder {
		return nil
	}
	c.expires, c.holder = m.now().Add(ttl), ""
	return nil
}

// Holder implements ConnStore.
func (m *MemoryStore) Holder(_ context.Context, connID string) (string, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := m.get(connID, false)
	if c == nil {
		return "", false, nil
	}
	return c.holder, true, nil
}

// Outcome implements ConnStore.
func (m *MemoryStore) Outcome(_ context.Context, connID string, msgSerial int64) (Outcome, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := m.get(connID, false)
	if c == nil {
		return Outcome{}, false, nil
	}
	o, ok := c.outcomes[msgSerial]
	return o, ok, nil
}

// Record implements ConnStore.
func (m *MemoryStore) Record(_ context.Context, connID string, msgSerial int64, o Outcome, ttl time.Duration) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := m.get(connID, true)
	if exp := m.now().Add(ttl); exp.After(c.expires) {
		c.expires = exp
	}
	if c.outcomes == nil {
		c.outcomes = make(map[int64]Outcome)
	}
	if _, ok := c.outcomes[msgSerial]; !ok {
		c.order = append(c.order, msgSerial)
	}
	c.outcomes[msgSerial] = o
	for len(c.order) > maxOutcomes {
		delete(c.outcomes, c.order[0])
		c.order = c.order[1:]
	}
	return nil
}

// Forget implements ConnStore.
func (m *MemoryStore) Forget(_ context.Context, connID string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.conns, connID)
	return nil
}
