package publish

import (
	"encoding/base64"
	"net/http"
	"strings"

	"github.com/handoff-health/handoff/ablyproto"
	"github.com/handoff-health/handoff/internal/auth"
)

// credentials authenticates an Ably REST request: HTTP Basic with an API
// key (keyName:secret), or "Bearer base64(token)" with a token from
// requestToken (both SDKs base64-encode the token; a raw one is accepted
// too). It returns the key's name and what the request may do.
func (h *Handler) credentials(r *http.Request) (string, auth.Capability, error) {
	if name, secret, ok := r.BasicAuth(); ok {
		if h.keys == nil {
			return name, auth.Capability{}, errInvalidKey
		}
		c, ok := h.keys.Authenticate(name, secret)
		if !ok {
			return name, auth.Capability{}, errInvalidKey
		}
		return name, c, nil
	}
	scheme, value, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	if !strings.EqualFold(scheme, "Bearer") || value == "" {
		return "", auth.Capability{}, errorf(http.StatusUnauthorized, ablyproto.CodeUnauthorized,
			"credentials are required: HTTP Basic with an API key, or a Bearer token from requestToken")
	}
	token := value
	if raw, err := base64.StdEncoding.DecodeString(value); err == nil {
		token = string(raw)
	}
	t, err := h.tokens.verify(token)
	if err != nil {
		return "", auth.Capability{}, err
	}
	return t.KeyName, t.capability, nil
}

var errInvalidKey = errorf(http.StatusUnauthorized, ablyproto.CodeInvalidCredentials, "invalid credentials: unknown API key or wrong secret")
