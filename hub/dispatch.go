package hub

import (
	"context"
	"errors"
	"time"
)

// hubHandler is the Hub seen as a backend Handler.
type hubHandler Hub

// repairTimeout bounds one history read made to close a gap in live delivery.
const repairTimeout = 5 * time.Second

// HandleEvent fans a live event out to the channel's local subscribers.
func (hh *hubHandler) HandleEvent(ev Event) {
	h := (*Hub)(hh)
	h.mu.Lock()
	ch := h.channels[ev.Channel]
	h.mu.Unlock()
	if ch == nil {
		return
	}
	ch.mu.Lock()
	defer ch.mu.Unlock()
	var hc histories
	for sub := range ch.subs {
		sub.advance(ev, &hc)
	}
}

// Resync re-checks every local subscriber against history after the backend
// may have missed live events: what history still has is delivered, and a
// subscriber whose position history no longer covers gets KindResync.
func (hh *hubHandler) Resync() {
	h := (*Hub)(hh)
	h.mu.Lock()
	chans := make([]*channel, 0, len(h.channels))
	for _, ch := range h.channels {
		chans = append(chans, ch)
	}
	h.mu.Unlock()
	for _, ch := range chans {
		ch.mu.Lock()
		var hc histories
		for sub := range ch.subs {
			sub.repair(&hc)
		}
		ch.mu.Unlock()
	}
}

// histories memoises History reads during one pass over a channel's
// subscribers: after a gap or a reconnect they nearly all stand at the same
// position, and one read serves them all. It is allocated on first use, so
// the gap-free hot path pays nothing.
type histories map[Cursor]historyRead

type historyRead struct {
	evs []Event
	top Cursor
	err error
}

// history reads the channel's events after the subscriber's position,
// through hc when given. Callers only read the returned slice.
func (s *Subscription) history(hc *histories) ([]Event, Cursor, error) {
	if hc != nil {
		if r, ok := (*hc)[s.pos]; ok {
			return r.evs, r.top, r.err
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), repairTimeout)
	defer cancel()
	evs, top, err := s.hub.backend.History(ctx, s.channel.name, s.pos)
	if hc != nil {
		if *hc == nil {
			*hc = make(histories)
		}
		(*hc)[s.pos] = historyRead{evs, top, err}
	}
	return evs, top, err
}

// follows reports whether ev comes directly after position pos.
func follows(pos Cursor, ev Cursor) bool {
	if pos.Epoch == "" {
		// Nothing seen yet: only the first event of an epoch follows.
		return pos.Offset == 0 && ev.Offset == 1
	}
	return pos.Epoch == ev.Epoch && ev.Offset == pos.Offset+1
}

// advance hands ev to the subscriber if it is the next one, skips it if it
// was already delivered (by replay), and repairs from history on a gap.
// Called with channel.mu held.
func (s *Subscription) advance(ev Event, hc *histories) {
	switch {
	case s.closed:
	case follows(s.pos, ev.Cursor):
		s.deliver(ev)
	case s.pos.Epoch == ev.Cursor.Epoch && ev.Cursor.Offset <= s.pos.Offset:
		// Already delivered by replay or repair.
	default:
		s.repair(hc)
	}
}

// repair delivers what history holds after the subscriber's position, or
// tells it recovered:false when history cannot fill the gap.
// Called with channel.mu held.
func (s *Subscription) repair(hc *histories) {
	if s.closed {
		return
	}
	evs, top, err := s.history(hc)
	switch {
	case err == nil:
		s.deliverAll(evs)
	case errors.Is(err, ErrUnrecoverable):
		s.pos = top
		if !s.sink(Delivery{Kind: KindResync, Channel: s.channel.name, Position: top}) {
			s.drop()
		}
	default:
		// The backend is unreachable: keep the position and try again soon.
		// Resync and the next live event also retry, but a quiet channel
		// may have neither, and its subscriber must not stay behind.
		s.retryRepair()
	}
}

// repairRetryDelay spaces out repair attempts while the backend is down.
const repairRetryDelay = time.Second

// retryRepair schedules one more repair unless one is already scheduled.
// Called with channel.mu held.
func (s *Subscription) retryRepair() {
	if s.repairScheduled {
		return
	}
	s.repairScheduled = true
	time.AfterFunc(repairRetryDelay, func() {
		s.channel.mu.Lock()
		defer s.channel.mu.Unlock()
		s.repairScheduled = false
		s.repair(nil)
	})
}

// deliverAll hands evs (already in order) to the sink, skipping any at or
// before the subscriber's position. It reports false if the sink refused.
func (s *Subscription) deliverAll(evs []Event) bool {
	for _, ev := range evs {
		if s.closed {
			return false
		}
		if s.pos.Epoch == ev.Cursor.Epoch && ev.Cursor.Offset <= s.pos.Offset {
			continue
		}
		if !s.deliver(ev) {
			return false
		}
	}
	return true
}

// deliver hands one event to the sink and advances the position; a refusal
// drops the subscription (slow consumer).
func (s *Subscription) deliver(ev Event) bool {
	if !s.sink(Delivery{Kind: KindEvent, Channel: s.channel.name, Event: ev}) {
		s.drop()
		return false
	}
	s.pos = ev.Cursor
	return true
}

// drop removes a subscription whose sink refused a delivery. Called with
// channel.mu held.
func (s *Subscription) drop() {
	if !s.closed {
		s.hub.release(s.channel, s)
	}
}
