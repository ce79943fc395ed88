package presence

import (
	"context"
	"sync"
	"time"
)

// Gap repair of the Redis registry's live delivery. PubSub loses what is
// published while a node's connection is down or being re-established. A
// channel's events carry consecutive serials (redis_apply.lua), so the
// node tracks, for each channel it has subscribers for, the last serial it
// delivered, and reads what it missed from history when a serial skips
// ahead or the connection came back. Events older than the channel's
// history (HistorySize) cannot be recovered and are not delivered.

// gapRepairTimeout bounds one history read of a repair; the receive loop
// waits for it, so that the channel's later events stay in order.
const gapRepairTimeout = 5 * time.Second

// serials is the per-channel delivery position. The receive goroutine is
// its only writer besides Subscribe, which sets a channel's first
// position.
type serials struct {
	mu sync.Mutex
	m  map[string]position
}

// position is the last serial delivered. After a repair, live events up to
// last may still arrive: those above floor are duplicates of what the
// repair delivered. One at or below floor means Redis went back to an
// older state (restored from a snapshot), and counting starts again there.
type position struct{ last, floor int64 }

func (s *serials) get(ch string) (position, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.m[ch]
	return p, ok
}

func (s *serials) set(ch string, p position) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[ch] = p
}

// start sets a channel's position unless it has one.
func (s *serials) start(ch string, last int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.m[ch]; !ok {
		s.m[ch] = position{last, last}
	}
}

func (s *serials) channels() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.m))
	for ch := range s.m {
		out = append(out, ch)
	}
	return out
}

func (s *serials) drop(ch string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, ch)
}

// track records the channel's current serial when a subscriber arrives, so
// a gap before its first event is found too. A failure leaves the channel
// to start at its first event.
func (r *Redis) track(channel string) {
	if _, ok := r.pos.get(channel); ok {
		return
	}
	ctx, cancel := context.WithTimeout(r.life, time.Second)
	defer cancel()
	n, err := r.client.Get(ctx, r.key(channel, "serial")).Int64()
	if err == nil {
		r.pos.start(channel, n)
	}
}

// live handles one event read from PubSub.
func (r *Redis) live(serial int64, ev Event) {
	ch := ev.Channel
	if !r.fan.has(ch) {
		r.pos.drop(ch)
		return
	}
	p, ok := r.pos.get(ch)
	switch {
	case !ok || serial == p.last+1 || serial <= p.floor:
	case serial <= p.last:
		return // delivered by a repair already
	default:
		r.catchUp(ch, p.last, serial)
	}
	r.pos.set(ch, position{serial, serial})
	r.fan.deliver(ev)
}

// reconnected repairs every tracked channel after the PubSub connection
// came back: what was published meanwhile is only in history.
func (r *Redis) reconnected() {
	for _, ch := range r.pos.channels() {
		if !r.fan.has(ch) {
			r.pos.drop(ch)
			continue
		}
		p, _ := r.pos.get(ch)
		newest, ok := r.catchUp(ch, p.last, 0)
		switch {
		case !ok:
		case newest > p.last:
			r.pos.set(ch, position{last: newest, floor: p.last})
		case newest < p.last: // Redis lost or rolled back the channel
			r.pos.set(ch, position{newest, newest})
		}
	}
}

// catchUp delivers the channel's events in history after serial from and
// before serial to (0: all). It returns the newest serial in history, and
// false when history could not be read.
func (r *Redis) catchUp(ch string, from, to int64) (int64, bool) {
	ctx, cancel := context.WithTimeout(r.life, gapRepairTimeout)
	defer cancel()
	all, err := r.client.LRange(ctx, r.key(ch, "history"), 0, int64(r.cfg.HistorySize)-1).Result()
	if err != nil {
		return 0, false
	}
	var newest int64
	for i := len(all) - 1; i >= 0; i-- { // oldest first
		serial, ev, err := decodePayload(all[i])
		if err != nil {
			continue
		}
		newest = max(newest, serial)
		if serial > from && (to == 0 || serial < to) {
			r.fan.deliver(ev)
		}
	}
	return newest, true
}
