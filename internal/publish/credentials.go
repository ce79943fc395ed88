package publish

import (
	"net/http"

	"github.com/handoff-health/handoff/ablyproto"
	"github.com/handoff-health/handoff/internal/auth"
)

// credentials authenticates a request sent with HTTP Basic and an API key
// (keyName:secret), returning the key's name and what the request may do.
// A request without Basic credentials is refused: Bearer tokens are read
// by authenticate (authcache.go), the one entry point of every route.
func (h *Handler) credentials(r *http.Request) (string, auth.Capability, error) {
	name, secret, ok := r.BasicAuth()
	if !ok {
		return "", auth.Capability{}, errNoCredentials
	}
	if h.keys == nil {
		return name, auth.Capability{}, errInvalidKey
	}
	c, ok := h.keys.Authenticate(name, secret)
	if !ok {
		return name, auth.Capability{}, errInvalidKey
	}
	return name, c, nil
}

var (
	errInvalidKey    = errorf(http.StatusUnauthorized, ablyproto.CodeInvalidCredentials, "invalid credentials: unknown API key or wrong secret")
	errNoCredentials = errorf(http.StatusUnauthorized, ablyproto.CodeUnauthorized,
		"credentials are required: HTTP Basic with an API key, or a Bearer token from requestToken")
)
