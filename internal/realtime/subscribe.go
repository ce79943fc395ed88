package realtime

import (
	"encoding/json"
	"errors"

	"github.com/handoff-health/handoff/hub"
	"github.com/handoff-health/handoff/internal/httpx"
	"github.com/handoff-health/handoff/protocol"
)

// subscribe adds a channel to the socket. Refusals are error frames that
// name the channel; the socket and its other channels carry on.
func (c *conn) subscribe(f clientFrame) {
	switch {
	case c.subs[f.Channel] != nil:
		c.sendError(f.ID, f.Channel, protocol.CodeAlreadySubscribed, "this socket is already subscribed to the channel")
		return
	case len(c.subs) >= c.s.cfg.MaxChannels:
		c.sendError(f.ID, f.Channel, protocol.CodeTooManyChannels, "this socket has reached its channel limit")
		return
	}
	if !c.maySubscribe(f) {
		return
	}
	var watch *presenceWatch
	var members []protocol.PresenceMember
	if f.Presence {
		var ok bool
		if watch, members, ok = c.startPresenceWatch(f); !ok {
			return
		}
	}
	if c.subscribeHub(f, members) {
		if watch != nil {
			c.watches[f.Channel] = watch
			watch.flush()
		}
	} else if watch != nil {
		watch.cancel()
	}
}

// maySubscribe authorizes a subscribe: never for a phone's socket, which
// only enters presence, else Config.Authorize.
func (c *conn) maySubscribe(f clientFrame) bool {
	if c.phone != nil {
		c.sendError(f.ID, f.Channel, protocol.CodeForbidden, "a phone's socket may only enter presence")
		return false
	}
	return c.authorize(f)
}

// startPresenceWatch starts forwarding f.Channel's presence changes (held
// until the subscribed frame is queued) and lists its members.
func (c *conn) startPresenceWatch(f clientFrame) (*presenceWatch, []protocol.PresenceMember, bool) {
	if c.s.cfg.Presence == nil {
		c.sendError(f.ID, f.Channel, protocol.CodeForbidden, "presence is not enabled on this server")
		return nil, nil, false
	}
	ctx, cancel := opContext()
	defer cancel()
	w, members, err := c.watchPresence(ctx, f.Channel)
	if err != nil {
		c.sendError(f.ID, f.Channel, protocol.CodeUnavailable, "presence is unavailable; retry")
		return nil, nil, false
	}
	return w, members, true
}

// subscribeHub takes the hub subscription, after a streamed replay when
// f resumes; members (when asked for) go in the subscribed frame. It
// reports whether the channel is now subscribed.
func (c *conn) subscribeHub(f clientFrame, members []protocol.PresenceMember) bool {
	since, replayed := f.since, false
	if since != nil {
		pos, res := c.replay(f, members)
		switch res {
		case replayFailed:
			return false
		case replayDone:
			since, replayed = &pos, true
		}
	}
	ctx, cancel := opContext()
	defer cancel()
	sub, err := c.s.hub.Subscribe(ctx, f.Channel, since, c.sink(f.Channel, f.ID, since, replayed, members))
	switch {
	case err == nil:
		c.subs[f.Channel] = sub
		c.s.metrics.subscriptions.Inc()
		return true
	case errors.Is(err, hub.ErrSlowConsumer):
		// The sink refused a frame and has already closed the socket.
	case errors.Is(err, hub.ErrBadChannel):
		c.sendError(f.ID, f.Channel, protocol.CodeBadChannel, "invalid channel name")
	default:
		c.sendError(f.ID, f.Channel, protocol.CodeUnavailable, "the realtime backend is unavailable; retry")
	}
	return false
}

// authorize runs Config.Authorize. An *httpx.Error it returns is shown as
// is (its message is client-safe by contract), so httpx.ErrUnavailable
// becomes protocol.CodeUnavailable. Any other error that is an outage
// (httpx.IsUnavailable) is CodeUnavailable too, which clients retry: a
// store that could not answer never ends a client's channel. The rest
// become a plain CodeForbidden, so internals never reach the client.
func (c *conn) authorize(f clientFrame) bool {
	if c.s.cfg.Authorize == nil {
		return true
	}
	ctx, cancel := opContext()
	defer cancel()
	err := c.s.cfg.Authorize(ctx, c.claims, f.Channel)
	if err == nil {
		return true
	}
	var he *httpx.Error
	switch {
	case errors.As(err, &he):
		c.sendError(f.ID, f.Channel, protocol.ErrorCode(he.Code), he.Message)
	case httpx.IsUnavailable(err):
		c.sendError(f.ID, f.Channel, protocol.CodeUnavailable, "the channel's authorization could not be checked now; retry")
	default:
		c.sendError(f.ID, f.Channel, protocol.CodeForbidden, "not allowed to subscribe to this channel")
	}
	return false
}

// unsubscribe removes a channel. Frames already queued for it are still
// written; the unsubscribed reply comes after them.
func (c *conn) unsubscribe(f clientFrame) {
	sub := c.subs[f.Channel]
	if sub == nil {
		c.sendError(f.ID, f.Channel, protocol.CodeNotSubscribed, "this socket is not subscribed to the channel")
		return
	}
	sub.Unsubscribe()
	delete(c.subs, f.Channel)
	if w := c.watches[f.Channel]; w != nil {
		w.cancel()
		delete(c.watches, f.Channel)
	}
	c.s.metrics.subscriptions.Dec()
	c.send(protocol.ServerFrame{Type: protocol.FrameUnsubscribed, Ref: f.ID, Channel: f.Channel})
}

// sink turns one subscription's hub deliveries into queued frames. It runs
// on hub goroutines with the channel's lock held, so it only encodes (once
// per event, shared through the frame cache) and enqueues; a full queue
// returns false, which makes the hub drop the subscription, and enqueue
// has already closed the socket as a slow consumer. replayed means
// replay.go already sent the subscribed frame. members, when not nil, are
// the channel's presence members for the subscribed frame.
func (c *conn) sink(channel string, ref json.RawMessage, since *hub.Cursor, replayed bool, members []protocol.PresenceMember) hub.Sink {
	return func(d hub.Delivery) bool {
		switch d.Kind {
		case hub.KindEvent:
			b, err := c.s.frames.event(d.Event)
			if err != nil {
				c.encodeFailed()
				return false
			}
			return c.enqueue(b)
		case hub.KindSubscribed:
			if replayed {
				if d.Recovered {
					return true
				}
				// History was trimmed between the streamed replay and
				// the subscription: the client must refetch.
				recovered := false
				return c.enqueue(encodeFrame(protocol.ServerFrame{Type: protocol.FrameResync, Channel: channel, Recovered: &recovered, Cursor: d.Position.String()}))
			}
			// The cursor is where the stream continues: after since when
			// the replay follows, else the channel's current position.
			cur := d.Position
			if d.Recovered && since != nil {
				cur = *since
			}
			// A copy, so d itself does not escape to the heap on every delivery.
			recovered := d.Recovered
			return c.enqueue(encodeFrame(protocol.ServerFrame{Type: protocol.FrameSubscribed, Ref: ref, Channel: channel, Recovered: &recovered, Cursor: cur.String(), Presence: members}))
		case hub.KindResync:
			recovered := false
			return c.enqueue(encodeFrame(protocol.ServerFrame{Type: protocol.FrameResync, Channel: channel, Recovered: &recovered, Cursor: d.Position.String()}))
		}
		return true
	}
}

// encodeFailed closes the socket after an event failed to encode, which
// only data that is not JSON can cause (the hub refuses it at publish).
// Skipping the event would be a silent gap; 1011 makes the client resume.
func (c *conn) encodeFailed() {
	c.s.log.Error().Str("route", Path).Str("conn", c.id).Msg("realtime: event cannot be encoded; closing socket")
	c.closeWith(CloseInternalError, "internal error")
}
