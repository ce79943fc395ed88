package ablyrt

import (
	"errors"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/handoff-health/handoff/ablyproto"
	"github.com/handoff-health/handoff/hub"
	"github.com/handoff-health/handoff/internal/auth"
)

// channelState is one attached channel of a connection.
type channelState struct {
	name string // as the client attached it, qualifier included
	base string // the name without its qualifier (qualifier.go)
	// filter, when the name has a [filter=…] qualifier, selects the
	// MESSAGEs delivered; presence is not filtered.
	filter *ablyproto.Filter
	sub    *hub.Subscription // nil when the capability has no subscribe
	flags  int64             // granted modes

	mu sync.Mutex
	// last is the serial of the last event delivered (when haveLast): a
	// re-attach without a channelSerial continues from it. A value, not a
	// pointer: the sink sets it on every delivery, and a pointer to the
	// delivered event's cursor moved the whole event to the heap each time.
	last     hub.Cursor
	haveLast bool
	// With echo=false the connection's own publishes are held back: while
	// a publish is in flight (publishing), deliveries wait in held, and
	// own lists the serials it produced until they are seen and skipped.
	publishing int
	held       []hub.Event
	own        map[string]struct{}

	pres channelPresence // presence.go
}

func (cs *channelState) stop() {
	if cs.sub != nil {
		cs.sub.Unsubscribe()
	}
	cs.pres.stop()
}

// modes returns the channel modes the capability grants, narrowed to the
// requested ones when the client asked for modes.
func modes(c auth.Capability, channel string, requested int64) int64 {
	var f int64
	// Ably's capabilities: "subscribe" receives messages and presence
	// events, "presence" enters, updates and leaves.
	if c.Allows(channel, auth.OpSubscribe) {
		f |= ablyproto.FlagSubscribe | ablyproto.FlagPresenceSubscribe
	}
	if c.Allows(channel, auth.OpPublish) {
		f |= ablyproto.FlagPublish
	}
	if c.Allows(channel, auth.OpPresence) {
		f |= ablyproto.FlagPresence | ablyproto.FlagPresenceSubscribe
	}
	if r := requested & ablyproto.FlagModes; r != 0 {
		f &= r
	}
	return f
}

// attach answers ATTACH with ATTACHED, then the replay, then live
// messages. A channelSerial (the hub cursor the client last saw) replays
// strictly after it, with RESUMED if nothing was lost and error 90003 if
// history no longer covers the gap. Re-attaching an attached channel
// continues from where its delivery got to.
func (c *conn) attach(pm *ablyproto.ProtocolMessage) {
	name := pm.Channel
	chanErr := func(e *ablyproto.ErrorInfo) {
		c.send(&ablyproto.ProtocolMessage{Action: ablyproto.ActionError, Channel: name, Error: e})
	}
	q, bad, ok := parseQualified(name)
	if !ok {
		chanErr(errorInfo(400, ablyproto.CodeChannelInvalid, bad))
		return
	}
	if !c.validChannel(q.base) {
		chanErr(errorInfo(400, ablyproto.CodeChannelInvalid, invalidChannelText))
		return
	}
	old := c.channels[name]
	if old == nil && len(c.channels) >= c.s.cfg.MaxChannels {
		chanErr(errorInfo(400, ablyproto.CodeTooManyChannels, "too many channels on this connection"))
		return
	}
	flags := modes(c.cap, q.base, pm.Flags)
	if flags == 0 {
		if old != nil {
			old.stop()
			delete(c.channels, name)
		}
		chanErr(errorInfo(401, ablyproto.CodeCapability, "these credentials may not attach to this channel"))
		return
	}
	if old != nil {
		// Stopped before its position is read, so no event is both
		// delivered by it and replayed by the new subscription.
		old.stop()
		delete(c.channels, name)
	}
	var since *hub.Cursor
	sinceGiven := false
	if pm.ChannelSerial != "" {
		sinceGiven = true
		if cur, err := hub.ParseCursor(pm.ChannelSerial); err == nil {
			since = &cur
		} else {
			// Not a serial of this server: replay is impossible.
			since = &hub.Cursor{Epoch: "unknown", Offset: 1}
		}
	} else if old != nil {
		old.mu.Lock()
		if old.haveLast {
			last := old.last
			since, sinceGiven = &last, true
		}
		old.mu.Unlock()
	}
	var params map[string]string
	if !sinceGiven && old == nil && !pm.HasFlag(ablyproto.FlagAttachResume) {
		rw := pm.Params["rewind"]
		if rw == "" {
			rw = q.params.Get("rewind")
		}
		if rw != "" {
			s, ok := c.rewind(q.base, rw)
			if ok {
				params = map[string]string{"rewind": rw}
				since = s
			}
		}
	}
	cs := &channelState{name: name, base: q.base, filter: q.filter, flags: flags}
	if since != nil {
		cs.last, cs.haveLast = *since, true
	}
	// Presence first: subscribed to before its members are listed, so
	// nothing falls between the SYNC and the live events.
	if !c.startPresence(cs) {
		chanErr(errorInfo(503, ablyproto.CodeUnavailable, "the presence backend is unavailable; retry the attach"))
		return
	}
	if flags&ablyproto.FlagSubscribe == 0 {
		c.channels[name] = cs
		c.sendAttached(cs, pm.ChannelSerial, false, nil, params)
		return
	}
	ctx, cancel := opContext()
	defer cancel()
	sub, err := c.s.hub.Subscribe(ctx, c.hubChannel(q.base), since, c.sink(cs, since, sinceGiven, params))
	switch {
	case err == nil:
		cs.sub = sub
		c.channels[name] = cs
	case errors.Is(err, hub.ErrSlowConsumer):
		// The sink has disconnected the client.
		cs.pres.stop()
	default:
		cs.pres.stop()
		chanErr(errorInfo(503, ablyproto.CodeUnavailable, "the realtime backend is unavailable; retry the attach"))
	}
}

// sendAttached sends ATTACHED for cs. The first ATTACHED of an attach
// also starts the channel's presence SYNC (presence.go), right after it.
func (c *conn) sendAttached(cs *channelState, serial string, resumed bool, e *ablyproto.ErrorInfo, params map[string]string) bool {
	flags := cs.flags
	if resumed && !c.presenceLost.Load() {
		flags |= ablyproto.FlagResumed
	}
	members, syncing := cs.pres.takeSync()
	if len(members) > 0 {
		flags |= ablyproto.FlagHasPresence
	}
	if syncing {
		defer c.sendSync(cs, members, false)
	}
	if serial == "" {
		serial = hub.Cursor{}.String()
	}
	return c.send(&ablyproto.ProtocolMessage{Action: ablyproto.ActionAttached, Channel: cs.name, ChannelSerial: serial,
		Flags: flags, Error: e, Params: params})
}

var errChannelLost = errorInfo(404, ablyproto.CodeChannelLost, "Unable to recover channel (messages expired)")

// sink turns the subscription's deliveries into frames. It runs on hub
// goroutines and only encodes and enqueues.
func (c *conn) sink(cs *channelState, since *hub.Cursor, sinceGiven bool, params map[string]string) hub.Sink {
	return func(d hub.Delivery) bool {
		switch d.Kind {
		case hub.KindSubscribed:
			// ATTACHED's channelSerial is where the stream continues: the
			// requested serial when the replay follows, else the top.
			if d.Recovered && since != nil {
				return c.sendAttached(cs, since.String(), sinceGiven, nil, params)
			}
			var e *ablyproto.ErrorInfo
			if sinceGiven {
				e = errChannelLost
			}
			cs.mu.Lock()
			cs.last, cs.haveLast = d.Position, true
			cs.mu.Unlock()
			return c.sendAttached(cs, d.Position.String(), false, e, params)
		case hub.KindResync:
			// Live delivery lost events history cannot supply: the Ably
			// equivalent of the native resync is an unsolicited ATTACHED
			// without RESUMED.
			cs.mu.Lock()
			cs.last, cs.haveLast = d.Position, true
			cs.mu.Unlock()
			return c.sendResync(cs, d.Position.String())
		case hub.KindEvent:
			cs.mu.Lock()
			defer cs.mu.Unlock()
			ev := d.Event
			cs.last, cs.haveLast = ev.Cursor, true
			if !c.echo {
				if _, mine := cs.own[ev.ID]; mine {
					delete(cs.own, ev.ID)
					return true
				}
				if cs.publishing > 0 {
					cs.held = append(cs.held, ev)
					return true
				}
			}
			return c.sendEvent(cs, ev)
		}
		return true
	}
}

// sendEvent queues one hub event as a MESSAGE on cs, encoded once per
// format for all the subscribers (frameCache); an event cs's filter
// rejects is skipped.
func (c *conn) sendEvent(cs *channelState, ev hub.Event) bool {
	if cs.filter != nil && !cs.filter.Match(ablyproto.FilterInput{Name: ev.Type, Headers: ev.Origin.Headers}) {
		return true
	}
	b, err := c.s.frames.message(c.format, ev, cs.name)
	if err != nil {
		c.s.log.Error().Str("route", "/").Str("conn", c.id).Msg("ably: frame cannot be encoded; disconnecting")
		c.disconnect(errorInfo(500, ablyproto.CodeInternal, "internal error"))
		return false
	}
	return c.enqueue(b)
}

// detach answers DETACH with DETACHED; the connection's presence
// members on the channel leave first, as on Ably.
func (c *conn) detach(pm *ablyproto.ProtocolMessage) {
	if cs := c.channels[pm.Channel]; cs != nil {
		cs.stop()
		delete(c.channels, pm.Channel)
		if cs.name == cs.base {
			// Members enter on the base channel only (presence.go):
			// detaching a filtered view of it leaves nothing.
			c.leaveChannel(pm.Channel)
		}
	}
	c.send(&ablyproto.ProtocolMessage{Action: ablyproto.ActionDetached, Channel: pm.Channel})
}

// maxRewind bounds a rewind by count, as Ably does (100 messages).
const maxRewind = 100

// rewind turns the rewind channel param ("N" messages, or "Ns"/"Nm" of
// time) into the cursor to replay after; false when it does not parse.
func (c *conn) rewind(channel, rw string) (*hub.Cursor, bool) {
	var n int
	var window time.Duration
	switch {
	case strings.HasSuffix(rw, "s") || strings.HasSuffix(rw, "m"):
		v, err := strconv.Atoi(rw[:len(rw)-1])
		if err != nil || v < 0 {
			return nil, false
		}
		window = time.Duration(v) * time.Second
		if rw[len(rw)-1] == 'm' {
			window *= 60
		}
		n = maxRewind
	default:
		v, err := strconv.Atoi(rw)
		if err != nil || v < 0 {
			return nil, false
		}
		n = min(v, maxRewind)
	}
	ctx, cancel := opContext()
	defer cancel()
	evs, top, err := c.s.hub.History(ctx, c.hubChannel(channel), hub.Cursor{})
	if err != nil && !errors.Is(err, hub.ErrUnrecoverable) {
		return nil, false
	}
	first := max(0, len(evs)-n)
	if window > 0 {
		from := c.s.cfg.Now().Add(-window)
		for first < len(evs) && evs[first].TS.Before(from) {
			first++
		}
	}
	if first >= len(evs) {
		return &top, true
	}
	at := evs[first].Cursor
	return &hub.Cursor{Epoch: at.Epoch, Offset: at.Offset - 1}, true
}
