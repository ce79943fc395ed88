package hub

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/handoff-health/handoff/internal/backoff"
)

// ErrQueued is returned (wrapping ErrUnavailable) by Announce when the
// event was not published now but is kept for the republisher.
var ErrQueued = fmt.Errorf("%w: event kept for republishing", ErrUnavailable)

// republisher holds the events Announce could not publish and publishes
// them again, from Hub.Run, until each is in its channel's history. It
// keeps each channel's events in the order Announce took them, so a late
// event never overtakes an earlier one on this node. It lives in this
// node's memory: a node that dies with events queued loses them (see
// docs/reliability.md for why callers answer 503 meanwhile).
type republisher struct {
	mu     sync.Mutex
	queues map[string][]*kept // channel -> events, oldest first
	n      int                // events in queues
	wake   chan struct{}
}

// kept is one event waiting for its republish. tried is when the first
// publish of it was attempted (zero: never); an event only counts as
// already stored if history holds an identical one from then on, so an
// older event that happens to look the same is never taken for it.
type kept struct {
	p     Publication
	tried time.Time
}

// storedSkew widens that window for the difference between this node's
// clock and the backend's (Redis stamps events with its own TIME).
const storedSkew = 5 * time.Second

// Announce publishes p on channel like Publish, for a change its caller
// has already stored. When the publish fails or its outcome is unknown, the
// event is kept and republished in the background until it is in the
// channel's history (a republish first looks there for an event of the same
// type and identical data stored since the first attempt, so an event
// stored by an attempt whose outcome was unknown is not added twice); Announce then returns an error wrapping
// ErrUnavailable, so the caller can tell its client the announcement is
// late. While a channel has events kept, later ones queue behind them.
// Validation errors are returned as from Publish and nothing is kept.
func (h *Hub) Announce(ctx context.Context, channel string, p Publication) (Event, error) {
	if err := p.validate(channel); err != nil {
		return Event{}, err
	}
	r := &h.republish
	r.mu.Lock()
	queued := len(r.queues[channel]) > 0
	r.mu.Unlock()
	if queued {
		return Event{}, r.keepTried(channel, p, time.Time{})
	}
	tried := time.Now()
	ev, err := h.Publish(ctx, channel, p)
	if err == nil {
		return ev, nil
	}
	if kerr := r.keepTried(channel, p, tried); kerr != nil {
		return Event{}, kerr
	}
	return Event{}, fmt.Errorf("%w: %w", ErrQueued, err)
}

// Pending returns how many events wait for a republish.
func (h *Hub) Pending() int {
	h.republish.mu.Lock()
	defer h.republish.mu.Unlock()
	return h.republish.n
}

// keepTried queues p for channel, first tried at tried (zero: not yet), or
// refuses it when MaxRepublishPending are kept.
func (r *republisher) keepTried(channel string, p Publication, tried time.Time) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.n >= MaxRepublishPending {
		return fmt.Errorf("%w: republish queue full", ErrUnavailable)
	}
	if r.queues == nil {
		r.queues = make(map[string][]*kept)
	}
	r.queues[channel] = append(r.queues[channel], &kept{p: p, tried: tried})
	r.n++
	select {
	case r.wake <- struct{}{}:
	default:
	}
	return ErrQueued
}

// runRepublisher republishes kept events until ctx ends: a pass tries every
// channel's oldest events in order; after a pass that left any, it waits
// with backoff (or until Announce keeps another).
func (h *Hub) runRepublisher(ctx context.Context) {
	attempt := 0
	for {
		if h.republishPass(ctx) {
			attempt = 0
			select {
			case <-ctx.Done():
				return
			case <-h.republish.wake:
			}
			continue
		}
		if !backoff.Sleep(ctx, republishRetry.Delay(attempt)) {
			return
		}
		attempt++
	}
}

// republishPass works through every channel's queue and reports whether
// all of them are empty now.
func (h *Hub) republishPass(ctx context.Context) bool {
	r := &h.republish
	r.mu.Lock()
	channels := make([]string, 0, len(r.queues))
	for ch := range r.queues {
		channels = append(channels, ch)
	}
	r.mu.Unlock()
	for _, ch := range channels {
		for {
			r.mu.Lock()
			q := r.queues[ch]
			r.mu.Unlock()
			if len(q) == 0 {
				break
			}
			if err := h.republishOne(ctx, ch, q[0]); err != nil {
				break
			}
			r.mu.Lock()
			r.queues[ch] = r.queues[ch][1:]
			r.n--
			if len(r.queues[ch]) == 0 {
				delete(r.queues, ch)
			}
			r.mu.Unlock()
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.n == 0
}

// republishOne makes sure k's event is in channel's history. An event never
// tried is simply published. One whose earlier attempt may have stored it
// is done if history holds an event of its type, origin and identical data
// stamped since that attempt (less storedSkew); else it is published.
func (h *Hub) republishOne(ctx context.Context, channel string, k *kept) error {
	if !k.tried.IsZero() {
		evs, _, err := h.backend.History(ctx, channel, Cursor{})
		if err != nil && !errors.Is(err, ErrUnrecoverable) {
			return err
		}
		since := k.tried.Add(-storedSkew)
		for _, ev := range evs {
			if !ev.TS.Before(since) && ev.Type == k.p.Type && ev.Origin == k.p.Origin && sameJSON(ev.Data, k.p.Data) {
				return nil
			}
		}
	} else {
		k.tried = time.Now()
	}
	_, err := h.Publish(ctx, channel, k.p)
	return err
}

// sameJSON compares two JSON texts ignoring insignificant space.
func sameJSON(a, b []byte) bool {
	var ca, cb bytes.Buffer
	if json.Compact(&ca, a) != nil || json.Compact(&cb, b) != nil {
		return bytes.Equal(a, b)
	}
	return bytes.Equal(ca.Bytes(), cb.Bytes())
}
