package client

import (
	"encoding/json"
	"time"

	"github.com/handoff-health/handoff/protocol"
)

// Kind says what an Event carries.
type Kind int

const (
	// KindEvent is a published event, in channel order, never twice.
	KindEvent Kind = iota + 1
	// KindSubscribed says a channel is (re)subscribed and its stream
	// continues seamlessly: everything since the last event was replayed.
	KindSubscribed
	// KindResync says the stream could not be replayed (history trimmed or
	// lost): refetch the channel's snapshot. Events continue after ID.
	KindResync
	// KindError says the server refused a channel (Err is a *ServerError);
	// the channel is no longer subscribed. With no Channel, it reports a
	// refused re-authentication.
	KindError
	// KindConnected and KindDisconnected report the socket's state; Err on
	// KindDisconnected says why (see the Err* close-code errors).
	KindConnected
	KindDisconnected
	// KindPresence is one presence change on a channel subscribed with
	// presence: Type is the action ("enter", "update", "leave"), ClientID,
	// ConnectionID, Data and TS the member as the change left it.
	KindPresence
)

func (k Kind) String() string {
	switch k {
	case KindEvent:
		return "event"
	case KindSubscribed:
		return "subscribed"
	case KindResync:
		return "resync"
	case KindError:
		return "error"
	case KindConnected:
		return "connected"
	case KindDisconnected:
		return "disconnected"
	case KindPresence:
		return "presence"
	}
	return "unknown"
}

// Event is what the client delivers on its Events channel.
type Event struct {
	Kind    Kind
	Channel string
	// ID is the event's cursor (KindEvent), or the position the stream
	// continues from (KindSubscribed, KindResync).
	ID   string
	Type string          // KindEvent: the event type, e.g. "image.added"
	Data json.RawMessage // KindEvent
	TS   time.Time       // KindEvent
	// MsgID, ClientID and ConnectionID (KindEvent) say who published the
	// event when an Ably client did: its message id, clientId and
	// connectionId. Empty for events the server publishes.
	MsgID, ClientID, ConnectionID string
	// Members are the channel's presence members when it was subscribed
	// with presence: on KindSubscribed, and on a KindResync that answers
	// a subscribe; nil otherwise.
	Members []protocol.PresenceMember
	Err     error // KindError, KindDisconnected
}
