package client

import (
	"errors"
	"fmt"
)

// Errors for the server's close codes (see docs/protocol.md). A
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
	Code   int
	Reason string
}

func (e *CloseError) Error() string {
	return fmt.Sprintf("realtime: socket closed with %d (%s)", e.Code, e.Reason)
}

// Unwrap maps the close code to its Err* value.
func (e *CloseError) Unwrap() error {
	switch e.Code {
	case 4001:
		return ErrUnauthorized
	case 4003:
		return ErrForbidden
	case 4008:
		return ErrSlowConsumer
	case 4009:
		return ErrTokenExpired
	case 1001:
		return ErrGoingAway
	case 4400:
		return ErrBadRequest
	case 1009:
		return ErrTooBig
	}
	return nil
}

// ServerError is an error frame: the server refused one operation.
type ServerError struct {
	Code    string // e.g. "forbidden", "bad_cursor", "too_many_channels"
	Message string
}

func (e *ServerError) Error() string { return "realtime: " + e.Code + ": " + e.Message }
