package hub

import (
	"context"
	"errors"
	"sync"
	"time"
)

// Repair: bringing subscribers that fell behind live delivery back up to
// date from history. A channel's repair passes run one at a time, on a
// goroutine of their own (or inside Resync), never on a delivery goroutine,
// and read history without holding channel.mu; so a slow read stalls only
// the subscribers it is for, and live events of every other subscriber and
// channel keep flowing.

// Resync re-checks every local subscriber against history after the backend
// may have missed live events: what history still has is delivered, and a
// subscriber whose position history no longer covers gets KindResync.
//
// Channels are repaired one after the other on the caller's goroutine (the
// Redis backend's resync loop), which bounds the reads a reconnect sends to
// Redis at once. A channel waits for its turn with its subscribers live, so
// its live events keep flowing meanwhile; a gap they show is repaired at
// once on the channel's own repair goroutine.
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
		for sub := range ch.subs {
			sub.resync()
		}
		inline := !ch.repairing
		ch.repairing = true
		ch.mu.Unlock()
		if inline {
			h.repairPasses(ch)
		}
	}
}

// resync marks a subscriber as possibly behind. A read already under way
// may predate the events live delivery missed, so its result is not
// enough. Called with channel.mu held.
func (s *Subscription) resync() {
	switch s.state {
	case subLive, subRetrying:
		s.state = subBehind
	case subStarting, subReading:
		s.lost = true
	}
}

// startRepair runs the channel's repair passes on a goroutine of their own,
// unless they run already (the running ones will see every subscriber that
// is behind now). Called with channel.mu held.
func (h *Hub) startRepair(ch *channel) {
	if !ch.repairing && h.repairs.spawn(func() { h.repairPasses(ch) }) {
		ch.repairing = true
	}
}

// repairPasses brings the channel's behind subscribers up to date until
// none is left (those waiting for a retry do not count). Each pass reads
// history once per position, however many subscribers stand there: after
// a reconnect nearly all of a channel's subscribers do. The caller has set
// ch.repairing; repairPasses clears it when done.
func (h *Hub) repairPasses(ch *channel) {
	for {
		ch.mu.Lock()
		positions := ch.takeBehind()
		if len(positions) == 0 {
			ch.repairing = false
			ch.mu.Unlock()
			return
		}
		ch.mu.Unlock()

		reads := make(map[Cursor]historyRead, len(positions))
		for _, pos := range positions {
			reads[pos] = h.readHistory(ch.name, pos)
		}

		ch.mu.Lock()
		h.applyReads(ch, reads)
		ch.mu.Unlock()
	}
}

// takeBehind moves the behind subscribers into this pass and returns
// their distinct positions. A subscriber that falls behind later waits for
// the next pass, whose read starts after its gap. Called with ch.mu held.
func (ch *channel) takeBehind() []Cursor {
	var positions []Cursor
	seen := make(map[Cursor]bool)
	for sub := range ch.subs {
		if sub.state != subBehind {
			continue
		}
		sub.state = subReading
		if !seen[sub.pos] {
			seen[sub.pos] = true
			positions = append(positions, sub.pos)
		}
	}
	return positions
}

// historyRead is one History result, shared by the subscribers of a pass
// that stand at the same position. They only read evs.
type historyRead struct {
	evs []Event
	top Cursor
	err error
	// resyncAt is set when pos could not be recovered but the channel's
	// current epoch is whole in history: the subscriber is resynced to the
	// epoch's start and evs are that epoch's events.
	resyncAt *Cursor
}

// readHistory reads the channel's events after pos, without locks.
func (h *Hub) readHistory(name string, pos Cursor) historyRead {
	ctx, cancel := context.WithTimeout(h.repairs.ctx, repairTimeout)
	defer cancel()
	evs, top, from, err := h.readAfter(ctx, name, pos)
	if from != nil {
		return historyRead{evs: evs, top: top, err: ErrUnrecoverable, resyncAt: from}
	}
	return historyRead{evs: evs, top: top, err: err}
}

// readAfter reads the events after since. When since cannot be recovered
// because it belongs to another epoch (Redis lost, rolled back or failed
// over its data), the new epoch may already hold events published since
// the fault; the reader must get them, not only a resync at the top that
// would skip them silently (found by the chaos suite). So when the current
// epoch's history is whole from its first event, readAfter returns that
// whole epoch and from = the epoch's start: the reader resyncs there and
// then receives every event of the new epoch. from is nil otherwise, and
// the result is History's own.
func (h *Hub) readAfter(ctx context.Context, name string, since Cursor) (evs []Event, top Cursor, from *Cursor, err error) {
	evs, top, err = h.backend.History(ctx, name, since)
	if !errors.Is(err, ErrUnrecoverable) || top.Epoch == "" || top.Epoch == since.Epoch {
		return evs, top, nil, err
	}
	start := Cursor{Epoch: top.Epoch}
	all, allTop, allErr := h.backend.History(ctx, name, start)
	if allErr != nil {
		return evs, top, nil, err
	}
	return all, allTop, &start, ErrUnrecoverable
}

// applyReads hands each subscriber of the pass what its read found, and
// schedules a retry for those whose read failed. Called with ch.mu held.
func (h *Hub) applyReads(ch *channel, reads map[Cursor]historyRead) {
	failed := false
	for sub := range ch.subs {
		if sub.state != subReading {
			continue
		}
		if !sub.catchUp(reads[sub.pos]) {
			failed = true
		}
	}
	if failed {
		h.scheduleRetry(ch)
	} else {
		ch.retries = 0
	}
}

// catchUp delivers what history holds after the subscriber's position, or
// tells it recovered:false when history cannot fill the gap, then drains
// its backlog. It reports false when the backend could not be read: the
// subscriber keeps its position and backlog and waits for a retry.
// Called with channel.mu held.
func (s *Subscription) catchUp(r historyRead) bool {
	switch {
	case r.err == nil:
		if !s.deliverAll(r.evs) {
			return true
		}
	case errors.Is(r.err, ErrUnrecoverable):
		at := r.top
		if r.resyncAt != nil {
			at = *r.resyncAt
		}
		s.pos = at
		if !s.sink(Delivery{Kind: KindResync, Channel: s.channel.name, Position: at}) {
			s.drop()
			return true
		}
		if r.resyncAt != nil && !s.deliverAll(r.evs) {
			return true
		}
	default:
		s.state = subRetrying
		return false
	}
	s.drain()
	return true
}

// scheduleRetry arranges one more repair of the channel's retrying
// subscribers, unless one is pending. Resync also retries them, but a quiet
// channel may see no Resync, and its subscribers must not stay behind.
// Called with ch.mu held.
func (h *Hub) scheduleRetry(ch *channel) {
	if ch.retry != nil {
		return
	}
	d := repairRetry.Delay(ch.retries)
	ch.retries++
	ch.retry = time.AfterFunc(d, func() {
		ch.mu.Lock()
		defer ch.mu.Unlock()
		ch.retry = nil
		for sub := range ch.subs {
			if sub.state == subRetrying {
				sub.state = subBehind
			}
		}
		h.startRepair(ch)
	})
}

// repairGroup owns the repair goroutines, so that Run can stop them and
// wait for them when it returns.
type repairGroup struct {
	// ctx bounds every repair read and ends when Run returns. It lives in
	// the struct because repairs start from many places (dispatch, timers,
	// Resync) and all end with the hub.
	ctx    context.Context
	cancel context.CancelFunc

	// mu guards stopped and orders wg.Add before wg.Wait.
	mu      sync.Mutex
	stopped bool
	wg      sync.WaitGroup
}

// spawn runs f on a new goroutine, or reports false once stopped.
func (g *repairGroup) spawn(f func()) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.stopped {
		return false
	}
	g.wg.Go(f)
	return true
}

// stop ends the reads under way and waits for the repair goroutines.
func (g *repairGroup) stop() {
	g.cancel()
	g.mu.Lock()
	g.stopped = true
	g.mu.Unlock()
	g.wg.Wait()
}
