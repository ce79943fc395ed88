package ablyproto

import (
	"encoding/json"
	"time"
)

// PresenceMessage is one presence member or event as Ably's REST presence
// routes return it (spec TP3): action is TP2's (0 absent, 1 present, 2
// enter, 3 leave, 4 update); a member listed by GET …/presence or a SYNC
// is action 1.
type PresenceMessage struct {
	ID           string          `json:"id,omitempty"`
	Action       int             `json:"action"`
	ClientID     string          `json:"clientId"`
	ConnectionID string          `json:"connectionId,omitempty"`
	Data         json.RawMessage `json:"data,omitempty"`
	Encoding     string          `json:"encoding,omitempty"`
	Timestamp    int64           `json:"timestamp,omitempty"`
}

// PresenceWire is a member's state as Ably sends it. data is the JSON
// handoff keeps for it (StoredData's rule, as for messages): a JSON string
// travels as is, anything else (an object, an array, a number) as a string
// with encoding "json", the way EventMessage sends message data.
func PresenceWire(action int, id, clientID, connectionID string, data json.RawMessage, ts time.Time) PresenceMessage {
	p := PresenceMessage{ID: id, Action: action, ClientID: clientID, ConnectionID: connectionID, Timestamp: ts.UnixMilli()}
	if len(data) == 0 || string(data) == "null" {
		return p
	}
	if data[0] == '"' {
		p.Data = data
		return p
	}
	s, _ := json.Marshal(string(data))
	p.Data, p.Encoding = s, "json"
	return p
}

// Realtime returns p as an item of a realtime PRESENCE or SYNC frame.
func (p PresenceMessage) Realtime() RealtimeMessage {
	a := p.Action
	r := RealtimeMessage{ID: p.ID, Action: &a, ClientID: p.ClientID, ConnectionID: p.ConnectionID,
		Encoding: p.Encoding, Timestamp: p.Timestamp}
	if len(p.Data) > 0 {
		r.Data = &Data{JSON: p.Data}
	}
	return r
}
