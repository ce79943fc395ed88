package realtime

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"slices"

	"github.com/handoff-health/handoff/hub"
	"github.com/handoff-health/handoff/protocol"
)

// clientFrame is one decoded client→server frame.
type clientFrame struct {
	protocol.ClientFrame

	// since is Since parsed; nil when the client asked for live events only.
	since *hub.Cursor
}

// frameError is why a frame was refused, in the words sent to the client.
type frameError struct {
	Code    protocol.ErrorCode
	Message string
	// Ref is the op id, when the frame was well-formed enough to have one.
	Ref json.RawMessage
}

func (e *frameError) Error() string { return string(e.Code) + ": " + e.Message }

// decodeFrame parses and validates a client frame. It never panics and
// never returns both a frame and an error; everything it reports is safe
// to echo (it never quotes the token).
func decodeFrame(b []byte) (clientFrame, *frameError) {
	var f clientFrame
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	// Decoded into the protocol struct itself, not through the embedding,
	// so error texts name fields exactly as the wire does.
	if err := dec.Decode(&f.ClientFrame); err != nil {
		return clientFrame{}, jsonError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return clientFrame{}, &frameError{Code: protocol.CodeInvalidJSON, Message: "a frame must be exactly one JSON object"}
	}
	if string(f.ID) == "null" {
		f.ID = nil
	}
	if !validRef(f.ID) {
		return clientFrame{}, &frameError{Code: protocol.CodeInvalidFrame, Message: "id must be a string or number of at most 64 bytes"}
	}
	if err := f.validate(); err != nil {
		err.Ref = f.ID
		return clientFrame{}, err
	}
	return f, nil
}

// validate checks the fields each operation needs and parses since.
func (f *clientFrame) validate() *frameError {
	switch f.Type {
	case protocol.OpAuth:
		if f.Token == "" {
			return &frameError{Code: protocol.CodeInvalidFrame, Message: "auth needs a token"}
		}
	case protocol.OpSubscribe, protocol.OpUnsubscribe:
		if !hub.ValidChannel(f.Channel) {
			return &frameError{Code: protocol.CodeBadChannel, Message: "channel must be 1-200 bytes of UTF-8 without control characters, not starting with '[' or ':'"}
		}
		if f.Type == protocol.OpUnsubscribe || f.Since == "" {
			return nil
		}
		c, err := hub.ParseCursor(f.Since)
		if err != nil {
			return &frameError{Code: protocol.CodeBadCursor, Message: "since is not a cursor this server issued"}
		}
		f.since = &c
	case protocol.OpPresence:
		return f.validatePresence()
	case protocol.OpPing:
	case "":
		return &frameError{Code: protocol.CodeInvalidFrame, Message: "frame has no type"}
	default:
		return &frameError{Code: protocol.CodeUnknownType, Message: "unknown frame type; expected auth, subscribe, unsubscribe, ping or presence"}
	}
	return nil
}

// validatePresence checks an OpPresence: a channel, one of the actions,
// and data that is small (the decoder has already checked it is JSON).
func (f *clientFrame) validatePresence() *frameError {
	if !hub.ValidChannel(f.Channel) {
		return &frameError{Code: protocol.CodeBadChannel, Message: "channel must be 1-200 characters of letters, digits and -_.:@"}
	}
	if !slices.Contains(protocol.PresenceActions(), f.Action) {
		return &frameError{Code: protocol.CodeInvalidFrame, Message: "presence needs an action: enter, update or leave"}
	}
	if len(f.Data) > protocol.MaxPresenceDataBytes {
		return &frameError{Code: protocol.CodeInvalidFrame, Message: "presence data is larger than 1024 bytes"}
	}
	return nil
}

// validRef reports whether an op id is absent, or a short string or number.
func validRef(id json.RawMessage) bool {
	if len(id) == 0 {
		return true
	}
	if len(id) > protocol.MaxRefLen {
		return false
	}
	c := id[0]
	return c == '"' || c == '-' || c >= '0' && c <= '9'
}

// jsonError turns a decoding failure into the error sent to the client.
func jsonError(err error) *frameError {
	var typeErr *json.UnmarshalTypeError
	switch {
	case errors.As(err, &typeErr) && typeErr.Field == "":
		return &frameError{Code: protocol.CodeInvalidJSON, Message: "a frame must be a JSON object"}
	case errors.As(err, &typeErr):
		return &frameError{Code: protocol.CodeInvalidFrame, Message: "field " + typeErr.Field + " has the wrong type"}
	case bytes.HasPrefix([]byte(err.Error()), []byte("json: unknown field ")):
		return &frameError{Code: protocol.CodeInvalidFrame, Message: err.Error()[len("json: "):]}
	default:
		return &frameError{Code: protocol.CodeInvalidJSON, Message: "frame is not a valid JSON object"}
	}
}
