package ablyproto

import (
	"encoding/json"
	"errors"
	"time"
)

// Action is a realtime ProtocolMessage's action (spec TR2).
type Action int

// The realtime actions. A frame without an action is a HEARTBEAT: ably-go
// leaves the field out when it is 0.
const (
	ActionHeartbeat    Action = 0
	ActionAck          Action = 1
	ActionNack         Action = 2
	ActionConnect      Action = 3
	ActionConnected    Action = 4
	ActionDisconnect   Action = 5
	ActionDisconnected Action = 6
	ActionClose        Action = 7
	ActionClosed       Action = 8
	ActionError        Action = 9
	ActionAttach       Action = 10
	ActionAttached     Action = 11
	ActionDetach       Action = 12
	ActionDetached     Action = 13
	ActionPresence     Action = 14
	ActionMessage      Action = 15
	ActionSync         Action = 16
	ActionAuth         Action = 17
	ActionActivate     Action = 18
	ActionObject       Action = 19
	ActionObjectSync   Action = 20
	ActionAnnotation   Action = 21
)

// ProtocolMessage flags (spec TR3): bit n of Flags.
const (
	FlagHasPresence         int64 = 1 << 0
	FlagHasBacklog          int64 = 1 << 1
	FlagResumed             int64 = 1 << 2
	FlagTransient           int64 = 1 << 4
	FlagAttachResume        int64 = 1 << 5
	FlagHasObjects          int64 = 1 << 7
	FlagPresence            int64 = 1 << 16
	FlagPublish             int64 = 1 << 17
	FlagSubscribe           int64 = 1 << 18
	FlagPresenceSubscribe   int64 = 1 << 19
	FlagAnnotationPublish   int64 = 1 << 21
	FlagAnnotationSubscribe int64 = 1 << 22
	FlagObjectSubscribe     int64 = 1 << 24
	FlagObjectPublish       int64 = 1 << 25

	// FlagModes are the four pub/sub channel modes together (983040).
	FlagModes = FlagPresence | FlagPublish | FlagSubscribe | FlagPresenceSubscribe
)

// Realtime error codes, beyond the REST ones in rest.go.
const (
	CodeTokenRevoked         = 40141
	CodeClientIDMismatch     = 40102
	CodeInvalidClientID      = 40012 // a message's clientId contradicts its credentials'
	CodeChannelInvalid       = 40010
	CodeConnectionExpired    = 80008 // resume failed: a new connection
	CodeDisconnected         = 80003
	CodeConnectionSuspended  = 80002
	CodeChannelLost          = 90003 // continuity lost: messages expired
	CodeTooManyChannels      = 90010
	CodeProtocolVersion      = 40000
	CodeConnectionClosed     = 80017
	CodeServerShuttingDown   = 50003 // "timeout" family is 500xx; shutdown is a 503
	CodeUnsupportedEncoding  = 40013
	CodeMaxMessageSize       = 40009
	CodeSlowConsumerDropped  = 80020 // the client could not keep up
	CodeInvalidConnectionKey = 80018
)

// ProtocolMessage is one realtime frame, in either direction (spec TR4).
// The same struct encodes as JSON (text frames, format=json) and msgpack
// (binary frames, format=msgpack): the msgpack field names are the JSON
// ones, as ably-go's codec uses them.
type ProtocolMessage struct {
	Action            Action             `json:"action"`
	ID                string             `json:"id,omitempty"`
	Auth              *AuthDetails       `json:"auth,omitempty"`
	Channel           string             `json:"channel,omitempty"`
	ChannelSerial     string             `json:"channelSerial,omitempty"`
	ConnectionID      string             `json:"connectionId,omitempty"`
	ConnectionKey     string             `json:"connectionKey,omitempty"`
	ConnectionDetails *ConnectionDetails `json:"connectionDetails,omitempty"`
	// Count is how many ProtocolMessages an ACK or NACK covers.
	Count int        `json:"count,omitempty"`
	Error *ErrorInfo `json:"error,omitempty"`
	Flags int64      `json:"flags,omitempty"`
	// MsgSerial numbers the client's publishes from 0 per connection; an
	// ACK or NACK must carry it even when it is 0, hence the pointer.
	MsgSerial *int64            `json:"msgSerial,omitempty"`
	Messages  []RealtimeMessage `json:"messages,omitempty"`
	Presence  []RealtimeMessage `json:"presence,omitempty"`
	Timestamp int64             `json:"timestamp,omitempty"`
	Params    map[string]string `json:"params,omitempty"`
	// Res holds, for each ProtocolMessage an ACK covers, the serials its
	// messages got (protocol v5).
	Res []PublishResult `json:"res,omitempty"`
}

// HasFlag reports whether f is set.
func (pm *ProtocolMessage) HasFlag(f int64) bool { return pm.Flags&f != 0 }

// AuthDetails is the in-band AUTH payload.
type AuthDetails struct {
	AccessToken string `json:"accessToken"`
}

// PublishResult is one entry of an ACK's res.
type PublishResult struct {
	Serials []string `json:"serials"`
}

// ConnectionDetails is CONNECTED's connectionDetails. Durations are ms.
type ConnectionDetails struct {
	ClientID           string `json:"clientId,omitempty"`
	ConnectionKey      string `json:"connectionKey"`
	MaxMessageSize     int64  `json:"maxMessageSize"`
	MaxFrameSize       int64  `json:"maxFrameSize"`
	MaxInboundRate     int64  `json:"maxInboundRate"`
	ConnectionStateTTL int64  `json:"connectionStateTtl"`
	MaxIdleInterval    int64  `json:"maxIdleInterval"`
	ServerID           string `json:"serverId,omitempty"`
}

// RealtimeMessage is a message inside a realtime MESSAGE (or PRESENCE)
// frame. Unlike the REST Message its Data is format-neutral, so msgpack's
// binary data can be told apart from strings.
type RealtimeMessage struct {
	ID           string         `json:"id,omitempty"`
	Name         string         `json:"name,omitempty"`
	Data         *Data          `json:"data,omitempty"`
	Encoding     string         `json:"encoding,omitempty"`
	ClientID     string         `json:"clientId,omitempty"`
	ConnectionID string         `json:"connectionId,omitempty"`
	Timestamp    int64          `json:"timestamp,omitempty"`
	Serial       string         `json:"serial,omitempty"`
	Action       *int           `json:"action,omitempty"`
	Extras       map[string]any `json:"extras,omitempty"`
}

// Data is a message's data in either format: JSON holds the JSON text of
// a value (a string, an object, a number), Bin holds binary data (a
// msgpack bin; JSON has none: binary travels there as a base64 string).
type Data struct {
	JSON json.RawMessage
	Bin  []byte
}

// IsBinary reports whether the data is binary.
func (d *Data) IsBinary() bool { return d != nil && d.Bin != nil }

// MarshalJSON writes the value; binary data becomes a base64 string (its
// encoding must then end in "base64").
func (d Data) MarshalJSON() ([]byte, error) {
	if d.Bin != nil {
		return json.Marshal(d.Bin)
	}
	if len(d.JSON) == 0 {
		return []byte("null"), nil
	}
	return d.JSON, nil
}

// UnmarshalJSON keeps the value's JSON text.
func (d *Data) UnmarshalJSON(b []byte) error {
	d.JSON = append(json.RawMessage(nil), b...)
	d.Bin = nil
	return nil
}

// Origin is who published a stored event and under which id, when an
// Ably client did (hub.Origin, whose fields it mirrors so that
// ablyproto.Origin(ev.Origin) converts one to the other).
type Origin struct {
	MsgID        string
	ClientID     string
	ConnectionID string
	// Headers is extras.headers as compact JSON, or "".
	Headers string
}

// EventMessage is a hub event as an Ably message: the one mapping used by
// REST history, realtime replay and live delivery, so an event has the
// same id, serial, timestamp, clientId, connectionId and data wherever it
// is read. The id is the one its publisher gave it (an Ably client's
// message id), else the one the Ably bridge gives a hub-originated event
// ("handoff-" + serial). A JSON object or array (anything but a string)
// travels as a string with encoding "json", as Ably sends it; a JSON
// string is sent as is.
func EventMessage(serial, name string, data json.RawMessage, ts time.Time, from Origin) Message {
	m := Message{ID: from.MsgID, Name: name, Timestamp: ts.UnixMilli(), Serial: serial,
		ClientID: from.ClientID, ConnectionID: from.ConnectionID}
	if m.ID == "" {
		m.ID = "handoff-" + serial
	}
	if from.Headers != "" {
		m.Extras = json.RawMessage(`{"headers":` + from.Headers + `}`)
	}
	if len(data) == 0 {
		return m
	}
	if data[0] == '"' {
		m.Data = data
		return m
	}
	s, _ := json.Marshal(string(data))
	m.Data, m.Encoding = s, "json"
	return m
}

// Realtime returns m as a realtime message.
func (m Message) Realtime() RealtimeMessage {
	r := RealtimeMessage{ID: m.ID, Name: m.Name, Encoding: m.Encoding, ClientID: m.ClientID,
		ConnectionID: m.ConnectionID, Timestamp: m.Timestamp, Serial: m.Serial, Action: m.Action}
	if len(m.Data) > 0 {
		r.Data = &Data{JSON: m.Data}
	}
	if len(m.Extras) > 0 {
		// Extras built by EventMessage always decode; anything else is
		// left out rather than sent half-read.
		if json.Unmarshal(m.Extras, &r.Extras) != nil {
			r.Extras = nil
		}
	}
	return r
}

// The errors of StoredData; their text is fit to show the publisher.
var (
	ErrJSONEncoding        = errors.New(`encoding "json" needs data to be a string holding a JSON document`)
	ErrUnsupportedEncoding = errors.New(`encoding must be empty or "json": binary and encrypted data are not supported by handoff`)
)

// StoredData is the JSON that handoff stores for a published message's
// data and encoding, the one rule of the REST and realtime publishes: no
// data or JSON null is nil; data without an encoding is stored as is;
// with encoding "json" the data must be a string holding a JSON document,
// and that document is stored. Any other encoding (base64, a cipher, a
// chain) is refused with ErrUnsupportedEncoding: data is stored unaltered
// or not at all.
func StoredData(data json.RawMessage, encoding string) (json.RawMessage, error) {
	if string(data) == "null" {
		data = nil
	}
	switch encoding {
	case "":
		return data, nil
	case "json":
		var s string
		if err := json.Unmarshal(data, &s); err != nil || !json.Valid([]byte(s)) {
			return nil, ErrJSONEncoding
		}
		return json.RawMessage(s), nil
	}
	return nil, ErrUnsupportedEncoding
}
