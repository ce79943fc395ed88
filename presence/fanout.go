package presence

import (
	"sync"
	"sync/atomic"
)

// fanout calls a node's local subscribers, per channel in the order events
// were queued, never holding a lock while it calls them. Whoever queues an
// event drains the channel's queue unless another goroutine is draining it
// already; that one then delivers the new event too, after the ones before
// it. Subscribers are taken when an event is queued, so a Subscribe sees
// exactly the events queued after it.
type fanout struct {
	mu    sync.Mutex
	chans map[string]*fanChannel
}

type fanChannel struct {
	subs     []*subscriber // copy on write: queued events keep their slice
	queue    []queuedEvent
	draining bool
}

type queuedEvent struct {
	ev   Event
	subs []*subscriber
}

type subscriber struct {
	fn        func(Event)
	cancelled atomic.Bool
}

func newFanout() *fanout { return &fanout{chans: map[string]*fanChannel{}} }

// subscribe adds fn to channel. After cancel returns fn is not called
// again, except by a call that had already started.
func (f *fanout) subscribe(channel string, fn func(Event)) (cancel func()) {
	s := &subscriber{fn: fn}
	f.mu.Lock()
	ch := f.chans[channel]
	if ch == nil {
		ch = &fanChannel{}
		f.chans[channel] = ch
	}
	ch.subs = append(ch.subs[:len(ch.subs):len(ch.subs)], s)
	f.mu.Unlock()
	var once sync.Once
	return func() { once.Do(func() { f.remove(channel, s) }) }
}

func (f *fanout) remove(channel string, s *subscriber) {
	s.cancelled.Store(true)
	f.mu.Lock()
	defer f.mu.Unlock()
	ch := f.chans[channel]
	if ch == nil {
		return
	}
	subs := make([]*subscriber, 0, len(ch.subs))
	for _, o := range ch.subs {
		if o != s {
			subs = append(subs, o)
		}
	}
	ch.subs = subs
	if len(subs) == 0 && len(ch.queue) == 0 && !ch.draining {
		delete(f.chans, channel)
	}
}

// has reports whether channel has local subscribers.
func (f *fanout) has(channel string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	ch := f.chans[channel]
	return ch != nil && len(ch.subs) > 0
}

// enqueue queues ev for the channel's current subscribers. Callers that
// must keep an order queue under the lock that defines it.
func (f *fanout) enqueue(ev Event) {
	f.mu.Lock()
	defer f.mu.Unlock()
	ch := f.chans[ev.Channel]
	if ch == nil || len(ch.subs) == 0 {
		return // nobody here listens
	}
	ch.queue = append(ch.queue, queuedEvent{ev: ev, subs: ch.subs})
}

// drain delivers the channel's queue unless another goroutine does.
func (f *fanout) drain(channel string) {
	f.mu.Lock()
	ch := f.chans[channel]
	if ch == nil || ch.draining || len(ch.queue) == 0 {
		f.mu.Unlock()
		return
	}
	ch.draining = true
	for len(ch.queue) > 0 {
		q := ch.queue[0]
		ch.queue[0] = queuedEvent{}
		ch.queue = ch.queue[1:]
		f.mu.Unlock()
		for _, s := range q.subs {
			if !s.cancelled.Load() {
				s.fn(q.ev)
			}
		}
		f.mu.Lock()
	}
	ch.draining = false
	ch.queue = nil
	if len(ch.subs) == 0 {
		delete(f.chans, channel)
	}
	f.mu.Unlock()
}

// deliver queues and drains ev: for a caller that is the only one
// delivering (the Redis receive loop).
func (f *fanout) deliver(ev Event) {
	f.enqueue(ev)
	f.drain(ev.Channel)
}
