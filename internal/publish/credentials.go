package publish

import (
	"net/http"

	"github.com/handoff-health/handoff/ablyproto"
	"github.com/handoff-health/handoff/internal/auth"
)

// credentials authenticates a request sent with HTTP Basic and an API key
// (keyName:secret), returning the key's name and what the request may do.
// authz is the request's Authorization header. A header that verified
// before on the same connection is not checked again (conncache.go). A
// request without Basic credentials is refused: Bearer tokens are read
// by authenticate (authcache.go), the one entry point of every route.
func (h *Handler) credentials(r *http.Request, authz string) (string, auth.Capability, error) {
	if h.keys != nil {
		if name, c, ok := h.cachedBasic(r, authz); ok {
			return name, c, nil
		}
	}
	name, secret, ok := r.BasicAuth()
	if !ok {
		return "", auth.Capability{}, errNoCredentials
	}
	if h.keys == nil {
		return name, auth.Capability{}, errInvalidKey
	}
	gen := h.keys.Generation() // before the check: see APIKeys.Generation
	c, ok := h.keys.Authenticate(name, secret)
	if !ok {
		return name, auth.Capability{}, errInvalidKey
	}
	rememberBasic(r, authz, gen, name, c)
	return name, c, nil
}

var (
	errInvalidKey    = errorf(http.StatusUnauthorized, ablyproto.CodeInvalidCredentials, "invalid credentials: unknown API key or wrong secret")
	errNoCredentials = errorf(http.StatusUnauthorized, ablyproto.CodeUnauthorized,
		"credentials are required: HTTP Basic with an API key, or a Bearer token from requestToken")
)
