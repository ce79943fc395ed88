package publish

import (
	"container/list"
	"context"
	"sync"
	"time"
)

// idempotency remembers, per node, which message ids were published on
// which channel in the last window, like Ably's idempotent publishing: a
// retried request is answered with the original event's serial. It is a
// first filter, a bounded LRU on this node that saves a backend round
// trip and makes concurrent retries on this node wait for one another;
// what makes a retry on any node publish nothing is the hub, which stores
// each message id once per channel (hub/dedupe.go).
type idempotency struct {
	window time.Duration
	max    int
	now    func() time.Time

	mu    sync.Mutex
	order *list.List // of *claim, newest first
	byKey map[string]*list.Element
}

// claim is one id's publish, in flight or done.
type claim struct {
	key  string
	at   time.Time
	done chan struct{} // closed when the publish ends
	// serial is the event's cursor; set before done closes if it succeeded.
	serial string
	ok     bool
}

func newIdempotency(window time.Duration, max int, now func() time.Time) *idempotency {
	return &idempotency{window: window, max: max, now: now, order: list.New(), byKey: make(map[string]*list.Element)}
}

// begin returns the serial of an earlier publish of key, or a claim the
// caller now owns and must settle with end. A publish of key in flight is
// waited for, so two concurrent retries cannot both publish.
func (d *idempotency) begin(ctx context.Context, key string) (serial string, owned *claim, err error) {
	for {
		c, mine := d.lookup(key)
		if mine {
			return "", c, nil
		}
		select {
		case <-c.done:
		case <-ctx.Done():
			return "", nil, ctx.Err()
		}
		if c.ok {
			return c.serial, nil, nil
		}
		// The earlier attempt failed and released the key: try to own it.
	}
}

func (d *idempotency) lookup(key string) (*claim, bool) {
	now := d.now()
	d.mu.Lock()
	defer d.mu.Unlock()
	if el, ok := d.byKey[key]; ok {
		c := el.Value.(*claim)
		if now.Sub(c.at) <= d.window {
			return c, false
		}
		d.remove(el)
	}
	c := &claim{key: key, at: now, done: make(chan struct{})}
	d.byKey[key] = d.order.PushFront(c)
	for d.order.Len() > d.max {
		d.remove(d.order.Back())
	}
	return c, true
}

// end settles a claim: on success the serial is remembered; on failure the
// key is released so a retry publishes.
func (d *idempotency) end(c *claim, serial string, ok bool) {
	d.mu.Lock()
	if ok {
		c.serial, c.ok = serial, true
	} else if el, found := d.byKey[c.key]; found && el.Value.(*claim) == c {
		d.remove(el)
	}
	d.mu.Unlock()
	close(c.done)
}

func (d *idempotency) remove(el *list.Element) {
	d.order.Remove(el)
	delete(d.byKey, el.Value.(*claim).key)
}
