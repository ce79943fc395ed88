package ablyrt

import (
	"encoding/json"
	"errors"
	"strconv"
	"strings"

	"github.com/handoff-health/handoff/ablyproto"
	"github.com/handoff-health/handoff/hub"
	"github.com/handoff-health/handoff/internal/auth"
	"github.com/handoff-health/handoff/internal/session"
)

// publish handles a client MESSAGE: each message becomes a hub event and
// the ProtocolMessage is ACKed with their serials once they are stored,
// or NACKed. A msgSerial already answered on this connection (a resend
// after a resume) gets the same answer again and publishes nothing; only
// a resumed transport asks the store (mayResend), so a publish on any
// other costs no store lookup. The store is a first filter: a resend
// racing its original (on another node, before the outcome was recorded)
// is caught by the hub, which stores each message id once per channel
// (hub/dedupe.go; the id is "<connectionId>:<msgSerial>:<index>" unless
// the message has its own), so both get the same serials.
// Publishing does not need an attach (RTL6c5): it is authorised on the
// capability alone.
func (c *conn) publish(pm *ablyproto.ProtocolMessage) {
	if pm.MsgSerial == nil {
		c.fatal(errorInfo(400, ablyproto.CodeBadRequest, "MESSAGE needs a msgSerial"))
		return
	}
	c.once(*pm.MsgSerial, func() Outcome { return c.publishAll(pm) })
}

// once runs do for the client ProtocolMessage numbered serial and answers
// it (ACK or NACK) — unless serial was answered on this connection
// already (a resend after a resume), which gets the same answer again
// without running do. A serial this transport has answered already gets
// no answer at all: its first copy's answer is the one the SDK counts.
// MESSAGE and PRESENCE share it.
func (c *conn) once(serial int64, do func() Outcome) {
	if serial <= c.answered {
		return
	}
	c.answered = serial
	ctx, cancel := opContext()
	defer cancel()
	if c.mayResend {
		if o, ok, err := c.s.store.Outcome(ctx, c.id, serial); err != nil {
			c.nack(serial, errorInfo(503, ablyproto.CodeUnavailable, "the connection state store is unavailable; retry"))
			return
		} else if ok {
			c.answer(serial, o)
			return
		}
		// The SDKs resend what was in flight first, in msgSerial order,
		// and the old transport answered in that order too: from the
		// first serial never answered on, every serial is new.
		c.mayResend = false
	}
	o := do()
	// Recorded before the answer, so a resend after a drop is answered
	// the same way and never applied twice. A failure to record is not
	// fatal: only a resend could then apply twice.
	_ = c.s.store.Record(ctx, c.id, serial, o, 2*c.s.cfg.ConnectionStateTTL)
	c.answer(serial, o)
}

func (c *conn) answer(serial int64, o Outcome) {
	if o.Error != nil {
		c.nack(serial, o.Error)
		return
	}
	ack := &ablyproto.ProtocolMessage{Action: ablyproto.ActionAck, MsgSerial: &serial, Count: 1}
	if o.Serials != nil {
		// A MESSAGE's serials; presence has none.
		ack.Res = []ablyproto.PublishResult{{Serials: o.Serials}}
	}
	c.send(ack)
}

func (c *conn) nack(serial int64, e *ablyproto.ErrorInfo) {
	c.send(&ablyproto.ProtocolMessage{Action: ablyproto.ActionNack, MsgSerial: &serial, Count: 1, Error: e})
}

// publishAll checks every message, then publishes them in order.
func (c *conn) publishAll(pm *ablyproto.ProtocolMessage) Outcome {
	name := pm.Channel
	switch {
	case !c.validChannel(name):
		return Outcome{Error: errorInfo(400, ablyproto.CodeChannelInvalid, invalidChannelText)}
	case !c.cap.Allows(name, auth.OpPublish):
		return Outcome{Error: errorInfo(401, ablyproto.CodeCapability, "these credentials may not publish on this channel")}
	case len(pm.Messages) == 0:
		return Outcome{Error: errorInfo(400, ablyproto.CodeBadRequest, "MESSAGE holds no messages")}
	}
	pubs := make([]hub.Publication, len(pm.Messages))
	for i, m := range pm.Messages {
		p, e := c.publication(m)
		if e != nil {
			return Outcome{Error: e}
		}
		p.Origin = c.origin(m, *pm.MsgSerial, i)
		h, err := ablyproto.RealtimeHeadersOf(m.Extras)
		if err != nil {
			return Outcome{Error: errorInfo(400, ablyproto.CodeBadRequest, err.Error())}
		}
		p.Origin.Headers = h
		if err := hub.ValidateOrigin(p.Origin); err != nil {
			return Outcome{Error: errorInfo(400, ablyproto.CodeBadRequest, "the message's id, clientId or headers were refused: "+err.Error())}
		}
		pubs[i] = p
	}
	if len(pm.Messages) > 1 && !validIDs(pm.Messages) {
		return Outcome{Error: errorInfo(400, ablyproto.CodeInvalidMessageID,
			"client-specified message ids of a multi-message publish must be <base>:<index>, one base, each message's own position as index")}
	}
	// With echo=false every attachment of the channel holds back this
	// publish: the plain one and its filtered views ([filter=…]name).
	var views []*channelState
	if !c.echo {
		for _, cs := range c.channels {
			if cs.base == name {
				cs.mu.Lock()
				cs.publishing++
				cs.mu.Unlock()
				views = append(views, cs)
			}
		}
	}
	var o Outcome
	var stored []string // the serials published now, not duplicates
	for _, p := range pubs {
		ctx, cancel := opContext()
		ev, err := c.s.hub.Publish(ctx, c.hubChannel(name), p)
		cancel()
		if err != nil {
			o = Outcome{Serials: o.Serials, Error: publishError(err)}
			break
		}
		o.Serials = append(o.Serials, ev.ID)
		if !ev.Duplicate {
			stored = append(stored, ev.ID)
		}
	}
	for _, cs := range views {
		c.releaseHeld(cs, stored)
	}
	return o
}

// validIDs applies Ably's rule to the ids of a MESSAGE's messages
// (ablyproto.ValidMessageIDs); messages without ids cost no allocation.
func validIDs(ms []ablyproto.RealtimeMessage) bool {
	given := false
	for _, m := range ms {
		given = given || m.ID != ""
	}
	if !given {
		return true
	}
	ids := make([]string, len(ms))
	for i, m := range ms {
		ids[i] = m.ID
	}
	return ablyproto.ValidMessageIDs(ids)
}

// origin is who publishes m and under which id, stored with its event so
// every reader sees them: the message's own id, or Ably's realtime rule
// "<connectionId>:<msgSerial>:<index>" (RTP2b2), which a resend after a
// resume repeats; the connection's clientId, or the message's on a
// connection without one (publication has refused a contradiction); and
// this connection's id.
func (c *conn) origin(m ablyproto.RealtimeMessage, msgSerial int64, i int) hub.Origin {
	id := m.ID
	if id == "" {
		id = c.id + ":" + strconv.FormatInt(msgSerial, 10) + ":" + strconv.Itoa(i)
	}
	client := c.clientID
	if client == "" {
		client = m.ClientID
	}
	return hub.Origin{MsgID: id, ClientID: client, ConnectionID: c.id}
}

// releaseHeld ends an echo=false publish on cs: its serials are skipped
// and the held deliveries sent in order.
func (c *conn) releaseHeld(cs *channelState, serials []string) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	cs.publishing--
	if cs.own == nil {
		cs.own = make(map[string]struct{})
	}
	for _, s := range serials {
		cs.own[s] = struct{}{}
	}
	if cs.publishing > 0 {
		return
	}
	held := cs.held
	cs.held = nil
	for _, ev := range held {
		if _, mine := cs.own[ev.ID]; mine {
			delete(cs.own, ev.ID)
			continue
		}
		if !c.sendEvent(cs, ev) {
			return
		}
	}
}

func publishError(err error) *ablyproto.ErrorInfo {
	switch {
	case errors.Is(err, hub.ErrTooLarge):
		return errorInfo(400, ablyproto.CodeTooLarge, "message data exceeds the size limit")
	case errors.Is(err, hub.ErrBadChannel), errors.Is(err, hub.ErrBadType), errors.Is(err, hub.ErrBadOrigin):
		return errorInfo(400, ablyproto.CodeBadRequest, "the message was refused: "+err.Error())
	}
	return errorInfo(503, ablyproto.CodeUnavailable, "the realtime backend is unavailable; retry")
}

// publication checks one message and returns what the hub stores: the
// name as the event type, and the data as JSON (a string as a JSON
// string, encoding "json" as the document it holds). Binary and encrypted
// data are refused, never altered.
func (c *conn) publication(m ablyproto.RealtimeMessage) (hub.Publication, *ablyproto.ErrorInfo) {
	bad := func(msg string) (hub.Publication, *ablyproto.ErrorInfo) {
		return hub.Publication{}, errorInfo(400, ablyproto.CodeBadRequest, msg)
	}
	switch {
	case len(m.Name) > hub.MaxTypeLen:
		return bad("name is too long")
	case session.ServerEvent(m.Name):
		return hub.Publication{}, errorInfo(403, ablyproto.CodeForbidden,
			"names starting with "+strings.Join(session.ServerEventNamespaces, ", ")+" are published only by the server")
	case m.Action != nil && *m.Action != 0:
		return bad("only action 0 (message.create) can be published")
	case m.Data.IsBinary():
		return bad("binary data is not supported by handoff: send a string or JSON")
	case m.ClientID == "*":
		return bad(`"*" is not a clientId a message can have`)
	case m.ClientID != "" && c.clientID != "" && m.ClientID != c.clientID:
		return hub.Publication{}, errorInfo(400, ablyproto.CodeInvalidClientID, "the message's clientId is not the connection's")
	}
	var raw json.RawMessage
	if m.Data != nil {
		raw = m.Data.JSON
	}
	data, err := ablyproto.StoredData(raw, m.Encoding)
	if err != nil {
		return bad(err.Error())
	}
	if len(data) > hub.MaxDataBytes {
		return hub.Publication{}, errorInfo(400, ablyproto.CodeTooLarge, "message data exceeds the size limit")
	}
	return hub.Publication{Type: m.Name, Data: data}, nil
}
