package hub

import "time"

// Deduplication by message id. A Publication whose Origin.MsgID is set is
// published at most once per channel within the dedupe window: a second
// Publish of the same id on the same channel, on any node of the
// deployment, returns the event the first one stored (same ID, TS, Type,
// Origin) with Duplicate set, and stores and announces nothing. The check
// and the store are one atomic step of the backend, so two concurrent
// publishes of one id (a client's retry racing its original on another
// node) cannot both store it. An event without a MsgID is never checked.
//
// The window is Ably's idempotency window (DefaultDedupeWindow), and each
// channel remembers at most DefaultDedupeIDs ids (both configurable per
// backend). Ids are remembered with the event's cursor and time, not its
// data: a duplicate whose original was trimmed from history comes back
// with the original's ID, TS, Type and Origin and the data it was given.

// DedupeConfig bounds a backend's memory of published message ids.
type DedupeConfig struct {
	// Window is how long an id is remembered after its publish. Zero means
	// DefaultDedupeWindow.
	Window time.Duration
	// MaxIDs bounds the ids remembered per channel; the oldest are
	// forgotten first. Zero means DefaultDedupeIDs.
	MaxIDs int
}

func (c DedupeConfig) withDefaults() DedupeConfig {
	if c.Window <= 0 {
		c.Window = DefaultDedupeWindow
	}
	if c.MaxIDs <= 0 {
		c.MaxIDs = DefaultDedupeIDs
	}
	return c
}

// recentIDs is the memory backend's record of one channel's message ids,
// oldest first. Events are stored without Data: the data comes from the
// history ring while it still holds the event.
type recentIDs struct {
	byID  map[string]Event
	order []recentID
	head  int // order[head:] are live
}

type recentID struct {
	id string
	at time.Time
}

// lookup returns the event published under id, if remembered. It first
// forgets what the window and bound no longer cover.
func (r *recentIDs) lookup(id string, now time.Time, cfg DedupeConfig) (Event, bool) {
	r.prune(now, cfg)
	ev, ok := r.byID[id]
	return ev, ok
}

// add remembers ev under its MsgID.
func (r *recentIDs) add(ev Event, now time.Time, cfg DedupeConfig) {
	if r.byID == nil {
		r.byID = make(map[string]Event)
	}
	ev.Data = nil
	r.byID[ev.MsgID] = ev
	r.order = append(r.order, recentID{id: ev.MsgID, at: now})
	r.prune(now, cfg)
}

func (r *recentIDs) prune(now time.Time, cfg DedupeConfig) {
	for r.head < len(r.order) {
		o := r.order[r.head]
		if now.Sub(o.at) <= cfg.Window && len(r.order)-r.head <= cfg.MaxIDs {
			break
		}
		delete(r.byID, o.id)
		r.order[r.head] = recentID{}
		r.head++
	}
	// Compact once the dead prefix is half the slice, so appends stay
	// amortised O(1) and the slice does not grow without bound.
	if r.head > 0 && r.head*2 >= len(r.order) {
		n := copy(r.order, r.order[r.head:])
		clear(r.order[n:])
		r.order = r.order[:n]
		r.head = 0
	}
}
