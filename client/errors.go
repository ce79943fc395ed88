package client

import (
	"errors"
	"fmt"

	"github.com/handoff-health/handoff/protocol"
)

// Errors for the server's close codes (the table in package protocol). A
// *CloseError unwraps to one of them, so callers use errors.Is.
var (
	// ErrUnauthorized (4001): the token was missing, forged or malformed.
	ErrUnauthorized = errors.New("realtime: unauthorized")
	// ErrForbidden (4003): a token for another principal was offered.
	// Never retried.
	ErrForbidden = errors.New("realtime: forbidden")
	// ErrSlowConsumer (4008): the client fell behind; it resumes.
	ErrSlowConsumer = errors.New("realtime: disconnected as a slow consumer")
	// ErrTokenExpired (4009): the token expired; reconnecting uses a fresh one.
	ErrTokenExpired = errors.New("realtime: token expired")
	// ErrGoingAway (1001): the server is shutting down; the client resumes
	// on whichever node answers next.
	ErrGoingAway = errors.New("realtime: server going away")
	// ErrBadRequest (4400) and ErrTooBig (1009): the server refused this
	// client's frames, which means a client bug.
	ErrBadRequest = errors.New("realtime: server refused malformed frames")
	ErrTooBig     = errors.New("realtime: frame too big for the server")
	// ErrDeadServer: no frame or ping arrived within the heartbeat window.
	ErrDeadServer = errors.New("realtime: server stopped responding")
)

// CloseError is a close frame from the server.
type CloseError struct {
	Code   int // a protocol.CloseCode
	Reason string
}

func (e *CloseError) Error() string {
	return fmt.Sprintf("realtime: socket closed with %d (%s)", e.Code, e.Reason)
}

// Unwrap maps the close code to its Err* value.
func (e *CloseError) Unwrap() error {
	switch protocol.CloseCode(e.Code) {
	case protocol.CloseUnauthorized:
		return ErrUnauthorized
	case protocol.CloseForbidden:
		return ErrForbidden
	case protocol.CloseSlowConsumer:
		return ErrSlowConsumer
	case protocol.CloseTokenExpired:
		return ErrTokenExpired
	case protocol.CloseGoingAway:
		return ErrGoingAway
	case protocol.CloseBadRequest:
		return ErrBadRequest
	case protocol.CloseTooBig:
		return ErrTooBig
	}
	return nil
}

// ServerError is an error frame: the server refused one operation.
type ServerError struct {
	Code    string // a protocol.ErrorCode, e.g. "forbidden", "bad_cursor"
	Message string
}

func (e *ServerError) Error() string { return "realtime: " + e.Code + ": " + e.Message }
