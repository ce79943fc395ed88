package publish

import (
	"encoding/base64"
	"net/http"
	"strings"
	"sync"
)

// Verifying a token (token.go) costs two base64 decodes, a JSON decode,
// an HMAC, a capability parse and an intersection: two thirds of a
// token-authenticated publish. An integrator sends the same token for its
// whole life, so verified tokens are remembered.
//
// Why a remembered token is as good as a verified one: the cache is keyed
// by the whole Authorization value, signature included, so only the exact
// bytes that verified hit it; a token's claims and signature cannot
// change; the API keys (secrets and capabilities) change only through
// auth.APIKeys.Add and Remove (only a test node's provisioner calls them),
// which move the keys' generation on, and a token remembered at an older
// generation is verified again, so a deleted app's tokens stop working at
// once; and the expiry, the one thing that does change on its own, is
// checked against the clock on every request. A failed verification is
// never remembered.
//
// API keys (HTTP Basic) are remembered per connection instead
// (conncache.go): a cache shared by all connections and keyed safely by
// the secret would need the same digest to look up.

// maxCachedTokens bounds the cache; when full it is emptied, which only
// costs the next request of each token one verification.
const maxCachedTokens = 4096

type cachedToken struct {
	id      identity
	expires int64  // ms
	gen     uint64 // the keys' generation read before verifying
}

type tokenCache struct {
	mu sync.RWMutex
	m  map[string]cachedToken
}

// authenticate authenticates an Ably REST request: HTTP Basic with an API
// key (credentials), or "Bearer base64(token)" with a token from
// requestToken (both SDKs base64-encode the token; a raw one is accepted
// too), verified tokens remembered. It returns what the request may do and
// who the client is.
func (h *Handler) authenticate(r *http.Request) (identity, error) {
	authz := r.Header.Get("Authorization")
	scheme, value, _ := strings.Cut(authz, " ")
	if !strings.EqualFold(scheme, "Bearer") || value == "" {
		keyName, c, err := h.credentials(r, authz)
		if err != nil {
			return identity{}, err
		}
		client, err := basicClientID(r)
		return identity{Capability: c, keyName: keyName, clientID: client}, err
	}
	now := h.cfg.Now().UnixMilli()
	h.tokenCache.mu.RLock()
	ct, ok := h.tokenCache.m[value]
	h.tokenCache.mu.RUnlock()
	if ok && now < ct.expires && ct.gen == h.keys.Generation() {
		return ct.id, nil
	}
	// base64 of the token, or the token itself.
	token := value
	gen := h.keys.Generation() // before verifying: see APIKeys.Generation
	if raw, err := base64.StdEncoding.DecodeString(value); err == nil {
		token = string(raw)
	}
	t, err := h.tokens.verify(token)
	if err != nil {
		if ok {
			h.tokenCache.mu.Lock()
			delete(h.tokenCache.m, value)
			h.tokenCache.mu.Unlock()
		}
		return identity{}, err
	}
	id := identity{Capability: t.capability, keyName: t.KeyName, clientID: t.ClientID}
	h.tokenCache.mu.Lock()
	if h.tokenCache.m == nil || len(h.tokenCache.m) >= maxCachedTokens {
		h.tokenCache.m = make(map[string]cachedToken)
	}
	h.tokenCache.m[value] = cachedToken{id: id, expires: t.Expires, gen: gen}
	h.tokenCache.mu.Unlock()
	return id, nil
}
