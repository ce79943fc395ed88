package publish

import (
	"encoding/base64"
	"net/http"
	"strconv"

	"github.com/handoff-health/handoff/ablyproto"
	"github.com/handoff-health/handoff/hub"
	"github.com/handoff-health/handoff/internal/auth"
)

// identity is what a request's credentials may do and who they say the
// client is.
type identity struct {
	auth.Capability
	// keyName is the API key the credentials come from (scope.go).
	keyName string
	// clientID is the token's clientId, or with an API key the
	// X-Ably-ClientId header's; "" or "*" lets each message name its own.
	clientID string
}

// basicClientID reads X-Ably-ClientId, base64 of the clientId that ably-go
// and ably-js send with basic auth when the client has one.
func basicClientID(r *http.Request) (string, error) {
	// Indexed by its canonical form: Header.Get("X-Ably-ClientId") would
	// build that string on every request.
	v := r.Header["X-Ably-Clientid"]
	if len(v) == 0 || v[0] == "" {
		return "", nil
	}
	h := v[0]
	b, err := base64.StdEncoding.DecodeString(h)
	if err != nil || len(b) == 0 || string(b) == "*" {
		return "", errorf(http.StatusBadRequest, ablyproto.CodeBadRequest, "X-Ably-ClientId must be base64 of a clientId")
	}
	return string(b), nil
}

// origins sets each publication's origin from its message, refusing the
// whole request before anything is published if one is not acceptable.
func (id identity) origins(msgs []ablyproto.Message, pubs []hub.Publication) error {
	for i, m := range msgs {
		o, err := id.origin(m)
		if err != nil {
			if len(msgs) > 1 {
				err.Message = "message " + strconv.Itoa(i) + ": " + err.Message
			}
			return err
		}
		pubs[i].Origin = o
	}
	return nil
}

// origin is who published m as its event stores it, by Ably's REST rules:
// the message's id (the SDKs' idempotent "<base>:<index>", or one it was
// given; none leaves the event named by its serial); the credentials'
// clientId, which a message may repeat but not contradict, or the
// message's own when the credentials have none or the wildcard; and no
// connectionId, as a REST publish has no connection (one sent is ignored).
func (id identity) origin(m ablyproto.Message) (hub.Origin, *ablyError) {
	client := m.ClientID
	switch {
	case client == "*":
		return hub.Origin{}, errorf(http.StatusBadRequest, ablyproto.CodeBadRequest, `"*" is not a clientId a message can have`)
	case id.clientID == "" || id.clientID == "*":
	case client != "" && client != id.clientID:
		return hub.Origin{}, errorf(http.StatusBadRequest, ablyproto.CodeInvalidClientID, "the message's clientId is not the credentials' clientId")
	default:
		client = id.clientID
	}
	headers, err := ablyproto.HeadersOf(m.Extras)
	if err != nil {
		return hub.Origin{}, errorf(http.StatusBadRequest, ablyproto.CodeBadRequest, "%v", err)
	}
	o := hub.Origin{MsgID: m.ID, ClientID: client, Headers: headers}
	if err := hub.ValidateOrigin(o); err != nil {
		return hub.Origin{}, errorf(http.StatusBadRequest, ablyproto.CodeBadRequest, "the message's id, clientId or headers were refused: %v", err)
	}
	return o, nil
}
