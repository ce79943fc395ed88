package ablybridge

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/ably/ably-go/ably"

	"github.com/handoff-health/handoff/hub"
)

// run is one pass of one worker over one channel.
type run struct {
	channel string
	session string
	w       *worker
	ably    string     // the Ably channel; resolved when first needed
	cursor  hub.Cursor // last event acknowledged by Ably (or skipped, counted)
	leaseAt time.Time  // when the channel lock was last taken or extended
	failing int        // consecutive failed attempts
}

// errLeaseLost means another node took the channel's lock (ours expired):
// this run stops and tries again shortly.
var errLeaseLost = errors.New("ably: channel lock lost")

// sync mirrors channel until its history is drained and, once no publish
// can still be on its way, takes it off the pending set.
func (b *Bridge) sync(ctx context.Context, channel string, w *worker) {
	session, _ := sessionOf(channel)
	r := &run{channel: channel, session: session, w: w}
	held, err := b.progress.Lock(ctx, channel, b.owner, b.leaseTTL())
	if err != nil || !held {
		if err != nil && ctx.Err() == nil {
			b.failed(r, failProgress, err)
		}
		// Another node is mirroring it, or Redis is down: look again soon
		// rather than wait for a rescan.
		b.kickAfter(channel, b.contended(channel, true))
		return
	}
	b.contended(channel, false)
	r.leaseAt = time.Now()
	defer func() {
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), progressTimeout)
		defer cancel()
		_ = b.progress.Unlock(uctx, channel, b.owner) // it expires anyway
		if r.ably != "" {
			// ably-go caches every channel it is asked for; sessions are
			// short-lived, so release it to keep memory flat.
			b.rest.Channels.Release(r.ably)
		}
	}()
	if err := b.mirrorChannel(ctx, r); errors.Is(err, errLeaseLost) {
		b.kickAfter(channel, b.contended(channel, true))
	}
}

// mirrorChannel drains channel, then settles its pending mark. The mark is
// read before draining and settled only if it was already older than the
// grace then: every publish announced by it has then finished, so its
// event was in the history the drain read.
func (b *Bridge) mirrorChannel(ctx context.Context, r *run) error {
	for {
		var (
			mark    Mark
			pending bool
		)
		err := b.retry(ctx, r, failProgress, func(ctx context.Context) (err error) {
			mark, pending, err = b.progress.Mark(ctx, r.channel)
			return err
		})
		if err != nil {
			return err
		}
		if err := b.drain(ctx, r); err != nil {
			return err
		}
		if !pending {
			return nil
		}
		if mark.Age < b.cfg.SettleGrace {
			b.kickAfter(r.channel, b.cfg.SettleGrace-mark.Age)
			return nil
		}
		var settled bool
		err = b.retry(ctx, r, failProgress, func(ctx context.Context) (err error) {
			settled, err = b.progress.Settle(ctx, r.channel, mark)
			return err
		})
		if err != nil || settled {
			return err
		}
		// Marked again meanwhile: a publish began; drain again.
	}
}

// drain publishes every event after the stored cursor, in order, until the
// history has nothing newer.
func (b *Bridge) drain(ctx context.Context, r *run) error {
	err := b.retry(ctx, r, failProgress, func(ctx context.Context) (err error) {
		r.cursor, err = b.progress.Cursor(ctx, r.channel)
		return err
	})
	if err != nil {
		return err
	}
	for {
		var (
			evs []hub.Event
			top hub.Cursor
		)
		err := b.retry(ctx, r, failHistory, func(ctx context.Context) (err error) {
			evs, top, err = b.hub.History(ctx, r.channel, r.cursor)
			if errors.Is(err, hub.ErrUnrecoverable) {
				return permanent(err)
			}
			return err
		})
		if errors.Is(err, hub.ErrUnrecoverable) {
			if err := b.skipLost(ctx, r, top); err != nil {
				return err
			}
			continue
		}
		if err != nil {
			return err
		}
		b.setLag(r, top)
		if len(evs) == 0 {
			return nil
		}
		if err := b.mirrorAll(ctx, r, evs, top); err != nil {
			return err
		}
	}
}

// mirrorAll publishes evs in order, each only after the previous one was
// acknowledged.
func (b *Bridge) mirrorAll(ctx context.Context, r *run, evs []hub.Event, top hub.Cursor) error {
	for _, ev := range evs {
		err := b.mirror(ctx, r, ev)
		if errors.Is(err, ErrUnknownSession) {
			return b.dropUnknown(ctx, r, top)
		}
		if err != nil {
			return err
		}
		b.setLag(r, top)
	}
	return nil
}

// mirror publishes one event until Ably acknowledges or rejects it, then
// advances the stored cursor past it.
func (b *Bridge) mirror(ctx context.Context, r *run, ev hub.Event) error {
	if r.ably == "" {
		err := b.retry(ctx, r, failResolve, func(ctx context.Context) (err error) {
			r.ably, err = b.names.name(ctx, r.session)
			if errors.Is(err, ErrUnknownSession) {
				return permanent(err)
			}
			return err
		})
		if err != nil {
			return err
		}
	}
	err := b.retry(ctx, r, failAbly, func(ctx context.Context) error {
		return b.publish(ctx, r.ably, ev)
	})
	var rej rejectedError
	switch {
	case errors.As(err, &rej):
		// Ably refused this message itself; retrying cannot change that,
		// and holding it would block the session's later events forever.
		b.m.dropped.WithLabelValues(dropRejected).Inc()
		b.log.Error().Str("channel", r.channel).Str("message_id", messageID(ev)).
			Int("status", rej.status).Int("ably_code", rej.code).
			Msg("ably bridge: Ably rejected an event; it will not be mirrored")
	case err != nil:
		return err
	default:
		b.m.bridged.Inc()
		b.m.lastSuccess.SetToCurrentTime()
	}
	return b.advance(ctx, r, ev.Cursor)
}

// advance stores c as the channel's mirrored position.
func (b *Bridge) advance(ctx context.Context, r *run, c hub.Cursor) error {
	err := b.retry(ctx, r, failProgress, func(ctx context.Context) error {
		return b.progress.SetCursor(ctx, r.channel, c)
	})
	if err == nil {
		r.cursor = c
	}
	return err
}

// rejectedError is an Ably answer that refuses the message itself.
type rejectedError struct {
	status, code int
}

func (e rejectedError) Error() string {
	return fmt.Sprintf("ably rejected the message: HTTP %d, code %d", e.status, e.code)
}

// publish sends one event to Ably with its idempotent id.
func (b *Bridge) publish(ctx context.Context, channel string, ev hub.Event) error {
	ctx, cancel := context.WithTimeout(ctx, b.cfg.PublishTimeout)
	defer cancel()
	name := ev.Type
	if n, ok := b.cfg.EventNames[ev.Type]; ok {
		name = n
	}
	// A fresh message per attempt: ably-go encodes Data in place.
	msg := &ably.Message{ID: messageID(ev), Name: name, Data: messageData(ev.Data)}
	err := b.rest.Channels.Get(channel).PublishMultiple(ctx, []*ably.Message{msg})
	var ei *ably.ErrorInfo
	if errors.As(err, &ei) && (ei.StatusCode == 400 || ei.StatusCode == 413) {
		// Only answers about the message itself are final. 401/403 (key
		// revoked, capability), 404 (a proxy), 429 and 5xx may heal, so
		// the event waits for them.
		return permanent(rejectedError{status: ei.StatusCode, code: int(ei.Code)})
	}
	return err
}

// messageData is the Ably data of an event: objects and arrays as JSON
// (ably-go sends them with encoding "json", and ably-js hands subscribers
// the parsed object), a JSON string as a string, other scalars as their
// JSON text, and no data for an empty or null payload.
func messageData(raw json.RawMessage) any {
	t := bytes.TrimSpace(raw)
	switch {
	case len(t) == 0 || string(t) == "null":
		return nil
	case t[0] == '{' || t[0] == '[':
		return json.RawMessage(t)
	case t[0] == '"':
		var s string
		if json.Unmarshal(t, &s) == nil {
			return s
		}
	}
	return string(t)
}

// skipLost handles a cursor the history can no longer replay from: the
// events between it and the oldest retained one are lost to Ably. They are
// counted and logged, and mirroring continues from the oldest retained.
func (b *Bridge) skipLost(ctx context.Context, r *run, top hub.Cursor) error {
	from := r.cursor
	if top.IsZero() {
		// The whole history expired: nothing is left to count or mirror.
		b.log.Error().Str("channel", r.channel).Str("cursor", from.String()).
			Msg("ably bridge: history expired before its events reached Ably; the lost events cannot be counted")
		return b.advance(ctx, r, hub.Cursor{})
	}
	var lo uint64
	if from.Epoch == top.Epoch {
		lo = from.Offset
	}
	oldest, moved, err := b.oldestReplayable(ctx, r, top, lo)
	if err != nil || moved {
		// On moved, the caller reads the history again and lands here
		// with the new epoch.
		return err
	}
	lost := oldest - lo
	b.m.dropped.WithLabelValues(dropUnrecoverable).Add(float64(lost))
	ev := b.log.Error().Str("channel", r.channel).Str("cursor", from.String()).
		Uint64("dropped", lost).Uint64("resume_offset", oldest+1)
	if from.Epoch != top.Epoch && !from.IsZero() {
		// The stored epoch's history is gone; what it held after the
		// cursor cannot be counted, only the new epoch's losses can.
		ev = ev.Bool("epoch_changed", true)
	}
	ev.Msg("ably bridge: history was trimmed or lost before these events reached Ably")
	return b.advance(ctx, r, hub.Cursor{Epoch: top.Epoch, Offset: oldest})
}

// oldestReplayable finds the smallest offset in [lo, top] that History can
// replay from, by binary search: a backend only says "too old". moved
// reports that the epoch changed during the search.
func (b *Bridge) oldestReplayable(ctx context.Context, r *run, top hub.Cursor, lo uint64) (oldest uint64, moved bool, err error) {
	hi := top.Offset
	for lo < hi && !moved {
		mid := lo + (hi-lo)/2
		ok := false
		err := b.retry(ctx, r, failHistory, func(ctx context.Context) error {
			_, now, err := b.hub.History(ctx, r.channel, hub.Cursor{Epoch: top.Epoch, Offset: mid})
			ok = err == nil
			if errors.Is(err, hub.ErrUnrecoverable) {
				moved = now.Epoch != top.Epoch
				return nil
			}
			return err
		})
		if err != nil {
			return 0, false, err
		}
		if ok {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return lo, moved, nil
}

// dropUnknown skips the rest of a channel whose session the resolver does
// not know: its Ably channel cannot be named.
func (b *Bridge) dropUnknown(ctx context.Context, r *run, top hub.Cursor) error {
	lost := top.Offset
	if r.cursor.Epoch == top.Epoch {
		lost -= r.cursor.Offset
	}
	b.m.dropped.WithLabelValues(dropUnknownSession).Add(float64(lost))
	b.log.Error().Str("channel", r.channel).Uint64("dropped", lost).
		Msg("ably bridge: the capture store does not know this session; its events cannot be mirrored")
	return b.advance(ctx, r, top)
}
