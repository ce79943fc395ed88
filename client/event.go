package client

import (
	"encoding/json"
	"time"
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
	Err                           error // KindError, KindDisconnected
}
