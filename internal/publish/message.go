package publish

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"

	"github.com/handoff-health/handoff/ablyproto"
	"github.com/handoff-health/handoff/hub"
	"github.com/handoff-health/handoff/internal/httpx"
	"github.com/handoff-health/handoff/internal/session"
)

// decodeMessages reads the body: one Ably REST message object or an array
// of them, as integrators (and ably-go with WithUseBinaryProtocol(false))
// send it, strictly (unknown fields are refused, as everywhere in the API).
func decodeMessages(w http.ResponseWriter, r *http.Request, maxBody int64) ([]ablyproto.Message, error) {
	var body json.RawMessage
	if err := httpx.DecodeJSON(w, r, &body, maxBody); err != nil {
		return nil, err
	}
	body = bytes.TrimSpace(body)
	if len(body) > 0 && body[0] == '{' {
		var m ablyproto.Message
		if err := httpx.Unmarshal(body, &m); err != nil {
			return nil, err
		}
		return []ablyproto.Message{m}, nil
	}
	if len(body) == 0 || body[0] != '[' {
		return nil, httpx.Errorf(http.StatusBadRequest, "invalid_body", "body must be a message object or an array of them")
	}
	var ms []ablyproto.Message
	if err := httpx.Unmarshal(body, &ms); err != nil {
		return nil, err
	}
	return ms, nil
}

// publication validates m and turns it into what the hub stores: name
// becomes the event type; data is kept as JSON, after undoing the "json"
// encoding (a JSON document sent as a string, which is how ably-go sends
// maps and structs). ClientID and Extras are accepted so Ably code works
// unchanged; the hub has nowhere to keep them, so they are not stored.
func publication(m ablyproto.Message) (hub.Publication, error) {
	switch {
	case m.Name == "":
		return hub.Publication{}, httpx.Errorf(http.StatusBadRequest, "invalid_name", "every message needs a name (the event type)")
	case len(m.Name) > hub.MaxTypeLen:
		return hub.Publication{}, httpx.Errorf(http.StatusBadRequest, "invalid_name", "name is longer than %d bytes", hub.MaxTypeLen)
	case session.ServerEvent(m.Name):
		return hub.Publication{}, httpx.Errorf(http.StatusForbidden, "reserved_name",
			"names starting with %s are published only by the server", strings.Join(session.ServerEventNamespaces, ", "))
	case len(m.ID) > maxIDLen:
		return hub.Publication{}, httpx.Errorf(http.StatusBadRequest, "invalid_id", "id is longer than %d bytes", maxIDLen)
	}
	data := m.Data
	if string(data) == "null" {
		data = nil
	}
	switch m.Encoding {
	case "":
	case "json":
		var s string
		if err := json.Unmarshal(data, &s); err != nil || !json.Valid([]byte(s)) {
			return hub.Publication{}, httpx.Errorf(http.StatusBadRequest, "invalid_data", `encoding "json" needs data to be a string holding a JSON document`)
		}
		data = json.RawMessage(s)
	default:
		// base64 (binary) and cipher encodings have no JSON form to keep.
		return hub.Publication{}, httpx.Errorf(http.StatusBadRequest, "unsupported_encoding", `encoding must be empty or "json"; binary and encrypted data are not supported`)
	}
	if len(data) > hub.MaxDataBytes {
		return hub.Publication{}, httpx.Errorf(http.StatusRequestEntityTooLarge, "data_too_large", "data exceeds %d bytes", hub.MaxDataBytes)
	}
	return hub.Publication{Type: m.Name, Data: data}, nil
}
