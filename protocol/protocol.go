// Package protocol is handoff's native realtime wire protocol, version 1:
// the frame types, frame shapes, close codes and error codes that the
// server (internal/realtime), the Go client (client/), the browser client
// (webui/static/realtime.js) and the load generator (internal/fanout) speak.
// It is the source of truth; docs/protocol.md explains it for client
// authors, and tests in this package fail when either the browser client
// or the document names a type or code that differs from the constants here.
//
// The protocol is JSON text frames, one object per frame, on one WebSocket
// (GET Path, RFC 6455, no subprotocol) that carries many hub channels.
// The version is not sent on the wire: a change that an existing client
// would misread gets a new Path, not a version field.
//
// Login:
//
//	client: upgrade GET /realtime with "Authorization: Bearer <jwt>", or
//	        ?access_token=<jwt>, or neither and then a first frame
//	        {"type":"auth","token":"<jwt>"} within the server's auth timeout
//	        (a server may also take a phone's mobile token in place of the
//	        JWT: such a socket may only use presence on its own session)
//	server: {"type":"connected","connectionId":…,"heartbeat":<ms>,"expiresAt":…}
//	        or a close with CloseUnauthorized / CloseTokenExpired. A bad
//	        token is never an HTTP status: browsers cannot read the status
//	        of a refused upgrade, but they can read a close code.
//
// Steady state:
//
//	client: {"type":"subscribe","id":1,"channel":"session:…","since":"<cursor>"}
//	server: {"type":"subscribed","ref":1,"channel":…,"recovered":true,"cursor":…}
//	        then the replayed events, then live ones, each
//	        {"type":"event","event":{"id","channel","type","data","ts"}}
//	server: {"type":"resync",…,"recovered":false} when history cannot fill
//	        a gap: the client refetches its snapshot
//	client: unsubscribe → unsubscribed; ping → pong; auth → authenticated
//	        (a fresh token before the current one expires)
//	server: {"type":"error","ref":…,"channel":…,"code":…,"message":…} when one
//	        operation is refused; the socket stays open
//
// Presence (who is on a channel now, e.g. the phone on its session):
//
//	client: {"type":"presence","id":2,"channel":…,"action":"enter","data":{…}}
//	server: {"type":"ack","ref":2,"channel":…}
//	client: {"type":"subscribe",…,"presence":true}
//	server: {"type":"subscribed",…,"presence":[{"clientId","connectionId","data","ts"}…]}
//	        then {"type":"presence","channel":…,"action":"enter"|"update"|"leave",
//	        "member":{…}} for every change
//
// A member is (clientId, connectionId). It leaves when its client sends
// leave or closes the socket with a close frame; a socket that drops keeps
// its members for the server's presence grace, then they leave. A client
// that reconnects gets a new connectionId and enters again.
//
// Every client frame may carry an "id" (a JSON string or number of at most
// MaxRefLen bytes); the reply to it echoes the id as "ref".
//
// Keepalive: the server sends WebSocket pings every "heartbeat"
// milliseconds (from the connected frame) and drops a peer that does not
// answer (1006). A client that hears nothing, no frame and no ping, for
// about two heartbeats should consider the server dead and reconnect.
// Browsers cannot see pings, so they send OpPing and get FramePong.
//
// Resume: an event's id is its cursor. A client that reconnects, to any
// node, and subscribes with since set to the last id it processed sees
// every later event exactly once, in order, or an explicit
// recovered:false / resync: never a silent gap.
//
// Close codes, the one table (docs/protocol.md repeats it, checked by test):
//
//	code  name              when                                        client should
//	1000  normal            the client closed                           -
//	1001  going away        server shutdown                             reconnect (another node), resume
//	1006  abnormal          dead peer dropped (missed heartbeat), or    reconnect, resume
//	                        write timeout; no close frame is sent
//	1009  too big           an inbound frame exceeded the frame limit   fix the client; reconnect
//	1011  internal error    unexpected server fault                     reconnect with backoff
//	4001  unauthorized      no, forged or malformed token; no auth      get a valid token; do not retry
//	                        frame within the auth timeout               the same token forever
//	4003  forbidden         re-auth with a token of another principal   stop
//	4008  slow consumer     the send queue overflowed                   reconnect, resume from cursor
//	4009  token expired     the token expired and was not refreshed     reconnect with a fresh token
//	4400  bad request       too many malformed frames                   fix the client
package protocol

import (
	"encoding/json"
	"time"
)

// Version is the protocol's version. It is not sent on the wire (see the
// package comment); it names the protocol in documents and changelogs.
const Version = 1

// Path is where a handoff node serves the socket.
const Path = "/realtime"

// TokenParam is the query parameter that may carry the token on the
// upgrade request, for browsers, which cannot set headers on a WebSocket.
const TokenParam = "access_token"

// MaxRefLen bounds a client frame's id, which the reply echoes as ref: a
// client cannot make the server echo large payloads.
const MaxRefLen = 64

// Op is the type of a client→server frame.
type Op string

// Client operations.
const (
	// OpAuth carries a token: the first frame of a socket opened without
	// one, or a fresh token later (answered with FrameAuthenticated).
	OpAuth Op = "auth"
	// OpSubscribe adds a channel, optionally resuming after a cursor.
	OpSubscribe Op = "subscribe"
	// OpUnsubscribe drops a channel.
	OpUnsubscribe Op = "unsubscribe"
	// OpPing asks for a FramePong: a keepalive browsers can send.
	OpPing Op = "ping"
	// OpPresence enters, updates or leaves the channel's presence as the
	// socket's own member; answered with FrameAck.
	OpPresence Op = "presence"
)

// Ops returns every client operation.
func Ops() []Op { return []Op{OpAuth, OpSubscribe, OpUnsubscribe, OpPing, OpPresence} }

// PresenceAction is what an OpPresence asks for, and what a FramePresence
// reports.
type PresenceAction string

// Presence actions.
const (
	// PresenceEnter makes the socket a member of the channel (again: an
	// enter of a present member changes its data, like an update).
	PresenceEnter PresenceAction = "enter"
	// PresenceUpdate changes the member's data.
	PresenceUpdate PresenceAction = "update"
	// PresenceLeave removes the member.
	PresenceLeave PresenceAction = "leave"
)

// PresenceActions returns every presence action.
func PresenceActions() []PresenceAction {
	return []PresenceAction{PresenceEnter, PresenceUpdate, PresenceLeave}
}

// FrameType is the type of a server→client frame.
type FrameType string

// Server frame types.
const (
	// FrameConnected says the socket is authenticated; it carries the
	// connection id, the heartbeat interval and the token's expiry.
	FrameConnected FrameType = "connected"
	// FrameAuthenticated answers a later OpAuth: the fresh token is in force.
	FrameAuthenticated FrameType = "authenticated"
	// FrameSubscribed answers OpSubscribe: the stream continues after
	// Cursor; Recovered false means it could not resume from since.
	FrameSubscribed FrameType = "subscribed"
	// FrameUnsubscribed answers OpUnsubscribe, after any frames already
	// queued for the channel.
	FrameUnsubscribed FrameType = "unsubscribed"
	// FrameEvent carries one published event.
	FrameEvent FrameType = "event"
	// FrameResync says live delivery lost events that history cannot
	// supply: refetch the snapshot; events continue after Cursor.
	FrameResync FrameType = "resync"
	// FrameError refuses one operation; the socket stays open.
	FrameError FrameType = "error"
	// FramePong answers OpPing.
	FramePong FrameType = "pong"
	// FrameAck answers an op that has no reply of its own (OpPresence):
	// it was done.
	FrameAck FrameType = "ack"
	// FramePresence reports one presence change on a channel subscribed
	// with Presence.
	FramePresence FrameType = "presence"
)

// FrameTypes returns every server frame type.
func FrameTypes() []FrameType {
	return []FrameType{FrameConnected, FrameAuthenticated, FrameSubscribed, FrameUnsubscribed,
		FrameEvent, FrameResync, FrameError, FramePong, FrameAck, FramePresence}
}

// CloseCode is a WebSocket close status the server uses; the package
// comment's table says when each is sent and what a client should do.
// It is a plain int so that this package does not tie its importers to
// a WebSocket library.
type CloseCode int

// Close codes.
const (
	CloseNormal        CloseCode = 1000
	CloseGoingAway     CloseCode = 1001
	CloseAbnormal      CloseCode = 1006 // seen when the socket ends without a close frame; never sent
	CloseTooBig        CloseCode = 1009
	CloseInternalError CloseCode = 1011
	CloseUnauthorized  CloseCode = 4001
	CloseForbidden     CloseCode = 4003
	CloseSlowConsumer  CloseCode = 4008
	CloseTokenExpired  CloseCode = 4009
	CloseBadRequest    CloseCode = 4400
)

// CloseCodes returns every close code in the table.
func CloseCodes() []CloseCode {
	return []CloseCode{CloseNormal, CloseGoingAway, CloseAbnormal, CloseTooBig, CloseInternalError,
		CloseUnauthorized, CloseForbidden, CloseSlowConsumer, CloseTokenExpired, CloseBadRequest}
}

// ErrorCode is the code of a FrameError: stable, for programs to branch
// on (the message is for people).
type ErrorCode string

// Error codes the server sends.
const (
	// CodeInvalidJSON: the frame is not one JSON object.
	CodeInvalidJSON ErrorCode = "invalid_json"
	// CodeInvalidFrame: a missing or mistyped field, an unknown field, a
	// bad id, or a binary frame.
	CodeInvalidFrame ErrorCode = "invalid_frame"
	// CodeUnknownType: the type is not one of Ops.
	CodeUnknownType ErrorCode = "unknown_type"
	// CodeBadChannel: the channel is not 1-200 characters of letters,
	// digits and -_.:@.
	CodeBadChannel ErrorCode = "bad_channel"
	// CodeBadCursor: since is not a cursor this server issues.
	CodeBadCursor ErrorCode = "bad_cursor"
	// CodeAlreadySubscribed and CodeNotSubscribed: the socket's channel
	// state does not match the operation; nothing changed.
	CodeAlreadySubscribed ErrorCode = "already_subscribed"
	CodeNotSubscribed     ErrorCode = "not_subscribed"
	// CodeTooManyChannels: the socket holds its limit of channels.
	CodeTooManyChannels ErrorCode = "too_many_channels"
	// CodeForbidden: the token may not see the channel. A server's
	// authorizer may answer with a code of its own instead (CodeNotFound).
	CodeForbidden ErrorCode = "forbidden"
	// CodeNotFound: the authorizer's answer for a channel the token may
	// not see, when even its existence must not leak (a capture session
	// of another facility answers exactly like one that does not exist).
	CodeNotFound ErrorCode = "not_found"
	// CodeUnavailable: the hub backend (Redis) is unreachable; retry.
	CodeUnavailable ErrorCode = "unavailable"
	// CodeUnauthorized and CodeTokenExpired refuse a re-auth token; the
	// old token stays in force until it expires.
	CodeUnauthorized ErrorCode = "unauthorized"
	CodeTokenExpired ErrorCode = "token_expired"
)

// ErrorCodes returns every error code the server sends itself (an
// authorizer may add its own).
func ErrorCodes() []ErrorCode {
	return []ErrorCode{CodeInvalidJSON, CodeInvalidFrame, CodeUnknownType, CodeBadChannel, CodeBadCursor,
		CodeAlreadySubscribed, CodeNotSubscribed, CodeTooManyChannels, CodeForbidden, CodeNotFound,
		CodeUnavailable, CodeUnauthorized, CodeTokenExpired}
}

// ClientFrame is one client→server frame. Each op uses the fields it
// needs; a server refuses fields it does not know (CodeInvalidFrame), so
// a typo is an error rather than a silently different request.
type ClientFrame struct {
	Type Op `json:"type"`
	// ID is the client's op id, echoed as Ref in the reply: a JSON string
	// or number of at most MaxRefLen bytes.
	ID json.RawMessage `json:"id,omitempty"`
	// Token is OpAuth's JWT.
	Token string `json:"token,omitempty"`
	// Channel is OpSubscribe's and OpUnsubscribe's channel.
	Channel string `json:"channel,omitempty"`
	// Since is OpSubscribe's cursor: resume after it, "0" for all retained
	// history, "" for live events only.
	Since string `json:"since,omitempty"`
	// Presence asks OpSubscribe for the channel's members (in the
	// subscribed frame) and its presence changes (FramePresence).
	Presence bool `json:"presence,omitempty"`
	// Action is OpPresence's action.
	Action PresenceAction `json:"action,omitempty"`
	// Data is OpPresence's member data: any JSON value (at most
	// MaxPresenceDataBytes); absent on leave keeps nothing.
	Data json.RawMessage `json:"data,omitempty"`
}

// MaxPresenceDataBytes bounds a member's data: presence says who is here,
// with a few words of context ({"device":"phone"}), not a payload.
const MaxPresenceDataBytes = 1024

// ServerFrame is every server→client frame; each type fills the fields it
// needs (docs/protocol.md shows each). Field order is wire order.
type ServerFrame struct {
	Type FrameType `json:"type"`
	// Ref echoes the ClientFrame.ID of the op this frame answers.
	Ref          json.RawMessage `json:"ref,omitempty"`
	ConnectionID string          `json:"connectionId,omitempty"`
	// Heartbeat is the server's ping interval in milliseconds.
	Heartbeat int64  `json:"heartbeat,omitempty"`
	Channel   string `json:"channel,omitempty"`
	// Recovered says whether a subscribe resumed from since without a gap.
	Recovered *bool `json:"recovered,omitempty"`
	// Cursor is where the channel's stream continues.
	Cursor    string     `json:"cursor,omitempty"`
	ExpiresAt *time.Time `json:"expiresAt,omitempty"`
	Code      ErrorCode  `json:"code,omitempty"`
	Message   string     `json:"message,omitempty"`
	// Event is FrameEvent's payload, under its own key because the event's
	// "type" would collide with the frame's.
	Event *Event `json:"event,omitempty"`
	// Presence is FrameSubscribed's list of the channel's members when the
	// subscribe asked for presence (an empty list when nobody is present;
	// absent when it did not ask).
	Presence []PresenceMember `json:"presence,omitzero"`
	// Action and Member are FramePresence's change: the member as the
	// change left it.
	Action PresenceAction  `json:"action,omitempty"`
	Member *PresenceMember `json:"member,omitempty"`
}

// PresenceMember is one member of a channel's presence.
type PresenceMember struct {
	// ClientID says who: "desktop:<provider id>" for a desktop's JWT,
	// "phone:<12 hex>" for a phone (stable for one phone's claim, and
	// derived from nothing about the patient).
	ClientID string `json:"clientId"`
	// ConnectionID is the socket's connectionId (the connected frame's):
	// a client that reconnects is a new member.
	ConnectionID string          `json:"connectionId"`
	Data         json.RawMessage `json:"data,omitempty"`
	// TS is when the member last changed.
	TS time.Time `json:"ts"`
}

// Event is one published event as FrameEvent carries it: the hub event.
type Event struct {
	// ID is the event's cursor, "<epoch>-<offset>"; treat it as opaque and
	// pass it back as since to resume after this event.
	ID      string          `json:"id"`
	Channel string          `json:"channel"`
	Type    string          `json:"type"` // e.g. "image.added"
	Data    json.RawMessage `json:"data,omitempty"`
	TS      time.Time       `json:"ts"`
	// MsgID, ClientID and ConnectionID say who published the event when it
	// came from an Ably client (its message id, clientId and connectionId);
	// absent for events the server itself publishes.
	MsgID        string `json:"msgId,omitempty"`
	ClientID     string `json:"clientId,omitempty"`
	ConnectionID string `json:"connectionId,omitempty"`
}
