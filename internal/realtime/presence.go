package realtime

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"sync"

	"github.com/handoff-health/handoff/internal/httpx"
	"github.com/handoff-health/handoff/presence"
	"github.com/handoff-health/handoff/protocol"
)

// Presence on the native socket maps the protocol's presence frames onto
// Config.Presence (package presence), which every transport shares:
//
//   - a socket's member is (clientID, connection id); a reconnecting
//     client has a new connection id, so it enters again, and the member
//     of its old socket leaves after the registry's grace (a watcher that
//     wants "is the phone here" counts clientIds, not members);
//   - a socket that closes with a close frame (the client's, or this
//     side's 4003/4400/1009 for a client that must not come back as it
//     was) removes its members at once: CloseConnection;
//   - a socket that drops, or that this side closes for the client to
//     reconnect (1001 shutdown, 4008, 4009, 1011, a dead peer), leaves
//     them for the grace: DetachConnection;
//   - the registry hears of a socket (Claim) only once it first enters, so
//     sockets that never use presence cost the registry nothing.

// presenceOp runs one OpPresence: enter, update or leave as this socket's
// member, answered with an ack or an error frame.
func (c *conn) presenceOp(f clientFrame) {
	reg := c.s.cfg.Presence
	if reg == nil {
		c.sendError(f.ID, f.Channel, protocol.CodeForbidden, "presence is not enabled on this server")
		return
	}
	if !c.mayPresence(f) {
		return
	}
	ctx, cancel := opContext()
	defer cancel()
	if !c.presenceClaimed {
		if _, err := reg.Claim(ctx, c.id); err != nil {
			c.sendError(f.ID, f.Channel, protocol.CodeUnavailable, "presence is unavailable; retry")
			return
		}
		c.presenceClaimed = true
	}
	c.presenceSerial++
	c.entered = true // set before Apply: a failed Apply may still have applied
	_, _, err := reg.Apply(ctx, presence.Change{
		Action:       registryAction(f.Action),
		Channel:      f.Channel,
		ClientID:     c.clientID(),
		ConnectionID: c.id,
		ID:           c.id + ":" + strconv.Itoa(c.presenceSerial) + ":0",
		Data:         f.Data,
	})
	switch {
	case err == nil:
		// A leave of a member that is not present is done too.
		c.send(protocol.ServerFrame{Type: protocol.FrameAck, Ref: f.ID, Channel: f.Channel})
	case errors.Is(err, presence.ErrTooLarge), errors.Is(err, presence.ErrBadChange):
		c.sendError(f.ID, f.Channel, protocol.CodeInvalidFrame, "the presence change was refused: "+err.Error())
	case errors.Is(err, presence.ErrBadChannel):
		c.sendError(f.ID, f.Channel, protocol.CodeBadChannel, "invalid channel name")
	default:
		c.sendError(f.ID, f.Channel, protocol.CodeUnavailable, "presence is unavailable; retry")
	}
}

// mayPresence says whether this socket may be present on f.Channel: a
// phone on its own session's channel, anyone else where it may subscribe.
func (c *conn) mayPresence(f clientFrame) bool {
	if c.phone == nil {
		return c.authorize(f)
	}
	if f.Channel != c.phone.Channel {
		c.sendError(f.ID, f.Channel, protocol.CodeForbidden, "a phone may only be present on its own session's channel")
		return false
	}
	return true
}

// clientID is this socket's presence clientId: the phone's from its grant,
// or "desktop:" and the JWT's subject (the GP's provider id).
func (c *conn) clientID() string {
	if c.phone != nil {
		return c.phone.ClientID
	}
	return "desktop:" + c.claims.Provider
}

// leavePresence ends the socket's members when it finishes: at once after
// a clean close, after the grace after a drop. It runs once, on the
// reader goroutine, after the socket is gone.
func (c *conn) leavePresence() {
	if !c.entered {
		return
	}
	ctx, cancel := opContext()
	defer cancel()
	reg := c.s.cfg.Presence
	var err error
	if c.closedForGood() {
		err = reg.CloseConnection(ctx, c.id)
	} else {
		err = reg.DetachConnection(ctx, c.id)
	}
	if err != nil {
		// The registry removes a dead connection's members itself in time
		// (its node sweep); the socket has nobody left to tell.
		c.s.log.Warn().Err(err).Str("route", Path).Str("conn", c.id).Msg("realtime: presence could not be updated for a closed socket")
	}
}

// closedForGood says whether the socket ended with a close handshake that
// means "not coming back as it was": the peer sent a close frame (the
// client closed, or its page went away), or this side refused the client
// (4001 a phone revoked while connected, 4003 another principal, 4400 bad
// frames, 1009 too big). Everything else is a drop the client resumes
// from.
func (c *conn) closedForGood() bool {
	if c.peerSentClose.Load() {
		return true
	}
	switch code := c.closeCode.Load(); code {
	case int32(CloseUnauthorized), int32(CloseForbidden), int32(CloseBadRequest), int32(CloseTooBig):
		return true
	}
	return false
}

// registryAction maps a wire action to the registry's.
func registryAction(a protocol.PresenceAction) presence.Action {
	switch a {
	case protocol.PresenceEnter:
		return presence.Enter
	case protocol.PresenceUpdate:
		return presence.Update
	default:
		return presence.Leave
	}
}

// wireAction maps a registry event's action to the wire's; ok is false for
// an action the wire has no word for (none today).
func wireAction(a presence.Action) (protocol.PresenceAction, bool) {
	switch a {
	case presence.Enter, presence.Present:
		return protocol.PresenceEnter, true
	case presence.Update:
		return protocol.PresenceUpdate, true
	case presence.Leave:
		return protocol.PresenceLeave, true
	}
	return "", false
}

// wireMember is m as the wire shows it. Data an Ably client entered with
// encoding "json" (a string holding a JSON document) is shown decoded, as
// the native protocol carries JSON values, not encodings.
func wireMember(m presence.Member) protocol.PresenceMember {
	data := m.Data
	if m.Encoding == "json" {
		var s string
		if json.Unmarshal(data, &s) == nil && json.Valid([]byte(s)) {
			data = json.RawMessage(s)
		}
	}
	return protocol.PresenceMember{ClientID: m.ClientID, ConnectionID: m.ConnectionID, Data: data, TS: m.Timestamp}
}

// presenceWatch forwards one channel's presence events to the socket.
// Events that arrive before the subscribed frame (which lists the members)
// has been queued are held and flushed right after it, so a client always
// applies changes on top of the list. Applying a change the list already
// shows is harmless: each event sets its member's whole state.
type presenceWatch struct {
	c       *conn
	mu      sync.Mutex
	ready   bool
	held    [][]byte
	overrun bool
	cancel  func()
}

// watchPresence subscribes to channel's presence and lists its members,
// in that order, so no change between the two is missed.
func (c *conn) watchPresence(ctx context.Context, channel string) (*presenceWatch, []protocol.PresenceMember, error) {
	reg := c.s.cfg.Presence
	w := &presenceWatch{c: c}
	w.cancel = reg.Subscribe(channel, w.deliver)
	ms, err := reg.Members(ctx, channel)
	if err != nil {
		w.cancel()
		return nil, nil, httpx.Unavailable(err)
	}
	members := make([]protocol.PresenceMember, 0, len(ms))
	for _, m := range ms {
		members = append(members, wireMember(m))
	}
	return w, members, nil
}

// deliver is the registry's callback; like a hub sink it never blocks.
func (w *presenceWatch) deliver(ev presence.Event) {
	action, ok := wireAction(ev.Action)
	if !ok {
		return
	}
	m := wireMember(ev.Member)
	b := encodeFrame(protocol.ServerFrame{Type: protocol.FramePresence, Channel: ev.Channel, Action: action, Member: &m})
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.ready {
		if len(w.held) >= w.c.s.cfg.SendQueueMessages {
			w.overrun = true // flush closes the socket: never a silent gap
			return
		}
		w.held = append(w.held, b)
		return
	}
	w.c.enqueue(b)
}

// flush queues the held events after the subscribed frame and lets later
// ones through directly.
func (w *presenceWatch) flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.ready = true
	if w.overrun {
		if w.c.closeWith(CloseSlowConsumer, "slow consumer: presence backlog") {
			w.c.s.metrics.slowConsumers.Inc()
		}
		return
	}
	for _, b := range w.held {
		if !w.c.enqueue(b) {
			break
		}
	}
	w.held = nil
}
