package hub

import (
	"context"
	"hash/maphash"
	"sync"
)

// delivery is the live-delivery engine both backends share: a fixed set of
// shards, each an unbounded FIFO drained by one goroutine that calls the
// Handler. A channel always maps to the same shard, so its events reach the
// Handler in the order they were pushed; channels on different shards do
// not wait for each other. The queues are unbounded so that a push (on a
// publish, or on the Redis receive loop) never blocks on a slow fan-out and
// nothing accepted is dropped; the hub keeps HandleEvent short (it never
// waits for the backend), which keeps the queues short.
type delivery struct {
	seed   maphash.Seed
	shards []*eventQueue
}

// newDelivery returns an engine with n shards (defaultShards when n <= 0).
func newDelivery(n int) *delivery {
	if n <= 0 {
		n = defaultShards
	}
	d := &delivery{seed: maphash.MakeSeed(), shards: make([]*eventQueue, n)}
	for i := range d.shards {
		d.shards[i] = newEventQueue()
	}
	return d
}

// push queues ev on its channel's shard. Callers push the events of one
// channel in offset order, and that is the order HandleEvent sees.
func (d *delivery) push(ev Event) {
	d.shards[maphash.String(d.seed, ev.Channel)%uint64(len(d.shards))].push(ev)
}

// run hands queued events to h, one goroutine per shard, until ctx ends or
// stop is closed, and returns once every shard goroutine has. Events still
// queued then are not delivered, as with a node that shuts down; they
// remain in history for clients that resume.
func (d *delivery) run(ctx context.Context, stop <-chan struct{}, h Handler) {
	var wg sync.WaitGroup
	for _, q := range d.shards {
		wg.Go(func() {
			for {
				batch, ok := q.pop(ctx, stop)
				if !ok {
					return
				}
				for _, ev := range batch {
					h.HandleEvent(ev)
				}
			}
		})
	}
	wg.Wait()
}

// eventQueue is an unbounded FIFO handing batches to one consumer.
type eventQueue struct {
	mu     sync.Mutex
	items  []Event
	signal chan struct{}
}

func newEventQueue() *eventQueue { return &eventQueue{signal: make(chan struct{}, 1)} }

func (q *eventQueue) push(ev Event) {
	q.mu.Lock()
	q.items = append(q.items, ev)
	q.mu.Unlock()
	select {
	case q.signal <- struct{}{}:
	default:
	}
}

// pop waits for events and returns all queued ones, or false when stopped.
func (q *eventQueue) pop(ctx context.Context, stop <-chan struct{}) ([]Event, bool) {
	for {
		q.mu.Lock()
		if len(q.items) > 0 {
			batch := q.items
			q.items = nil
			q.mu.Unlock()
			return batch, true
		}
		q.mu.Unlock()
		select {
		case <-q.signal:
		case <-ctx.Done():
			return nil, false
		case <-stop:
			return nil, false
		}
	}
}
