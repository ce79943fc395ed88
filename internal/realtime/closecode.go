package realtime

import (
	"github.com/coder/websocket"

	"github.com/handoff-health/handoff/protocol"
)

// Close codes the server sends, as coder/websocket status codes. The table
// of when each is sent lives in package protocol, the one source of truth.
const (
	CloseNormal        = websocket.StatusCode(protocol.CloseNormal)
	CloseGoingAway     = websocket.StatusCode(protocol.CloseGoingAway)
	CloseTooBig        = websocket.StatusCode(protocol.CloseTooBig)
	CloseInternalError = websocket.StatusCode(protocol.CloseInternalError)
	CloseUnauthorized  = websocket.StatusCode(protocol.CloseUnauthorized)
	CloseForbidden     = websocket.StatusCode(protocol.CloseForbidden)
	CloseSlowConsumer  = websocket.StatusCode(protocol.CloseSlowConsumer)
	CloseTokenExpired  = websocket.StatusCode(protocol.CloseTokenExpired)
	CloseBadRequest    = websocket.StatusCode(protocol.CloseBadRequest)
	// closeAbnormalLocal is recorded when a socket ends without a close
	// frame; it is never sent.
	closeAbnormalLocal = websocket.StatusCode(protocol.CloseAbnormal)
)
