// Package ablyproto holds the Ably wire types that handoff speaks (REST,
// and the realtime ProtocolMessage in JSON and msgpack: codec.go), so
// that the Ably-compatible endpoints and their tests share one definition
// of each shape. It describes the wire only; what handoff accepts or
// stores is decided where the types are used (internal/publish).
//
// Facts here are from ../shared/ABLY-PROTOCOL.md, which cites ably-go
// v1.4.0, ably-js and the Ably specification for each.
package ablyproto

import "encoding/json"

// Message is one message of an Ably REST publish (POST
// /channels/{channel}/messages), whose body is one Message or an array of
// them, in JSON or (ably-go's default) msgpack, which the REST handler
// converts to JSON first (MsgpackToJSON).
type Message struct {
	// ID is the message id. Both SDKs set "<base>:<index>" ids on REST
	// publishes (idempotent publishing), so a retried request carries the
	// same ids and can be recognised.
	ID string `json:"id,omitempty"`
	// Name is the event name, the hub event's type. A message may have
	// none (RSL1f1): then the field is left out, as Ably does.
	Name string `json:"name,omitempty"`
	// Data is the payload as sent: a JSON object or array goes out as a
	// string with Encoding "json"; a string has no encoding; binary data is
	// base64 with Encoding "base64" in JSON.
	Data json.RawMessage `json:"data,omitempty"`
	// Encoding names the transformations applied to Data, e.g. "json",
	// "base64", or a cipher; empty for data sent as is.
	Encoding string `json:"encoding,omitempty"`
	// ClientID is the publisher's client id, when it has one.
	ClientID string `json:"clientId,omitempty"`
	// ConnectionID is the publisher's connection, set by the server on
	// messages it sends out; a REST publish may carry it and it is ignored.
	ConnectionID string `json:"connectionId,omitempty"`
	// Timestamp is when the server accepted the message, in milliseconds
	// since the epoch. Set on history; ignored on publish.
	Timestamp int64 `json:"timestamp,omitempty"`
	// Serial is the message's position in its channel: handoff's hub
	// cursor. Set on history; ignored on publish.
	Serial string `json:"serial,omitempty"`
	// Action is the message action; ably-js ≥ 2.7 sends 0 (message.create)
	// on every publish. handoff accepts only 0 on publish (updates, deletes
	// and summaries are not supported) and leaves it out of replies.
	Action *int `json:"action,omitempty"`
	// Extras carries Ably's optional per-message metadata (push, headers).
	Extras json.RawMessage `json:"extras,omitempty"`
}

// ErrorBody is Ably's error reply: the HTTP status equals Error.StatusCode,
// and ably-go (error.go checkValidHTTPResponse) reads code, statusCode and
// message from it.
//
//	{"error":{"message":"Token expired","code":40142,"statusCode":401,"href":"https://help.ably.io/error/40142"}}
type ErrorBody struct {
	Error ErrorInfo `json:"error"`
}

// ErrorInfo is Ably's error object, also carried by realtime ERROR, NACK
// and DISCONNECTED protocol messages.
type ErrorInfo struct {
	Message string `json:"message"`
	// Code is Ably's five-digit error code, e.g. 40142 (token expired).
	// A token error is StatusCode 401 with 40140 <= Code < 40150: the SDKs
	// then renew the token and retry; ably-go requires both.
	Code int `json:"code"`
	// StatusCode is the HTTP status the error maps to.
	StatusCode int `json:"statusCode"`
	// HRef points at Ably's description of Code.
	HRef string `json:"href,omitempty"`
}
