package realtime

import "github.com/coder/websocket"

// Close codes the server sends, in one table. docs/protocol.md repeats it
// for client authors; keep the two in step.
//
//	code  name              when                                        client should
//	1000  normal            the client closed                           -
//	1001  going away        server shutdown (Server.Shutdown)           reconnect (another node), resume
//	1006  abnormal          dead peer dropped (missed heartbeat), or    reconnect, resume
//	                        write timeout; no close frame is sent
//	1009  too big           an inbound frame exceeded MaxFrameBytes     fix the client; reconnect
//	1011  internal error    unexpected server fault                     reconnect with backoff
//	4001  unauthorized      no, forged or malformed token; no auth      get a valid token; do not retry
//	                        frame within AuthTimeout                    the same token forever
//	4003  forbidden         re-auth with a token of another principal   stop
//	4008  slow consumer     the send queue overflowed                   reconnect, resume from cursor
//	4009  token expired     the token expired and was not refreshed     reconnect with a fresh token
//	4400  bad request       more than MaxBadFrames malformed frames     fix the client
const (
	CloseNormal        = websocket.StatusNormalClosure
	CloseGoingAway     = websocket.StatusGoingAway
	CloseTooBig        = websocket.StatusMessageTooBig
	CloseInternalError = websocket.StatusInternalError

	CloseUnauthorized  websocket.StatusCode = 4001
	CloseForbidden     websocket.StatusCode = 4003
	CloseSlowConsumer  websocket.StatusCode = 4008
	CloseTokenExpired  websocket.StatusCode = 4009
	CloseBadRequest    websocket.StatusCode = 4400
	closeAbnormalLocal websocket.StatusCode = 1006 // recorded, never sent
)
