package ablyrt

import (
	"context"
	"errors"
	"strconv"
	"sync"

	"github.com/handoff-health/handoff/ablyproto"
	"github.com/handoff-health/handoff/hub"
	"github.com/handoff-health/handoff/internal/auth"
	"github.com/handoff-health/handoff/presence"
)

// Ably presence over the registry (Config.Presence; ABLY-PROTOCOL.md §12):
//   - inbound PRESENCE items become registry changes, ACKed like MESSAGEs
//     (a resend after a resume is answered again, never applied twice);
//   - an attach with presence_subscribe subscribes to the registry's
//     events for the channel, then lists its members: ATTACHED carries
//     HAS_PRESENCE when there are any and is followed by SYNC frames of
//     them, then by the events that arrived meanwhile, then live PRESENCE
//     frames. The SDKs apply newer-wins by id and timestamp, so an event
//     that is also in the SYNC does no harm;
//   - the connection's lifetime drives its members': Claim on CONNECTED,
//     CloseConnection on CLOSE, DetachConnection when the transport ends
//     any other way (they leave after the registry's grace unless the
//     client resumes, on any node).
//
// PRESENCE frames carry no channelSerial: the SDKs would take it as the
// channel's message serial and resume from it.

// syncPageSize is how many members one SYNC frame lists: well under the
// 2 MiB frame limit ably-go reads even at the largest member data.
const syncPageSize = 20

// channelPresence is the presence side of one attached channel.
type channelPresence struct {
	mu      sync.Mutex
	cancel  func()            // the registry subscription; nil when none
	syncing bool              // events wait in pending until the SYNC is out
	members []presence.Member // the SYNC to send after ATTACHED
	pending []presence.Event
	stopped bool
}

func (p *channelPresence) stop() {
	p.mu.Lock()
	cancel := p.cancel
	p.cancel, p.stopped, p.pending, p.members = nil, true, nil, nil
	p.mu.Unlock()
	if cancel != nil {
		cancel()
	}
}

// takeSync returns the members to SYNC after this ATTACHED, and whether
// a SYNC is due at all (only after the attach's first ATTACHED).
func (p *channelPresence) takeSync() ([]presence.Member, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	m, due := p.members, p.syncing
	p.members = nil
	return m, due
}

// beginResync makes events wait for a new SYNC; false when the channel
// has no presence subscription or a SYNC is already due.
func (p *channelPresence) beginResync() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cancel == nil || p.stopped || p.syncing {
		return false
	}
	p.syncing = true
	return true
}

// sendResync sends the unsolicited ATTACHED (without RESUMED) that tells
// the SDKs delivery lost events. The SDKs also restart their presence set
// on it, dropping every member unless HAS_PRESENCE says a SYNC follows, so
// a presence-subscribed channel gets a fresh SYNC (possibly empty) too.
func (c *conn) sendResync(cs *channelState, serial string) bool {
	if !cs.pres.beginResync() {
		return c.sendAttached(cs, serial, false, errChannelLost, nil)
	}
	ok := c.send(&ablyproto.ProtocolMessage{Action: ablyproto.ActionAttached, Channel: cs.name, ChannelSerial: serial,
		Flags: cs.flags | ablyproto.FlagHasPresence, Error: errChannelLost})
	// The sink must not block: the members are listed elsewhere.
	go func() {
		ctx, cancel := opContext()
		defer cancel()
		members, err := c.s.cfg.Presence.Members(ctx, c.hubChannel(cs.base))
		if err != nil {
			c.disconnect(errorInfo(503, ablyproto.CodeUnavailable, "the presence backend is unavailable; resume"))
			return
		}
		c.sendSync(cs, members, true)
	}()
	return ok
}

// startPresence subscribes cs to its channel's presence events and lists
// its members, when the connection may see presence there; false when the
// registry failed.
func (c *conn) startPresence(cs *channelState) bool {
	reg := c.s.cfg.Presence
	if reg == nil || cs.flags&ablyproto.FlagPresenceSubscribe == 0 {
		return true
	}
	p := &cs.pres
	p.syncing = true
	hubName := c.hubChannel(cs.base)
	p.cancel = reg.Subscribe(hubName, func(ev presence.Event) { c.presenceEvent(cs, ev) })
	ctx, cancel := opContext()
	defer cancel()
	members, err := reg.Members(ctx, hubName)
	if err != nil {
		p.stop()
		return false
	}
	p.mu.Lock()
	p.members = members
	p.mu.Unlock()
	return true
}

// presenceEvent forwards one registry event; it runs on the registry's
// goroutine and only queues.
func (c *conn) presenceEvent(cs *channelState, ev presence.Event) {
	p := &cs.pres
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case p.stopped:
	case p.syncing:
		if len(p.pending) >= c.s.cfg.SendQueueMessages {
			p.pending = nil
			c.disconnect(errSlowConsumer)
			return
		}
		p.pending = append(p.pending, ev)
	default:
		c.sendPresence(cs.name, ev)
	}
}

// sendSync sends members as SYNC frames of syncPageSize, each
// channelSerial "<syncId>:<page>", the last "<syncId>:" (RTP18), then the
// events that arrived since the subscription started; from then on events
// go out as they come. With no members there is no SYNC (ATTACHED without
// HAS_PRESENCE tells the SDKs the set is empty) unless always: then one
// empty SYNC frame ends the sync an ATTACHED with HAS_PRESENCE began.
func (c *conn) sendSync(cs *channelState, members []presence.Member, always bool) {
	p := &cs.pres
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped {
		return
	}
	syncID := newID()
	if len(members) == 0 && always {
		if !c.send(&ablyproto.ProtocolMessage{Action: ablyproto.ActionSync, Channel: cs.name, ChannelSerial: syncID + ":",
			Presence: []ablyproto.RealtimeMessage{}}) {
			return
		}
	}
	for i := 0; i < len(members); i += syncPageSize {
		page := members[i:min(i+syncPageSize, len(members))]
		cursor := ""
		if i+syncPageSize < len(members) {
			cursor = strconv.Itoa(i/syncPageSize + 1)
		}
		items := make([]ablyproto.RealtimeMessage, len(page))
		for j, m := range page {
			items[j] = presenceWire(presence.Present, m).Realtime()
		}
		if !c.send(&ablyproto.ProtocolMessage{Action: ablyproto.ActionSync, Channel: cs.name,
			ChannelSerial: syncID + ":" + cursor, Presence: items}) {
			return
		}
	}
	pending := p.pending
	p.pending, p.syncing = nil, false
	for _, ev := range pending {
		if !c.sendPresence(cs.name, ev) {
			return
		}
	}
}

func (c *conn) sendPresence(name string, ev presence.Event) bool {
	return c.send(&ablyproto.ProtocolMessage{Action: ablyproto.ActionPresence, Channel: name,
		Presence: []ablyproto.RealtimeMessage{presenceWire(ev.Action, ev.Member).Realtime()}})
}

func presenceWire(a presence.Action, m presence.Member) ablyproto.PresenceMessage {
	return ablyproto.PresenceWire(int(a), m.ID, m.ClientID, m.ConnectionID, m.Data, m.Timestamp)
}

// presence handles a client PRESENCE: each item is an enter, update or
// leave of a member of this connection, applied in order; the frame is
// ACKed once all are, or NACKed at the first refusal.
func (c *conn) presence(pm *ablyproto.ProtocolMessage) {
	if pm.MsgSerial == nil {
		c.fatal(errorInfo(400, ablyproto.CodeBadRequest, "PRESENCE needs a msgSerial"))
		return
	}
	if c.s.cfg.Presence == nil {
		c.nack(*pm.MsgSerial, errorInfo(400, ablyproto.CodeBadRequest, "presence is not enabled on this server"))
		return
	}
	c.once(*pm.MsgSerial, func() Outcome { return c.applyPresence(pm) })
}

func (c *conn) applyPresence(pm *ablyproto.ProtocolMessage) Outcome {
	name := pm.Channel
	switch {
	case !c.validChannel(name):
		return Outcome{Error: errorInfo(400, ablyproto.CodeChannelInvalid, "invalid channel name: 1-200 letters, digits and -_.:@")}
	case !c.cap.Allows(name, auth.OpPresence):
		return Outcome{Error: errorInfo(401, ablyproto.CodeCapability, "these credentials may not enter presence on this channel")}
	case c.channels[name] == nil && !c.resumed:
		// A resumed transport may get resends before its re-attaches.
		return Outcome{Error: errorInfo(400, codeChannelState, "attach the channel before entering presence")}
	case len(pm.Presence) == 0:
		return Outcome{Error: errorInfo(400, ablyproto.CodeBadRequest, "PRESENCE holds no presence messages")}
	}
	changes := make([]presence.Change, len(pm.Presence))
	for i, m := range pm.Presence {
		ch, e := c.presenceChange(m)
		if e != nil {
			return Outcome{Error: e}
		}
		ch.Channel = c.hubChannel(name)
		ch.ConnectionID = c.id
		ch.ID = c.id + ":" + strconv.FormatInt(*pm.MsgSerial, 10) + ":" + strconv.Itoa(i)
		changes[i] = ch
	}
	for _, ch := range changes {
		ctx, cancel := opContext()
		_, _, err := c.s.cfg.Presence.Apply(ctx, ch)
		cancel()
		if err != nil {
			return Outcome{Error: presenceError(err)}
		}
	}
	return Outcome{}
}

// Ably's codes for presence refusals.
const (
	codeChannelState = 90001 // the channel is not attached
	codeNoClientID   = 91000 // presence needs a clientId
)

// presenceChange checks one item: its action, its clientId against the
// connection's (its own only when the credentials may act for any
// client), and its data by the rule for messages (StoredData).
func (c *conn) presenceChange(m ablyproto.RealtimeMessage) (presence.Change, *ablyproto.ErrorInfo) {
	bad := func(msg string) (presence.Change, *ablyproto.ErrorInfo) {
		return presence.Change{}, errorInfo(400, ablyproto.CodeBadRequest, msg)
	}
	var ch presence.Change
	switch {
	case m.Action == nil:
		return bad("a presence message needs an action")
	case *m.Action == int(presence.Enter), *m.Action == int(presence.Update), *m.Action == int(presence.Leave):
		ch.Action = presence.Action(*m.Action)
	default:
		return bad("a presence action must be enter (2), leave (3) or update (4)")
	}
	ch.ClientID = c.clientID
	switch {
	case m.ClientID == "*":
		return bad(`"*" is not a clientId a member can have`)
	case m.ClientID != "" && c.clientID != "" && m.ClientID != c.clientID:
		return presence.Change{}, errorInfo(400, ablyproto.CodeInvalidClientID, "the presence message's clientId is not the connection's")
	case m.ClientID != "" && c.clientID == "" && !c.anyClient:
		return presence.Change{}, errorInfo(400, ablyproto.CodeInvalidClientID, "these credentials may not act for another clientId")
	case m.ClientID != "":
		ch.ClientID = m.ClientID
	}
	if ch.ClientID == "" {
		return presence.Change{}, errorInfo(400, codeNoClientID, "entering presence needs a clientId")
	}
	if m.Data.IsBinary() {
		return bad("binary data is not supported by handoff: send a string or JSON")
	}
	if m.Data != nil {
		data, err := ablyproto.StoredData(m.Data.JSON, m.Encoding)
		if err != nil {
			return bad(err.Error())
		}
		if len(data) > hub.MaxDataBytes {
			return presence.Change{}, errorInfo(400, ablyproto.CodeTooLarge, "presence data exceeds the size limit")
		}
		ch.Data = data
		if m.Encoding == "json" {
			ch.Encoding = "json"
		}
	}
	return ch, nil
}

func presenceError(err error) *ablyproto.ErrorInfo {
	switch {
	case errors.Is(err, presence.ErrTooLarge):
		return errorInfo(400, ablyproto.CodeTooLarge, "presence data exceeds the size limit")
	case errors.Is(err, presence.ErrNoClientID):
		return errorInfo(400, codeNoClientID, "entering presence needs a clientId")
	case errors.Is(err, presence.ErrBadChange), errors.Is(err, presence.ErrBadChannel):
		return errorInfo(400, ablyproto.CodeBadRequest, "the presence message was refused: "+err.Error())
	}
	return errorInfo(503, ablyproto.CodeUnavailable, "the presence backend is unavailable; retry")
}

// leaveChannel removes the connection's members of the channel (it was
// detached). Their LEAVEs have ids that do not start with the
// connectionId, as the registry's synthesized ones, so the SDKs order
// them by timestamp.
func (c *conn) leaveChannel(name string) {
	reg := c.s.cfg.Presence
	if reg == nil {
		return
	}
	ctx, cancel := opContext()
	defer cancel()
	hubName := c.hubChannel(name)
	members, err := reg.Members(ctx, hubName)
	for i, m := range members {
		if m.ConnectionID != c.id {
			continue
		}
		_, _, err = reg.Apply(ctx, presence.Change{Action: presence.Leave, Channel: hubName, ClientID: m.ClientID,
			ConnectionID: c.id, ID: "detach:" + c.id + ":" + newID() + ":" + strconv.Itoa(i), Data: m.Data, Encoding: m.Encoding})
		if err != nil {
			break
		}
	}
	if err != nil {
		c.s.log.Warn().Err(err).Str("route", "/").Str("conn", c.id).Msg("ably: presence leave on detach failed; members leave with the connection")
	}
}

// claimPresence tells the registry the connection is live here (new, or
// resumed from any node). If its members were removed while it was gone,
// no ATTACHED on this transport says RESUMED, so the SDKs re-enter.
func (c *conn) claimPresence() {
	reg := c.s.cfg.Presence
	if reg == nil {
		return
	}
	ctx, cancel := opContext()
	defer cancel()
	lost, err := reg.Claim(ctx, c.id)
	if err != nil {
		c.s.log.Warn().Err(err).Str("route", "/").Str("conn", c.id).Msg("ably: presence claim failed; members may leave after the grace")
		return
	}
	if lost && c.resumed {
		c.presenceLost.Store(true)
	}
}

// closePresence removes the connection's members now (CLOSE).
func (c *conn) closePresence() {
	c.presenceLifetime("close", (presence.Registry).CloseConnection)
}

// detachPresence starts the grace of the connection's members: the
// transport ended without CLOSE (dropped, DISCONNECTED, slow consumer,
// shutdown, token expiry).
func (c *conn) detachPresence() {
	c.presenceLifetime("detach", (presence.Registry).DetachConnection)
}

func (c *conn) presenceLifetime(what string, f func(presence.Registry, context.Context, string) error) {
	reg := c.s.cfg.Presence
	if reg == nil || c.id == "" {
		return
	}
	ctx, cancel := opContext()
	defer cancel()
	if err := f(reg, ctx, c.id); err != nil {
		c.s.log.Warn().Err(err).Str("route", "/").Str("conn", c.id).Str("op", what).Msg("ably: presence lifetime update failed")
	}
}
