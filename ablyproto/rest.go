package ablyproto

import "encoding/json"

// Ably error codes handoff answers with (Ably's error catalogue; the
// HTTP status of each is the first three digits).
const (
	CodeBadRequest          = 40000 // malformed or unsupported input
	CodeUnauthorized        = 40100 // no credentials
	CodeInvalidCredentials  = 40101 // unknown key, wrong secret, bad MAC
	CodeTimestampNotCurrent = 40104 // TokenRequest timestamp outside the window
	CodeTokenError          = 40140 // token not usable (unspecified)
	CodeTokenExpired        = 40142 // token past its expiry: the SDK renews
	CodeTokenUnrecognised   = 40143 // not a token this deployment issued
	CodeCapability          = 40160 // the credentials lack the operation
	CodeForbidden           = 40300 // refused whatever the credentials
	CodeNotFound            = 40400
	CodeMethodNotAllowed    = 40500
	CodeTooLarge            = 40009 // message or request too large
	CodeInvalidMessageID    = 40031 // client-specified ids of a multi-message publish
	CodeInternal            = 50000
	CodeUnavailable         = 50300
)

// PublishReply is the 201 body of a REST publish. ably-js decodes it, so
// it must be present; Serials are the hub cursors, one per message.
type PublishReply struct {
	Channel   string   `json:"channel"`
	MessageID string   `json:"messageId"`
	Serials   []string `json:"serials"`
}

// TokenRequest is the body of POST /keys/{keyName}/requestToken, signed
// with the key's secret: MAC = base64(HMAC-SHA256(secret, keyName\n ttl\n
// capability\n clientId\n timestamp\n nonce\n)). TTL and Timestamp are kept
// as the numbers' text, because the MAC covers the text as sent.
type TokenRequest struct {
	KeyName    string      `json:"keyName"`
	TTL        json.Number `json:"ttl,omitempty"`
	Capability string      `json:"capability,omitempty"`
	ClientID   string      `json:"clientId,omitempty"`
	Timestamp  json.Number `json:"timestamp,omitempty"`
	Nonce      string      `json:"nonce,omitempty"`
	MAC        string      `json:"mac,omitempty"`
}

// TokenDetails is requestToken's reply. Times are milliseconds since the
// epoch; Capability is the JSON text of what the token may do.
type TokenDetails struct {
	Token      string `json:"token"`
	KeyName    string `json:"keyName"`
	Issued     int64  `json:"issued"`
	Expires    int64  `json:"expires"`
	Capability string `json:"capability"`
	ClientID   string `json:"clientId,omitempty"`
}

// Envelope wraps a reply when the request asked for envelope=json, as
// browser ably-js does on paginated GETs because it cannot read Link
// headers: the HTTP status is 200 and the real one is StatusCode.
type Envelope struct {
	StatusCode int               `json:"statusCode"`
	Response   any               `json:"response"`
	Headers    map[string]string `json:"headers"`
}
